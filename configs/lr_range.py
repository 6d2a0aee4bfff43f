"""Which learning rate? 30 of them, 8 seeds each, trained in full in one program.

    python train.py --config=configs/lr_range.py

Smith's learning-rate range test, done the honest way: instead of one run
whose rate grows as it trains (which mixes the rate's effect with the
weights' progress), every rate from 0.001 to 10 (30, log-spaced) is trained
for the whole run, with 8 seeds, all 240 networks vmapped in one compiled
program (the learning rate is a number the optimizer reads from its state:
training/sweeps.py). The Playground's spiral and its 2-16-16-1 tanh MLP,
with plain SGD.

IMAGES, run `aggregate`: views/sweep/eval_loss_vs_learning_rate and its three
siblings (train loss, train and eval accuracy), the median over seeds
with a band from the best seed to the worst, on a log axis, the best rate
circled; TEXT `results`, a row per rate, the best marked.

Expected, as measured on a 2-core CPU (53 s in all; the 240 networks'
2,000 steps took 42 s):
- below 0.2, SGD barely moves in 2,000 steps: eval accuracy 0.58-0.60,
  the loss still near its start (0.65-0.68);
- from 0.3 to 0.8 the final accuracy climbs steeply (eval 0.69 -> 0.95);
- the lowest median eval loss is at 1.49 (circled), and the highest
  median eval accuracy (0.953; train 0.978);
- from 2 to 5.3 the train loss still falls (0.04-0.05) but the eval loss
  rises (medians 0.22 -> 0.54): the steps are too big to settle;
- at 7.28 and 10 training blows up (median loss 13-15, accuracy 0.50);
  the numbers stay finite, so the table counts those members `unstable`
  (3 and 4 of 8: a train loss above twice its initial one), not diverged.
(The table shows medians over the 8 seeds.)
So the usual advice, a rate a few times below where the loss blows up,
holds here: the best is 5x below 7.28.
"""

import numpy as np

from configs import playground

RATES = tuple(float(f"{r:.3g}") for r in np.logspace(-3, 1, 30))


def get_config():
    config = playground.get_config("spiral")
    config.num_seeds = 8
    config.num_steps = 2000
    config.log_every = 200
    config.eval_every = 500
    config.picture_every = 1000
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 0.1  # (swept)
    config.sweep.optimizer.learning_rate = RATES
    return config
