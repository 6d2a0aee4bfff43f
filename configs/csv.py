"""Your own data: a small MLP on the rows of a CSV file.

    python train.py --config=configs/csv.py --config.data.path=my_data.csv
    python train.py --config=configs/csv.py --config.data.path=prices.csv \
        --config.data.task=regression --config.loss=mse

One example per line, numbers separated by commas, the label last (an
integer class; or, with data.task=regression, any number), an optional
header: data/csv_file.py has the format. A fifth of the rows, drawn from
data.seed, are held out for evaluation (--config.data.num_eval=N holds out
N, --config.data.eval_path=FILE uses a file instead). Features are
standardized with the training rows' mean and std. A mistake in a file is
one line naming the file, the line and the column.

Two features get every 2-D picture (decision boundary, network). The
defaults are the Playground's: two tanh layers of 16, Adam 0.01, 2,000
full-batch steps; cross-entropy, so any number of classes works.
Expected: what the data allows. The Playground's spiral written to a file
(400 rows, tests/test_train.py) reaches eval accuracy 0.975 in a few seconds.
"""

from configs import base


def get_config():
    config = base.get_config()
    config.num_steps = 2000
    config.picture_every = 500
    config.data.name = "csv"
    config.data.num_eval = 0  # a fifth of the rows
    config.model.hidden_sizes = (16, 16)
    config.model.activation = "tanh"
    config.loss = "cross_entropy"
    config.optimizer.name = "adam"
    config.optimizer.learning_rate = 0.01
    return config
