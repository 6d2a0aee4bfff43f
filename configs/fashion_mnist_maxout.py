"""A maxout network on Fashion-MNIST, after Goodfellow et al. (2013).

    python train.py --config=configs/fashion_mnist_maxout.py
    python train.py --config=configs/fashion_mnist_maxout.py \
        --config.model.name=mlp --config.model.hidden_sizes='(782,782)'   # ReLU, same budget

Permutation-invariant (the pixels' order does not matter to it): two
maxout layers of 240 units x 5 pieces (`nets.maxout.MaxoutMLP`, 1,233,610
parameters), softmax cross-entropy, SGD with Nesterov momentum 0.9 and a
cosine schedule, batch 128, 20 epochs. Goodfellow et al. also used dropout
and a max-norm constraint on MNIST; neither is used here.

Expected (seed 0, 2-core CPU): 90.4% test accuracy in 97 s
of training, 107 s for the whole command (about 12,000-19,000 images/s:
no convolutions, so the whole loop runs fused). The ReLU MLP of the same
budget (784-782-782-10, 1,234,006 parameters) also reaches 90.4%, in 76 s
(the README's table: python docs/tables.py fashion_mnist).
"""

from configs import base


def get_config():
    config = base.get_config()
    config.batch_size = 128
    steps_per_epoch = 60_000 // config.batch_size
    config.num_steps = 20 * steps_per_epoch
    config.log_every = 100
    config.eval_every = steps_per_epoch
    config.picture_every = steps_per_epoch
    config.checkpoint_every = 5 * steps_per_epoch
    config.data.name = "fashion_mnist"
    config.model.name = "maxout_mlp"
    config.model.hidden_sizes = (240, 240)
    config.model.maxout_pieces = 5
    config.model.activation = "relu"  # used only by --config.model.name=mlp
    config.loss = "cross_entropy"
    config.optimizer.name = "nesterov"
    config.optimizer.learning_rate = 0.05
    config.optimizer.momentum = 0.9
    config.optimizer.schedule = "cosine"
    return config
