"""Image classification end to end: MNIST from generated files, Fashion-MNIST for real."""

import os

import pytest
from conftest import read_events, read_scalars, write_mnist

import data
import train
from configs import fashion_mnist_cnn, mnist_cnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_mnist_cnn_end_to_end_on_generated_files(tmp_path):
    write_mnist(tmp_path / "mnist", n_train=64, n_test=20)
    config = mnist_cnn.get_config()
    config.data.data_dir = str(tmp_path / "mnist")
    config.batch_size, config.num_steps = 16, 6  # 4 steps per epoch: 1.5 epochs
    config.log_every = config.eval_every = config.picture_every = 3
    config.embedding_examples = 10
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    events = read_events(tmp_path / "run")
    # the returned accuracy is the last one logged, and counts the confusion matrix's diagonal
    assert final["eval/accuracy"] == read_scalars(tmp_path / "run", "eval/accuracy")[6]
    per_class = [read_scalars(tmp_path / "run", f"eval/class_accuracy/{c}")[6] for c in range(10)]
    right = sum(accuracy * 2 for accuracy in per_class)  # 2 test images of each class
    assert final["eval/accuracy"] == pytest.approx(right / 20)
    tags = events.Tags()["tensors"]
    assert {"views/confusion_matrix", "eval/class_accuracy/7", "views/misclassified"} <= set(tags)
    assert [e.step for e in events.Tensors("views/confusion_matrix")] == [0, 3, 6]
    assert (tmp_path / "run" / "sprite.png").exists()


def test_batch_size_larger_than_the_dataset(tmp_path):
    write_mnist(tmp_path / "mnist", n_train=64, n_test=20)
    config = mnist_cnn.get_config()
    config.data.data_dir = str(tmp_path / "mnist")
    config.batch_size = 65
    with pytest.raises(train.UserError, match="batch_size 65 is larger than the 64 training"):
        train.train_and_evaluate(config, str(tmp_path / "run"))


needs_fashion_mnist = pytest.mark.skipif(
    not os.path.isdir(data.FASHION_MNIST_DIR),
    reason="needs Debian's dataset-fashion-mnist (.ci/run installs it)",
)


@pytest.mark.slow
@needs_fashion_mnist
def test_fashion_mnist_cnn_learns(tmp_path):
    """A few hundred real steps: well above chance (10%), per-class accuracy logged."""
    config = fashion_mnist_cnn.get_config()
    config.num_steps = 300
    config.log_every, config.eval_every = 100, 300
    config.picture_every = config.checkpoint_every = 300
    final = train.train_and_evaluate(config, str(tmp_path))
    assert final["eval/accuracy"] > 0.70
    assert read_scalars(tmp_path, "eval/class_accuracy/Trouser")[300] > 0.7
