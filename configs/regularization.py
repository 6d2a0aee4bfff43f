"""L1 regularization switches off the input features a task does not need.

    python train.py --config=configs/regularization.py
    python train.py --config=configs/playground.py:spiral --config.regularization.l2=0.001

`circles` with every Playground input feature (x1, x2, x1^2, x2^2, x1*x2,
sin(x1), sin(x2)) and no hidden layer: only x1^2 and x2^2 matter (the
boundary is a circle). Trained twice at once, without and with L1
(`regularization.l1`, a sweep): the penalty l1 * sum |w| drives the
weights of the five useless features to zero. SCALARS: train/regularization
beside train/loss, weights/zero_fraction (weights below 1e-3); IMAGES:
network/train, where a weight under 1% of the largest draws no line, so
only x1^2 and x2^2 stay wired to the output. (The cosine schedule lets
Adam's steps shrink, so the switched-off weights settle at zero instead of
jittering around it.)

Expected (seed 0, 2,000 full-batch steps, about 20 s on 2 cores):
l1=0: eval accuracy 0.995, zero_fraction 0; l1=0.02: eval accuracy 1.000,
zero_fraction 0.714 (5 of the 7 weights switched off).
"""

from configs import playground


def get_config():
    config = playground.get_config("circles")
    config.model.hidden_sizes = ()  # a linear model of the features
    config.data.features = ("x1", "x2", "x1^2", "x2^2", "x1*x2", "sin(x1)", "sin(x2)")
    config.optimizer.schedule = "cosine"
    config.sweep.regularization.l1 = (0.0, 0.02)
    config.best_metric = "eval/accuracy"  # the lesson: L1 keeps what matters
    return config
