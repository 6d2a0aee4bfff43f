"""The critical batch size, where a larger batch stops saving steps, and its noise scale.

    python train.py --config=configs/critical_batch.py

McCandlish, Kaplan, Amodei et al., "An Empirical Model of Large-Batch
Training" (2018): the steps S needed to reach a target loss fall with the
batch size B as S = S_min (1 + B_crit / B). Far below the critical batch
B_crit, doubling the batch nearly halves the steps (each step is mostly
noise, and a batch twice the size halves it); far above it, the steps stop
falling (each step is mostly signal already). They found B_crit close to
the simple noise scale B_simple = tr(Sigma) / |G|^2 measured during
training (training/gradient_noise.py), which needs no batch sweep at all.

Here: circles with 8,192 training points, a tanh MLP 2-16-16-1, plain
SGD. The batch sizes are separate programs, one after another (a batch's
shape is the program's); within each, four learning rates and four seeds
train together, vmapped, because the paper's S is with the best learning
rate for each batch size. Every eval step (each 10 steps) measures the
eval loss and every member's B_simple on all 8,192 examples (on fewer, n,
a noise scale much above n is not resolved); a member's steps to target
are its first eval step at or below the target loss, 0.03
(`target_eval_loss`), and its noise scale at the target is the B_simple
measured there.

In TensorBoard: IMAGES, aggregate, views/sweep/eval_steps_to_target_vs_batch_size
(a line per learning rate) and eval_noise_scale_at_target_vs_batch_size;
SCALARS, each point's aggregate, train/gradient_noise/b_simple/median
along the run; TEXT, aggregate, results: the table per point, then the
best steps at each batch size, the fitted B_crit and the measured B_simple.

Expected, as measured on a 2-core CPU (about 3 minutes, half of it the
200 noise measurements of each batch size). Steps to eval loss 0.03,
median over 4 seeds:

    batch size         4     16     64    256   1024
    learning rate 0.3  620   435    400   390   390
    learning rate 1    670   230    155   140   135
    learning rate 3    -     310    105   100    85   (- : unstable, never there)
    learning rate 10   -     -      -     -     -    (every member unstable)

The best learning rate grows with the batch (0.3, 1, then 3) until
stability caps it; the best steps, 620, 230, 105, 100, 85, fall 2.7x
from 4 to 16 and 2.2x from 16 to 64, then barely: the fit gives B_crit =
25 (S_min = 85). The noise scale changes along a run: 78 at step 0 for
every point, then 7 to 600 before the target; its median along each
best run up to the target is 45, 48, 17, 78 and 59 (batch 4 to 1,024):
0.7-3x B_crit, the same order, as McCandlish et al. found. Measured
where the run reaches the target it is larger, 122, 293, 567, 826 and
583: the mean gradient shrinks as the loss nears its floor while the
examples still disagree, so B_simple grows (and B_simple weights the
noise without the curvature, which B_crit's B_noise includes).
"""

from configs import base


def get_config():
    config = base.get_config()
    config.num_steps = 2000
    config.log_every = 100
    config.eval_every = 10
    config.picture_every = 2000
    config.checkpoint_every = 2000
    config.num_seeds = 4
    config.data.name = "circles"
    config.data.num_train = 8192
    config.data.num_eval = 2048
    config.data.noise = 0.05
    config.model.hidden_sizes = (16, 16)
    config.model.activation = "tanh"
    config.loss = "bce"
    config.optimizer.name = "sgd"
    config.target_eval_loss = 0.03
    config.probes.gradient_noise = True
    config.probes.gradient_noise_every = 10
    config.probes.examples = 0  # all 8,192: a noise scale above the examples' count is resolved
    config.sweep.batch_size = (4, 16, 64, 256, 1024)
    config.sweep.optimizer.learning_rate = (0.3, 1.0, 3.0, 10.0)
    return config
