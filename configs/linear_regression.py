"""Linear regression, the seminar's TensorBoard example (slides 42-48).

    python train.py --config=configs/linear_regression.py
    python train.py --config=configs/linear_regression.py --config.data.true_w='(1.0,-3.0,0.5)'

Hypothesis X * W + b (an MLP with no hidden layer), loss = the SUM of
squared errors, plain gradient descent with learning rate 0.01, on 50
points made from a known W and b plus Gaussian noise. W and b appear as
histograms and, since they are small, as scalars; the loss as a scalar;
IMAGES `views/fit/train` the points and the fitted line every 10 steps.
At the end the learned W and b are printed next to the true ones.

Expected: W = 1.976 and b = 0.498 against the true 2.0 and 0.5 (the
noise's doing: these are the least-squares fit to the 50 points), reached
within 40 steps; about 5 s, nearly all of it start-up. The sum
grows with the data, and so does its gradient: with many more points,
lower the learning rate (with 200 points, 0.0025).
"""

from configs import base


def get_config():
    config = base.get_config()
    config.num_steps = 500
    config.log_every = 10
    config.eval_every = 50
    config.picture_every = 10  # views/fit/train: the points and the line as it learns
    config.data.name = "linear"
    config.data.num_train = 50
    config.data.num_eval = 50
    config.data.noise = 0.1
    config.data.true_w = (2.0,)
    config.data.true_b = 0.5
    config.model.hidden_sizes = ()  # no hidden layer: y = X W + b
    config.model.activation = "identity"  # unused without hidden layers
    config.loss = "sse"
    config.optimizer.name = "sgd"
    config.optimizer.learning_rate = 0.01
    return config
