"""Datasets, chosen by name (`config.data.name`).

Every dataset is small enough to live on the device whole: a builder
returns a `Dataset` of arrays, and the training loop indexes it there.
"""

from collections.abc import Callable
from typing import NamedTuple

import ml_collections
import numpy as np

from registry import lookup


class Dataset(NamedTuple):
    """Arrays of one dataset.

    x_*: (n, features) float32 inputs. y_*: (n,) int32 class ids.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_eval: np.ndarray
    y_eval: np.ndarray
    num_classes: int


def xor(config: ml_collections.ConfigDict) -> Dataset:
    """The four points of {0,1}^2, labelled x1 XOR x2; eval on the same four.

    No straight line separates the 1s from the 0s, so a single-layer
    perceptron cannot fit it; a network with a hidden layer can.
    """
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([0, 1, 1, 0], np.int32)
    return Dataset(x, y, x, y, num_classes=2)


DATASETS: dict[str, Callable[[ml_collections.ConfigDict], Dataset]] = {"xor": xor}


def load_dataset(config: ml_collections.ConfigDict) -> Dataset:
    """Builds `config.data` (the whole `config.data` section is passed on)."""
    return lookup(DATASETS, config.name, "dataset")(config)
