"""Datasets, chosen by name (`config.data.name`).

Every dataset is small enough to live on the device whole: a builder
returns a `Dataset` of arrays, and the training loop indexes it there.

The 2-D classification sets are the TensorFlow Playground's, scaled so
that the points lie in about [-1, 1]^2. Their points are drawn from
`config.data.seed`, not `config.seed`, so runs that differ only by the
model's seed see the same data.
"""

import os
from collections.abc import Callable
from typing import NamedTuple

import ml_collections
import numpy as np

from data import csv_file, idx
from plumbing.failures import UserError
from plumbing.registry import lookup


class Dataset(NamedTuple):
    """Arrays of one dataset.

    x_*: (n, features) float32 inputs.
    y_*: (n,) int32 class ids for a classifier (num_classes >= 2), or
      (n, outputs) float32 targets for a regression (num_classes == 0).
    truth: for generated regressions, the parameters that made the data
      ({"kernel": W, "bias": b}); None otherwise.
    class_names: a name per class id, where the data has them.
    images_eval: (n, h, w[, c]) pictures of the eval inputs, for image data
      (the projector's sprite); None otherwise.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    num_classes: int
    truth: dict | None = None
    class_names: tuple[str, ...] | None = None
    images_eval: np.ndarray | None = None

    @property
    def is_regression(self) -> bool:
        return self.num_classes == 0

    def names(self) -> tuple[str, ...]:
        """A name per class: `class_names`, or the class ids as text."""
        return self.class_names or tuple(str(c) for c in range(self.num_classes))


def xor(config: ml_collections.ConfigDict) -> Dataset:
    """The four points of {0,1}^2, labelled x1 XOR x2; eval on the same four.

    No straight line separates the 1s from the 0s, so a single-layer
    perceptron cannot fit it; a network with a hidden layer can.
    """
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0], np.int32)
    return Dataset(x, y, x, y, num_classes=2)


def _split(config, x, y, num_classes: int = 2) -> Dataset:
    """Shuffles n = num_train + num_eval points and splits them."""
    order = np.random.default_rng(config.seed + 1).permutation(len(x))
    x, y = x[order].astype(np.float32), y[order].astype(np.int32)
    n = config.num_train
    return Dataset(x[:n], y[:n], x[n:], y[n:], num_classes=num_classes)


def _rng_and_size(config) -> tuple[np.random.Generator, int]:
    return np.random.default_rng(config.seed), config.num_train + config.num_eval


def xor_cloud(config: ml_collections.ConfigDict) -> Dataset:
    """XOR as a point cloud (Playground "Exclusive or").

    Points uniform in [-1, 1]^2, moved `noise` (Gaussian std) after
    labelling; class 1 where x1 and x2 have different signs.
    """
    rng, n = _rng_and_size(config)
    x = rng.uniform(-1, 1, (n, 2))
    x += np.sign(x) * 0.05  # a small margin around the axes, as the Playground has
    y = (x[:, 0] * x[:, 1] < 0).astype(np.int32)
    return _split(config, x + rng.normal(0, config.noise, x.shape), y)


def circles(config: ml_collections.ConfigDict) -> Dataset:
    """A disc (class 1, radius < 0.5) inside a ring (class 0, 0.7-1.0)."""
    rng, n = _rng_and_size(config)
    y = np.arange(n) % 2
    radius = np.where(y == 1, rng.uniform(0, 0.5, n), rng.uniform(0.7, 1.0, n))
    angle = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
    return _split(config, x + rng.normal(0, config.noise, x.shape), y)


def spiral(config: ml_collections.ConfigDict) -> Dataset:
    """Interleaved spirals of 1.75 turns, one per class (`num_classes`, default 2)."""
    rng, n = _rng_and_size(config)
    k = config.num_classes
    y = np.arange(n) % k
    t = rng.uniform(0, 1, n)  # position along the arm, centre to rim
    angle = 1.75 * 2 * np.pi * t + 2 * np.pi * y / k  # the arms evenly turned apart
    x = np.stack([t * np.sin(angle), t * np.cos(angle)], axis=1)
    return _split(config, x + rng.normal(0, config.noise, x.shape), y, k)


def gaussians(config: ml_collections.ConfigDict) -> Dataset:
    """A Gaussian blob per class (`num_classes`, default 2).

    Two classes: around (0.5, 0.5) (class 1) and (-0.5, -0.5) (class 0).
    More: the centres evenly spaced on the circle through those two.
    """
    rng, n = _rng_and_size(config)
    k = config.num_classes
    y = np.arange(n) % k
    if k == 2:  # (the circle's formula, exactly)
        centres = np.where(y[:, None] == 1, 0.5, -0.5)
    else:
        angle = np.pi / 4 + 2 * np.pi * (y - 1) / k
        centres = np.sqrt(0.5) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    x = centres + rng.normal(0, 0.25 + config.noise, (n, 2))
    return _split(config, x, y, k)


def linear(config: ml_collections.ConfigDict) -> Dataset:
    """A regression: y = x W + b + noise, with W and b from the config.

    x is uniform in [-1, 1]^d with d = len(data.true_w); W = true_w as a
    (d, 1) column, b = true_b; noise is Gaussian with std `noise`.
    """
    w = np.asarray(config.true_w, np.float32).reshape(-1, 1)
    b = np.asarray([config.true_b], np.float32)
    rng, n = _rng_and_size(config)
    x = rng.uniform(-1, 1, (n, len(w))).astype(np.float32)
    y = (x @ w + b + rng.normal(0, config.noise, (n, 1))).astype(np.float32)
    k = config.num_train
    return Dataset(x[:k], y[:k], x[k:], y[k:], num_classes=0, truth={"kernel": w, "bias": b})


FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def _idx_images(config, default_dir: str, how_to_get: str, class_names) -> Dataset:
    """An MNIST-format dataset: 28x28 uint8 images, 10 classes, from IDX files.

    Images stay uint8, shape (n, 28, 28, 1): a quarter of the memory of
    float32 on the device; `nets.to_inputs` scales them inside the jitted step.
    The eval split is the test set, or with `data.num_validation` = v, the
    last v training images (held out of training). `data.train_subset` = n
    trains on the first n training images only (full-batch studies).
    """
    data_dir = config.data_dir or default_dir
    if not data_dir:
        raise UserError(
            f"dataset {config.name!r} needs --config.data.data_dir=FOLDER. {how_to_get}"
        )
    if not os.path.isdir(data_dir):
        raise UserError(f"dataset {config.name!r}: no folder {data_dir!r}. {how_to_get}")
    x_train, y_train = idx.load_split(data_dir, "train", how_to_get)
    x_eval, y_eval = idx.load_split(data_dir, "t10k", how_to_get)
    for labels in (y_train, y_eval):
        if labels.max(initial=0) >= len(class_names):
            raise UserError(f"{data_dir}: a label is {labels.max()}, expected 0-9")
    v = config.num_validation
    if not 0 <= v < len(x_train):
        raise UserError(f"data.num_validation must be in [0, {len(x_train)}), got {v}")
    if v:
        x_train, x_eval = x_train[:-v], x_train[-v:]
        y_train, y_eval = y_train[:-v], y_train[-v:]
    n = config.train_subset
    if not 0 <= n <= len(x_train):
        raise UserError(f"data.train_subset must be in [0, {len(x_train)}] (0 = all), got {n}")
    if n:  # the first n (the files' order is already shuffled)
        x_train, y_train = x_train[:n], y_train[:n]
    return Dataset(
        x_train[..., None],
        y_train.astype(np.int32),
        x_eval[..., None],
        y_eval.astype(np.int32),
        num_classes=len(class_names),
        class_names=class_names,
        images_eval=x_eval,
    )


def fashion_mnist(config: ml_collections.ConfigDict) -> Dataset:
    """Zalando's Fashion-MNIST: 60,000 + 10,000 clothing images, 10 classes."""
    how = (
        "Install it with `apt-get install dataset-fashion-mnist` (Debian), or put its "
        "four files in a folder and pass --config.data.data_dir=FOLDER."
    )
    return _idx_images(config, FASHION_MNIST_DIR, how, FASHION_MNIST_CLASSES)


