"""The activation study: one deep MLP, any activation, every layer watched.

    for a in sigmoid tanh relu leaky_relu maxout; do
      python train.py --config=configs/activations.py --config.model.activation=$a; done

An MLP with 8 hidden layers of 16 units on the two spirals. Besides loss
and accuracy, per hidden layer i it logs:
- train/grad_norm/layers/i: the gradient norm of the layer's weights
  (vanishing gradients: with sigmoid the first layer's is orders of
  magnitude below the last one's);
- views/layers/i/saturated: fraction of (example, unit) pairs where the slope is
  below 10% of its peak (sigmoid, tanh; ReLU's flat side);
- views/layers/i/dead: fraction of units with zero slope on every eval example
  (dying ReLU);
- histograms of pre-activations and activations, and for maxout which of
  the k lines wins.

Expected numbers (seed 0): see the README's "Activation study" table.
About 15 s per activation on a 2-core CPU.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.num_steps = 3000
    config.log_every = 100
    config.eval_every = 250
    config.picture_every = 500
    config.layer_stats = True
    config.data.name = "spiral"
    config.data.num_train = 400
    config.data.num_eval = 400
    config.data.noise = 0.05
    config.model.hidden_sizes = (16,) * 8
    config.model.activation = "relu"
    config.loss = "bce"
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 0.003
    return config
