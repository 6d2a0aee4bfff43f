"""EMBEDDINGS: the projector's files, as TensorBoard's projector reads them."""

import numpy as np
from google.protobuf import text_format
from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

import train
from configs import playground
from dashboards import projector


def read_config(run_dir):
    config = ProjectorConfig()
    text_format.Parse((run_dir / projector.CONFIG_FILE).read_text(), config)
    return config


def test_multi_column_metadata_has_a_header_and_paths_are_relative(tmp_path):
    vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
    projector.write(str(tmp_path), "v", vectors, {"class": ["a", "b", "a"], "right": [1, 0, 1]})
    (embedding,) = read_config(tmp_path).embeddings
    assert embedding.tensor_path == "embedding.tsv" and embedding.metadata_path == "metadata.tsv"
    assert list(embedding.tensor_shape) == [3, 2]
    assert (tmp_path / "metadata.tsv").read_text().splitlines() == [
        "class\tright",
        "a\t1",
        "b\t0",
        "a\t1",
    ]
    np.testing.assert_allclose(np.loadtxt(tmp_path / "embedding.tsv"), vectors)


def test_single_column_metadata_has_no_header(tmp_path):
    projector.write(str(tmp_path), "v", np.zeros((2, 4)), {"class": ["cat", "dog"]})
    assert (tmp_path / "metadata.tsv").read_text().splitlines() == ["cat", "dog"]


def test_sprite_tiles_images_row_by_row(tmp_path):
    images = np.stack([np.full((4, 5), i, np.uint8) for i in range(5)])  # 5 grey images
    sheet = projector.sprite(images)
    assert sheet.shape == (2 * 4, 3 * 5, 3)  # 3 columns, 2 rows used
    assert sheet[0, 5, 0] == 1 and sheet[4, 0, 0] == 3 and sheet[4, 10, 0] == 255
    projector.write(str(tmp_path), "v", np.zeros((5, 2)), {"class": list("abcde")}, images)
    (embedding,) = read_config(tmp_path).embeddings
    assert embedding.sprite.image_path == "sprite.png"
    assert list(embedding.sprite.single_image_dim) == [5, 4]  # width, height
    assert (tmp_path / "sprite.png").exists()


def test_a_classifier_run_writes_its_features(tmp_path):
    config = playground.get_config("circles")
    config.num_steps, config.embedding_examples = 20, 50
    train.train_and_evaluate(config, str(tmp_path))
    (embedding,) = read_config(tmp_path).embeddings
    assert list(embedding.tensor_shape) == [50, 16]  # the last hidden layer's width
    rows = (tmp_path / "metadata.tsv").read_text().splitlines()
    assert rows[0] == "class\tpredicted\tright" and len(rows) == 51