def mnist(config: ml_collections.ConfigDict) -> Dataset:
    """LeCun's MNIST digits, from its four IDX files in `data.data_dir`."""
    how = (
        "Put MNIST's four files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
        "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) in a folder and pass "
        "--config.data.data_dir=FOLDER (nothing is downloaded)."
    )
    return _idx_images(config, "", how, tuple(str(d) for d in range(10)))


DATASETS: dict[str, Callable[[ml_collections.ConfigDict], Dataset]] = {
    "xor": xor,
    "xor_cloud": xor_cloud,
    "circles": circles,
    "spiral": spiral,
    "gaussians": gaussians,
    "linear": linear,
    "fashion_mnist": fashion_mnist,
    "mnist": mnist,
    "csv": csv_file.load,
}
IMAGE_DATASETS = ("fashion_mnist", "mnist")


REGRESSIONS = ("linear",)  # datasets of float targets, not classes (and csv's, by data.task)
MANY_CLASSES = ("gaussians", "spiral")  # generated sets with `data.num_classes`
MAX_CLASSES = 10  # colours the pictures have (dashboards/pictures.py)


def is_regression(config: ml_collections.ConfigDict) -> bool:
    """Whether `config.data` describes float targets rather than classes."""
    return config.name in REGRESSIONS or (config.name == "csv" and config.task == "regression")


def check_data_config(config: ml_collections.ConfigDict) -> None:
    """Raises UserError for data settings that cannot work."""
    lookup(DATASETS, config.name, "dataset")
    if config.name == "csv":
        csv_file.load(config)  # every mistake in the files now, before a run directory exists
        return
    if config.name == "xor" or config.name in IMAGE_DATASETS:
        return
    if config.num_train < 1 or config.num_eval < 1:
        raise UserError(
            f"data.num_train and data.num_eval must be >= 1, got {config.num_train} "
            f"and {config.num_eval}"
        )
    if not config.noise >= 0:
        raise UserError(f"data.noise must be >= 0, got {config.noise}")
    k = config.num_classes
    if k != 2 and config.name not in MANY_CLASSES:
        raise UserError(
            f"data.num_classes={k}: dataset {config.name!r} has 2 classes; "
            f"{' and '.join(MANY_CLASSES)} take 2 or more"
        )
    if not 2 <= k <= MAX_CLASSES:
        raise UserError(f"data.num_classes must be in [2, {MAX_CLASSES}], got {k}")
    if config.name == "linear" and len(config.true_w) < 1:
        raise UserError("data.true_w needs at least one weight, e.g. '(2.0,)'")


def load_dataset(config: ml_collections.ConfigDict) -> Dataset:
    """Builds `config.data` (the whole `config.data` section is passed on)."""
    check_data_config(config)
    return lookup(DATASETS, config.name, "dataset")(config)
