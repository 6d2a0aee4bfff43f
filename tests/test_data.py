"""Datasets: contents, splits, seeds and the registry."""

import ml_collections
import numpy as np
import pytest

import data
from configs import base
from plumbing.failures import UserError

GENERATED_2D = ["xor_cloud", "circles", "spiral", "gaussians"]


def data_config(name, **overrides):
    config = base.get_config().data
    config.name = name
    config.update(overrides)
    return config


def test_xor_truth_table():
    dataset = data.load_dataset(ml_collections.ConfigDict({"name": "xor"}))
    for (x1, x2), y in zip(dataset.x_train, dataset.y_train, strict=True):
        assert y == (int(x1) ^ int(x2))
    assert dataset.num_classes == 2
    np.testing.assert_array_equal(dataset.x_eval, dataset.x_train)


@pytest.mark.parametrize("name", GENERATED_2D)
def test_2d_sets_split_sizes_and_seed(name):
    dataset = data.load_dataset(data_config(name, num_train=120, num_eval=30, noise=0.1))
    assert dataset.x_train.shape == (120, 2) and dataset.x_eval.shape == (30, 2)
    assert dataset.x_train.dtype == np.float32 and dataset.y_train.dtype == np.int32
    assert set(np.unique(dataset.y_train)) == {0, 1} and dataset.num_classes == 2
    assert 0.3 < dataset.y_train.mean() < 0.7, "classes roughly balanced"
    assert np.abs(dataset.x_train).max() < 2.0, "points within the pictures' square"
    again = data.load_dataset(data_config(name, num_train=120, num_eval=30, noise=0.1))
    np.testing.assert_array_equal(again.x_train, dataset.x_train)
    other = data.load_dataset(data_config(name, num_train=120, num_eval=30, noise=0.1, seed=1))
    assert not np.array_equal(other.x_train, dataset.x_train)


def test_xor_cloud_labels_are_the_quadrants():
    dataset = data.load_dataset(data_config("xor_cloud"))
    x, y = dataset.x_train, dataset.y_train
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(np.int32))


def test_circles_disc_inside_ring():
    dataset = data.load_dataset(data_config("circles"))
    radius = np.linalg.norm(dataset.x_train, axis=1)
    assert radius[dataset.y_train == 1].max() <= 0.5
    assert radius[dataset.y_train == 0].min() >= 0.7


def test_spiral_arms_are_half_a_turn_apart():
    dataset = data.load_dataset(data_config("spiral"))
    x, y = dataset.x_train, dataset.y_train
    t = np.linalg.norm(x, axis=1)  # radius = position along the arm
    angle = np.arctan2(x[:, 0], x[:, 1]) - 1.75 * 2 * np.pi * t - np.pi * y
    np.testing.assert_allclose(np.cos(angle), 1.0, atol=1e-4)


def test_gaussians_centres():
    dataset = data.load_dataset(data_config("gaussians", num_train=2000))
    x, y = dataset.x_train, dataset.y_train
    np.testing.assert_allclose(x[y == 1].mean(0), [0.5, 0.5], atol=0.05)
    np.testing.assert_allclose(x[y == 0].mean(0), [-0.5, -0.5], atol=0.05)


@pytest.mark.parametrize("true_w", [(2.0,), (1.0, -3.0, 0.5)])
def test_linear_regression_data(true_w):
    dataset = data.load_dataset(data_config("linear", true_w=true_w, true_b=0.5, noise=0.0))
    assert dataset.is_regression and dataset.num_classes == 0
    w = np.array(true_w, np.float32)[:, None]
    assert dataset.x_train.shape == (200, len(true_w)) and dataset.y_train.shape == (200, 1)
    np.testing.assert_allclose(dataset.y_train, dataset.x_train @ w + 0.5, atol=1e-5)
    np.testing.assert_array_equal(dataset.truth["kernel"], w)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_train": 0}, "data.num_train and data.num_eval must be >= 1"),
        ({"noise": -0.1}, "data.noise must be >= 0"),
        ({"num_classes": 1}, r"data.num_classes must be in \[2, 10\], got 1"),
    ],
)
def test_bad_settings_are_clear_errors(overrides, message):
    with pytest.raises(UserError, match=message):
        data.load_dataset(data_config("spiral", **overrides))


def test_registry_all_tested():
    # images: test_idx.py; csv: test_csv_data.py
    tested = {"xor", "linear", *GENERATED_2D, "fashion_mnist", "mnist", "csv"}
    assert set(data.DATASETS) == tested, "a new dataset needs a test here"


def test_unknown_dataset():
    with pytest.raises(UserError, match="unknown dataset 'xro'.*Did you mean 'xor'"):
        data.load_dataset(ml_collections.ConfigDict({"name": "xro"}))


@pytest.mark.parametrize("name", ["gaussians", "spiral"])
def test_more_classes_on_the_plane(name):
    dataset = data.load_dataset(data_config(name, num_train=300, num_eval=60, num_classes=5))
    assert dataset.num_classes == 5 and dataset.names() == ("0", "1", "2", "3", "4")
    np.testing.assert_array_equal(np.bincount(dataset.y_train, minlength=5) > 40, True)
    # Each class sits in its own place: its points' mean direction differs from the others'.
    means = np.stack([dataset.x_train[dataset.y_train == c].mean(0) for c in range(5)])
    angles = np.sort(np.arctan2(means[:, 1], means[:, 0]))
    assert np.diff(angles).min() > 0.5


def test_num_classes_is_refused_where_the_data_has_two():
    with pytest.raises(UserError, match="dataset 'circles' has 2 classes; gaussians and spiral"):
        data.load_dataset(data_config("circles", num_classes=3))
