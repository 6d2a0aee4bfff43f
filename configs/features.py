"""The Playground's input features: a model with no hidden layer draws a circle.

    python train.py --config=configs/features.py
    python train.py --config=configs/playground.py:spiral \
        --config.data.features='(x1, x2, x1^2, x2^2, x1*x2, sin(x1), sin(x2))'

`circles` (a disc inside a ring) with no hidden layer: a linear model,
whose boundary is a straight line. Fed (x1, x2) it cannot separate a disc
from a ring; fed (x1^2, x2^2) its boundary w1 x1^2 + w2 x2^2 + b = 0 is an
ellipse, and it can. Both are trained at once (a sweep over
`data.features`); the results table compares them, and IMAGES shows each
one's decision boundary and network (`views/network/train`: the input features'
heatmaps wired to the output).

Expected (seed 0, 1,000 full-batch Adam steps, about 15 s on 2 cores):
eval accuracy 0.595 on (x1, x2), about what a straight line can do,
against 0.9975 on (x1^2, x2^2).
"""

from configs import playground


def get_config():
    config = playground.get_config("circles")
    config.num_steps = 1000
    config.model.hidden_sizes = ()  # no hidden layer: a linear model of the features
    config.sweep.data.features = (("x1", "x2"), ("x1^2", "x2^2"))
    config.best_metric = "eval/accuracy"  # the lesson: which features separate the classes
    return config
