"""The Playground in full: input features, the network picture, more classes,
an activation per layer, your own data from a CSV file (each read back from
the event files)."""

import numpy as np
import pytest
from conftest import read_image, read_scalars, run_cli

import data
import train
from configs import features, playground, regularization
from dashboards import network, pictures


def test_input_features_let_a_linear_model_draw_a_circle(tmp_path):
    config = features.get_config()
    config.num_steps = config.log_every = config.eval_every = config.picture_every = 300
    train.train_and_evaluate(config, str(tmp_path))
    plain, squares = tmp_path / "features=x1+x2", tmp_path / "features=x1^2+x2^2"
    assert read_scalars(plain / "seed=0", "eval/accuracy")[300] < 0.7  # a line cannot
    assert read_scalars(squares / "seed=0", "eval/accuracy")[300] > 0.95  # an ellipse can
    # The network picture: the two input features wired straight to the output.
    image = read_image(squares / "seed=0", "views/network/train")
    place = network.layout(2, [])
    assert image.shape[:2] == place.shape
    (top, left), _ = place.units[0]  # x1^2: white in the middle, blue at the sides
    middle, side = image[top + place.panel // 2, left + place.panel // 2], image[top + 4, left + 2]
    assert middle.min() > 240 and side[2] > side[0] + 60


def test_l1_switches_off_the_useless_input_features(tmp_path):
    config = regularization.get_config()
    config.num_steps = config.log_every = config.eval_every = config.picture_every = 500
    final = train.train_and_evaluate(config, str(tmp_path))
    off, on = tmp_path / "l1=0.0" / "seed=0", tmp_path / "l1=0.02" / "seed=0"
    assert read_scalars(off, "weights/zero_fraction")[500] == 0
    assert read_scalars(on, "weights/zero_fraction")[500] >= 5 / 7  # all but x1^2 and x2^2
    assert read_scalars(on, "train/regularization")[500] > 0
    assert "l1=0.0/seed=0/train/regularization" not in final  # logged only where it is on
    assert final["l1=0.02/seed=0/eval/accuracy"] > 0.95


def test_three_classes_on_the_plane_with_an_activation_per_layer(tmp_path):
    config = playground.get_config("gaussians")
    config.data.num_classes, config.loss = 3, "cross_entropy"
    config.model.activation = "(relu, tanh)"
    config.num_steps = config.log_every = config.eval_every = config.picture_every = 300
    final = train.train_and_evaluate(config, str(tmp_path))
    assert final["eval/accuracy"] > 0.85
    image = read_image(tmp_path, "views/decision_boundary/eval")
    ds = data.load_dataset(config.data)
    # The pixel under each class's centre has that class's colour (paled).
    for c in range(3):
        x1, x2 = ds.x_train[ds.y_train == c].mean(axis=0)
        assert _class_at(image, x1, x2, ds.x_train) == c
    for name in ("relu", "tanh"):
        assert read_image(tmp_path, f"views/activation/{name}").shape[2] == 3


def _class_at(image, x1, x2, points):
    """The class whose colour (at any paleness) most pixels around (x1, x2) have."""
    from dashboards.views import extent

    lo, hi = extent(points)
    size = image.shape[0]
    row = round((hi - x2) / (hi - lo) * (size - 1))
    col = round((x1 - lo) / (hi - lo) * (size - 1))
    window = image[row - 6 : row + 7, col - 6 : col + 7].reshape(-1, 1, 3).astype(float)
    towards = pictures.CLASS_COLORS - pictures.WHITE  # each class: white -> its colour
    t = ((window - pictures.WHITE) * towards).sum(-1, keepdims=True) / (towards**2).sum(-1)[:, None]
    off = np.linalg.norm(window - pictures.WHITE - t * towards, axis=-1)  # (pixels, classes)
    return int(np.bincount(np.argmin(off, axis=1)).argmax())


def _write_csv(path, x, y, header="x1,x2,label"):
    rows = [header] + [f"{a:.5f},{b:.5f},{c}" for (a, b), c in zip(x, y, strict=True)]
    path.write_text("\n".join(rows) + "\n")


@pytest.mark.slow
def test_your_own_data_from_a_csv_file_and_a_bad_copy(tmp_path):
    ds = data.load_dataset(playground.get_config("spiral").data)
    good = tmp_path / "spiral.csv"
    _write_csv(
        good, np.concatenate([ds.x_train, ds.x_eval]), np.concatenate([ds.y_train, ds.y_eval])
    )
    done = run_cli(
        "--config=configs/csv.py", f"--config.data.path={good}", "--config.num_steps=1000",
        workdir=tmp_path / "runs",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs" / "csv").iterdir()
    assert read_scalars(run, "eval/accuracy")[1000] > 0.9
    assert read_image(run, "views/network/train").shape[2] == 3  # 2-D files get every 2-D picture
    bad = tmp_path / "bad.csv"
    lines = good.read_text().splitlines()
    lines[7] = lines[7].replace(",", ",x", 1)  # line 8: 'x0.123' is not a number
    bad.write_text("\n".join(lines) + "\n")
    failed = run_cli(
        "--config=configs/csv.py", f"--config.data.path={bad}", workdir=tmp_path / "r2"
    )
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"error: {bad}:8:2: 'x") and failed.stderr.count("\n") == 1
    assert not (tmp_path / "r2").exists()
