"""Datasets: contents and the registry."""

import ml_collections
import numpy as np
import pytest

import data
from registry import UserError


def test_xor_truth_table():
    dataset = data.load_dataset(ml_collections.ConfigDict({"name": "xor"}))
    for (x1, x2), y in zip(dataset.x_train, dataset.y_train, strict=True):
        assert y == (int(x1) ^ int(x2))
    assert dataset.num_classes == 2
    np.testing.assert_array_equal(dataset.x_eval, dataset.x_train)


def test_registry_all_tested():
    assert set(data.DATASETS) == {"xor"}, "a new dataset needs a test here"


def test_unknown_dataset():
    with pytest.raises(UserError, match="unknown dataset 'xro'.*Did you mean 'xor'"):
        data.load_dataset(ml_collections.ConfigDict({"name": "xro"}))
