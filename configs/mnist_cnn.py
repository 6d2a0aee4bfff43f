"""The seminar's experiment: the CNN on MNIST, from its four IDX files.

    python train.py --config=configs/mnist_cnn.py --config.data.data_dir=/path/to/mnist

MNIST cannot be downloaded by this program: put train-images-idx3-ubyte,
train-labels-idx1-ubyte, t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte
(raw or .gz) in one folder and point `data.data_dir` at it. The same net
and schedule as configs/fashion_mnist_cnn.py. Expected: about 99% test
accuracy, the usual result for this net on MNIST (not measured here:
MNIST's files are not on this machine).
"""

from configs import fashion_mnist_cnn


def get_config():
    config = fashion_mnist_cnn.get_config()
    config.data.name = "mnist"
    config.data.data_dir = ""  # required: the folder with MNIST's four files
    return config
