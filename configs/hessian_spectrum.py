"""The Hessian's spectrum: a bulk near zero and about one outlier per class.

    python train.py --config=configs/hessian_spectrum.py

Sagun, Bottou, LeCun ("Eigenvalues of the Hessian in Deep Learning", 2017)
and Papyan ("Measurements of Three-Level Hierarchical Structure in the
Outliers in the Spectrum of Deepnet Hessians", ICML 2019) found that a
trained classifier's loss Hessian has a bulk of eigenvalues near 0 (most
directions are flat) and a few large outliers, about one per class (C),
which carry most of its trace. Here: the Playground's Gaussian blobs with
C = 2, 3, 4 and 5 classes (`data.num_classes`, one program each), a tanh
MLP 2-16-16-C, softmax cross-entropy, full-batch gradient descent at
eta = 1, 4 seeds per C. Every 100 steps `probes.spectrum` measures each
member's top 8 eigenvalues (Lanczos, 40 steps from start 0), the trace
(Hutchinson, 10 probes) and the density (4 starts of 40 steps), all on
the 400 training points. In TensorBoard: SCALARS, filter "hessian";
IMAGES, num_classes=*/aggregate, views/hessian_density (the step slider
shows it over training; the dashed line is 2/eta = 2).

Expected, as measured on a 2-core CPU (24 s, most of it compiling the
four programs; a measurement of 4 members takes 0.08-0.13 s). Medians over
the seeds at step 1000 (the console prints them at every measurement):
- C = 3: top 0.778, 0.478, 0.318, then 0.069, 0.035: 3 outliers, the gap
  after the third the largest for every seed (4.0-5.4x); together 1.57 of
  the trace's 1.81 (+- 0.41, Hutchinson's standard error).
- C = 4: 0.918, 0.748, 0.597, 0.284, then 0.107: 4 outliers (2.5-2.8x
  gaps, 7-8x at step 100); 2.55 of the trace's 2.80 (+- 0.55).
- C = 5: 1.47, 1.20, 0.956, 0.925, 0.688, then 0.272: 5 outliers (2.3-2.7x,
  6-9x at step 100); 5.24 of the trace's 6.6 (+- 1.0).
- C = 2: one outlier, not two: 0.011, then 0.0016, 0.0010 (5-7x after the
  first; 1.4-2.5x after the second): the two blobs are fitted to a loss
  of 0.0001 and every curvature shrinks with it.
At step 0 there is neither: the density is a broad smear, from -0.9 to 1.35
for C = 4 (negative eigenvalues too: the initial weights are not at a
minimum).
By step 100 the bulk has collapsed to 0 and the outliers stand apart;
training then sharpens them slowly (C = 5's top from 1.22 to 1.47) while
the bulk's largest eigenvalues creep up, narrowing the gaps. The density
picture pools each point's 4 seeds: their outliers lie at slightly
different values, so each outlier is a small cluster of spikes.

Measuring every 100 steps costs more than training (a measurement is 170
Hessian-vector products, about 340 steps' work); the automatic cadence,
`probes.spectrum_every=0`, would measure only at step 0 and the end here.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.num_steps = 1000
    config.log_every = 100
    config.eval_every = 500
    config.picture_every = 1000
    config.num_seeds = 4
    config.data.name = "gaussians"
    config.data.num_train = 400
    config.data.num_eval = 400
    config.sweep.data.num_classes = (2, 3, 4, 5)
    config.model.hidden_sizes = (16, 16)
    config.model.activation = "tanh"
    config.loss = "cross_entropy"
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 1.0
    config.probes.spectrum = True
    config.probes.spectrum_top_k = 8
    config.probes.spectrum_iterations = 40
    config.probes.spectrum_every = 100  # the density over training, at ~3x the training's work
    return config
