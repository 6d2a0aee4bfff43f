"""XOR: a 2-16-1 MLP learns exclusive-or from its four points.

    python train.py --config=configs/xor.py
    python train.py --config=configs/xor.py --config.model.activation=tanh

Expected: train accuracy 1.000 (all four points) for the default relu and
for sigmoid, tanh, leaky_relu and maxout; the loss falls from about 0.69
to below 0.01. About 4 s on a 2-core CPU, nearly all of it start-up
(imports and compilation); the 2,000 steps themselves take 0.02 s.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.num_steps = 2000
    config.data.name = "xor"
    config.model.hidden_sizes = (16,)
    config.model.activation = "relu"
    config.loss = "bce"
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 0.05
    return config
