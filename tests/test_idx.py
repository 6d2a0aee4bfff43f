"""The IDX reader: MNIST-format files, raw or gzipped, and every way they break."""

import gzip

import numpy as np
import pytest
from conftest import write_mnist

import data
from configs import base
from data import idx
from plumbing.failures import UserError

IMAGES = np.arange(3 * 4 * 5, dtype=np.uint8).reshape(3, 4, 5)
LABELS = np.array([3, 1, 4], np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip_raw_and_gzipped(tmp_path, suffix):
    idx.write(str(tmp_path / f"images{suffix}"), IMAGES)
    idx.write(str(tmp_path / f"labels{suffix}"), LABELS)
    np.testing.assert_array_equal(idx.read(str(tmp_path / f"images{suffix}"), 3), IMAGES)
    np.testing.assert_array_equal(idx.read(str(tmp_path / f"labels{suffix}"), 1), LABELS)


def test_header_bytes_are_the_standard_ones(tmp_path):
    idx.write(str(tmp_path / "labels"), LABELS)
    raw = (tmp_path / "labels").read_bytes()
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 3]) and raw[8:] == bytes([3, 1, 4])


def test_bad_magic_number(tmp_path):
    idx.write(str(tmp_path / "labels"), LABELS)
    with pytest.raises(UserError, match=r"labels is not an IDX file of 3-D.*expected 00000803"):
        idx.read(str(tmp_path / "labels"), 3)


@pytest.mark.parametrize("cut", [2, 10, 30])
def test_truncated_file(tmp_path, cut):
    idx.write(str(tmp_path / "images"), IMAGES)
    raw = (tmp_path / "images").read_bytes()
    (tmp_path / "images").write_bytes(raw[:cut])
    with pytest.raises(UserError, match=r"images (is not an IDX|is truncated)"):
        idx.read(str(tmp_path / "images"), 3)


def test_damaged_gzip(tmp_path):
    (tmp_path / "images.gz").write_bytes(gzip.compress(b"x" * 100)[:20])
    with pytest.raises(UserError, match="cannot read .*images.gz"):
        idx.read(str(tmp_path / "images.gz"), 3)


def mnist_config(folder, **overrides):
    config = base.get_config().data
    config.name, config.data_dir = "mnist", str(folder)
    config.update(overrides)
    return config


def test_mnist_dataset_from_a_folder(tmp_path):
    write_mnist(tmp_path)
    dataset = data.load_dataset(mnist_config(tmp_path))
    assert dataset.x_train.shape == (12, 28, 28, 1) and dataset.x_train.dtype == np.uint8
    assert dataset.x_eval.shape == (6, 28, 28, 1) and dataset.num_classes == 10
    assert dataset.class_names[3] == "3" and dataset.images_eval.shape == (6, 28, 28)


def test_validation_split_is_held_out_of_train(tmp_path):
    write_mnist(tmp_path)
    dataset = data.load_dataset(mnist_config(tmp_path, num_validation=4))
    assert len(dataset.x_train) == 8 and len(dataset.x_eval) == 4
    np.testing.assert_array_equal(dataset.y_eval, np.arange(8, 12) % 10)


def test_count_mismatch_names_both_files(tmp_path):
    write_mnist(tmp_path, labels_train=np.zeros(11, np.uint8))
    with pytest.raises(UserError, match="holds 12 images but .*train-labels.* holds 11 labels"):
        data.load_dataset(mnist_config(tmp_path))


def test_missing_files_say_what_is_expected_and_how_to_get_them(tmp_path):
    write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(UserError, match=r"missing t10k-labels-idx1-ubyte\[.gz\].*four files"):
        data.load_dataset(mnist_config(tmp_path))
    with pytest.raises(UserError, match="^dataset 'mnist' needs --config.data.data_dir=FOLDER. "):
        data.load_dataset(mnist_config(""))


def test_fashion_mnist_missing_says_apt_get(tmp_path):
    config = mnist_config(tmp_path / "nowhere")
    config.name = "fashion_mnist"
    with pytest.raises(UserError, match="apt-get install dataset-fashion-mnist"):
        data.load_dataset(config)
