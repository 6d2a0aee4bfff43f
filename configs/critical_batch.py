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
rate for each batch size. Every eval step (each 25 steps) measures the
eval loss and every member's B_simple; a member's steps to target are its
first eval step at or below the target loss, 0.1 (`target_eval_loss`),
and its noise scale at the target is the B_simple measured there.

In TensorBoard: IMAGES, aggregate, views/sweep/eval_steps_to_target_vs_batch_size
(a line per learning rate) and eval_noise_scale_at_target_vs_batch_size;
TEXT, aggregate, results: the table per point, then the best steps at each
batch size, the fitted B_crit and the measured B_simple.

Expected, as measured on a 2-core CPU (about 2 minutes; the batch of
1,024 is most of it). Steps to eval loss 0.03, median over 4 seeds:

    batch size         4     16     64    256   1024
    learning rate 0.3  620   435    400   390   390
    learning rate 1    670   230    155   140   135
    learning rate 3    -     310    105   100    85   (- : unstable, never there)
    learning rate 10   -     -      -     -     -    (every member unstable)

The best learning rate grows with the batch (0.3, 1, then 3) until
stability caps it; the best steps, 620, 230, 105, 100, 85, fall nearly 3x
per 4x of batch up to 16 and then barely: the fit gives B_crit = 25 (S_min
= 85). The noise scale B_simple measured at the target, at those best
points, is 103, 418, 910, 1,050 and 1,020: the same order as B_crit for
the smallest batch, 15-40x above it for the larger ones. B_simple assumes
the Hessian is a multiple of the identity (McCandlish et al.'s B_noise
weights the noise by the curvature), and it changes along the run: 72 at
step 0 for every point; 17-130 over the 620 steps of the batch of 4 (the
console's lines); for the batch of 256 at rate 3, 8-40 in steps 10-50,
then up towards 1,000 as the loss nears its floor. So on this task
B_simple during the early fall is the critical batch's order; measured
where a large batch reaches the target it overstates it.
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
    config.sweep.batch_size = (4, 16, 64, 256, 1024)
    config.sweep.optimizer.learning_rate = (0.3, 1.0, 3.0, 10.0)
    return config
