"""Instability analysis: a network split at step k onto two data orders, one valley or two?

    python train.py --config=configs/instability.py

Frankle, Dziugaite, Roy and Carbin, "Linear Mode Connectivity and the
Lottery Ticket Hypothesis" (ICML 2020): train a network for k steps,
copy it, train both copies to the end on different minibatch orders (the
SGD noise), and measure the error barrier on the straight line between
the two (training/connectivity.py). A network is STABLE at step k when
the copies end linearly connected (barrier near 0): from there, SGD's
noise no longer decides which valley it ends in. They found small nets
(LeNet on MNIST) stable from initialisation and larger ones (ResNets,
VGG) only after a few percent of training.

Here: the spiral (400 points, 2-16-16-1 tanh), Adam 0.01 with
minibatches of 32, 5,000 steps; 40 seeds make 20 split pairs
(`split_step`: seeds 0 and 1 are seed 0's network until step k, 2 and 3
seed 2's, ...) at each k in 0, 500, 2000, and k = -1 (no split:
independent seeds, the baseline), one program per k
(`probes.connectivity`). In TensorBoard: IMAGES, aggregate,
views/sweep/connectivity_eval_error_barrier_vs_split_step (the
instability curve); each point's aggregate has its pairs' lines and
barriers. The results table gives the fraction of pairs connected (eval
error barrier <= 2%) with its 95% interval.

Expected, as measured on a 2-core CPU (about 20 s; every point's median
eval accuracy 0.945-0.946): independent seeds, 0 of 20 pairs connected
(0.00-0.16), median eval error barrier 0.495 (halfway, chance); split at
k = 0 (one start, two data orders), still 0 of 20, barrier 0.277; at 500,
6 of 20, 0.30 (0.15-0.52), barrier 0.051; at 2000, 19 of 20, 0.95
(0.76-0.99), barrier 0.002. Unstable at initialisation, stable after
some training: Frankle et al.'s picture for their larger nets. The SGD
noise of the first few hundred steps decides the valley.
"""

from configs import playground


def get_config():
    config = playground.get_config("spiral")
    config.num_seeds = 40
    config.num_steps = 5000
    config.batch_size = 32
    config.log_every = 500
    config.eval_every = 500
    config.picture_every = 5000
    config.checkpoint_every = 5000
    config.probes.connectivity = True
    config.sweep.split_step = (-1, 0, 500, 2000)
    return config
