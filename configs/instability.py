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

Here: the spiral (400 points, 2-16-16-1 tanh), SGD at learning rate 1
with minibatches of 16, 2,000 steps; 40 seeds make 20 split pairs
(`split_step`: seeds 0 and 1 are seed 0's network until step k, 2 and 3
seed 2's, ...) at each k in 0, 20, 100, 500, 1500, one program per k
(`probes.connectivity`). In TensorBoard: IMAGES, aggregate,
views/sweep/connectivity_eval_error_barrier_vs_split_step (the
instability curve); each point's aggregate has its pairs' lines and
barriers. The results table gives the fraction of pairs connected (eval
error barrier <= 2%) with its 95% interval.

Expected, as measured on a 2-core CPU (about 35 s): the fraction
connected rises with k, 0.55 (0.34-0.74) at k = 0, 0.55 at 20, 0.60 at
100, 0.70 at 500, 0.85 (0.64-0.95) at 1500; the median eval error barrier
falls from 1.5% to 0.6% of the 400 eval points (a few points each). So
this small net is nearly stable from initialisation, as LeNet was: split
at step 0 (one start, two data orders), most pairs end connected, while
two independent seeds never do (docs/inside_learning.md: 0 of 50 pairs).
The start, not the SGD noise, picks the valley here.
"""

from configs import playground


def get_config():
    config = playground.get_config("spiral")
    config.num_seeds = 40
    config.batch_size = 16
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 1.0
    config.log_every = 500
    config.eval_every = 500
    config.picture_every = 2000
    config.probes.connectivity = True
    config.sweep.split_step = (0, 20, 100, 500, 1500)
    return config
