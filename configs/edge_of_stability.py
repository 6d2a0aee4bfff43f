"""The edge of stability: sharpness rises to 2/eta and hovers there.

    python train.py --config=configs/edge_of_stability.py

Cohen et al., "Gradient Descent on Neural Networks Typically Occurs at the
Edge of Stability" (ICLR 2021): full-batch gradient descent with learning
rate eta. Along a direction of curvature above 2/eta a step overshoots and
diverges, so classical theory asks for eta < 2/sharpness. The paper found
instead that the sharpness (the training loss Hessian's top eigenvalue)
rises during training, "progressive sharpening", until it reaches 2/eta,
then hovers just above it while the loss keeps falling, though no longer
monotonically.

Here: the first 1,000 Fashion-MNIST training images, a tanh MLP
784-100-100-10, MSE loss (on the softmax outputs: losses.py), plain
full-batch gradient descent, three learning rates eta = 1, 2, 4 trained in
one program (the sweep is vmapped), so 2/eta = 2, 1, 0.5. Every log
step measures each member's sharpness on the whole training subset (20
Lanczos steps on Hessian-vector products: training/curvature.py) and logs
it as train/sharpness beside train/sharpness_limit = 2/eta. In TensorBoard:
SCALARS, filter "sharpness", runs learning_rate=*/seed=0; IMAGES,
aggregate, views/sharpness_vs_limit: each rate's sharpness and its 2/eta dashed.

Expected, as measured on a 2-core CPU (48 s of training, 18 s of it the
31 sharpness measurements, 0.57 s each; the console prints each beside
2/eta). The sharpness starts at 0.59 for every rate, then:
- eta = 1 (2/eta = 2): it rises to 2 by step 350 (progressive sharpening)
  and stays there: median 2.07 over steps 750-1500, 1.03 x 2/eta (1.88 to
  3.27: short spikes above, each pushed back down);
- eta = 2 (2/eta = 1): it overshoots to 1.8 by step 200, is pushed back by
  step 350, and hovers: median 0.99, 0.99 x 2/eta (0.83 to 1.79: spikes);
- eta = 4 (2/eta = 0.5): above the limit from the start, pushed down to it
  (median 0.41 over steps 750-1500, 0.83 x 2/eta), then below it as the
  loss nears 0 (train loss 0.0013).
The train loss falls overall for all three but rises between 3 and 5 of
the 30 log steps: not monotonically, as the paper says. Its claim, sharpness
at or just above 2/eta once it gets there, holds for eta = 1 and 2 here;
with eta = 4 the sharpness falls below 2/eta late in training, as the
network fits its 1,000 images (accuracy 0.992).
"""

from configs import base


def get_config():
    config = base.get_config()
    config.num_steps = 1500
    config.log_every = 50
    config.eval_every = 500
    config.picture_every = 1500
    config.checkpoint_every = 500
    config.embedding_examples = 0
    config.data.name = "fashion_mnist"
    config.data.train_subset = 1000
    config.model.hidden_sizes = (100, 100)
    config.model.activation = "tanh"
    config.loss = "mse"
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 1.0
    config.sweep.optimizer.learning_rate = (1.0, 2.0, 4.0)
    config.probes.sharpness = True
    config.probes.sharpness_every = 50  # every log step, for the picture: a third of the run
    config.probes.examples = 0  # all of the 1,000 training images
    return config
