"""The real command line: user mistakes give one clear line, no traceback."""

import importlib
import re

import pytest
from conftest import read_scalars, run_cli

import train
from plumbing import command_line
from plumbing.failures import UserError

run = run_cli

XOR = "--config=configs/xor.py"


# One subprocess per way a start can fail: absl's flag parsing, a config
# key, a value the checks refuse, the config file, the flags themselves.
@pytest.mark.parametrize(
    "args, message",
    [
        ([XOR, "--config.optimizer.lerning_rate=0.5"], "Did you mean 'optimizer.learning_rate'"),
        ([XOR, "--config.num_steps=abc"], "num_steps=abc: invalid literal for int"),
        ([XOR, "--config.model.activation=relux"], "unknown activation 'relux'.*maxout"),
        (["--config=configs/nope.py"], "config file not found: 'configs/nope.py'"),
        ([], "--config is required"),
        (["--config=configs/playground.py", "spiral"], "arguments: spiral .*playground.py:spiral"),
        ([XOR, "--coordinator_address=localhost:1"], "multi-host run needs --num_processes >= 1"),
    ],
)
def test_user_errors(tmp_path, args, message):
    result = run(*args, workdir=tmp_path / "runs")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "runs").exists(), "a failed start left a run directory"


def test_a_config_path_from_another_folder_says_where_the_configs_are(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = command_line.config_error(["train.py", "--config=configs/xor.py"], ValueError())
    assert message.startswith(f"config file not found: 'configs/xor.py' in {tmp_path}; the ")
    assert f"run from {command_line.ROOT}, or pass --config={command_line.ROOT}/configs/xor.py" in (
        message
    )


def config_of(file: str):
    """What --config=FILE loads (FILE may end in ':argument')."""
    path, _, argument = file.partition(":")
    module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
    return module.get_config(*([argument] if argument else []))


# The rest of the catalogue: each the check that the command line runs
# before any work (the same function, called here, in this process).
@pytest.mark.parametrize(
    "file, values, message",
    [
        ("configs/xor.py", {"loss": "hinge"}, "unknown loss 'hinge'.*cross_entropy"),
        ("configs/xor.py", {"loss": "classification_error"}, "gradient is zero almost everywhere"),
        ("configs/xor.py", {"optimizer.name": "sgdd"}, "unknown optimizer 'sgdd'.*adam"),
        ("configs/xor.py", {"data.name": "mnistt"}, "unknown dataset 'mnistt'"),
        ("configs/xor.py", {"optimizer.learning_rate": -0.1}, "learning_rate must be a number > 0"),
        ("configs/xor.py", {"optimizer.learning_rate": 0.0}, "learning_rate must be a number > 0"),
        ("configs/xor.py", {"optimizer.learning_rate": float("nan")}, "must be a number > 0"),
        ("configs/xor.py", {"sweep.optimizer.learning_rate": "()"}, "learning_rate is empty"),
        ("configs/xor.py", {"sweep.optimizer.learning_rate": "(0.1,-1.0)"}, "must be a number > 0"),
        (
            "configs/xor.py",
            {"sweep.model.activation": "(relu,relux)"},
            "unknown activation 'relux'",
        ),
        ("configs/xor.py", {"num_steps": 0}, "num_steps must be > 0"),
        ("configs/xor.py", {"log_every": 0}, "log_every must be > 0"),
        ("configs/xor.py", {"checkpoint_every": -5}, "checkpoint_every must be > 0"),
        ("configs/xor.py", {"model.hidden_sizes": (4, 0)}, "hidden_sizes must be positive"),
        ("configs/xor.py", {"model.maxout_pieces": 0}, "maxout_pieces must be >= 1"),
        ("configs/xor.py", {"loss_power": 0.5}, "loss_power must be a number >= 1"),
        ("configs/xor.py", {"optimizer.schedule": "exp"}, "unknown schedule 'exp'"),
        ("configs/xor.py", {"model.name": "transformer"}, "unknown model 'transformer'"),
        ("configs/xor.py", {"num_seeds": 10**6, "max_member_runs": 10**6}, "about .* open files"),
        ("configs/gates.py:xr", {}, "unknown gate 'xr'. Did you mean 'xor'"),
        ("configs/playground.py:spiral", {"data.noise": -1.0}, "noise must be >= 0"),
        ("configs/linear_regression.py", {"loss": "bce"}, "needs class labels"),
        ("configs/xor.py", {"regularization.l1": -0.1}, "regularization.l1 must be a number >= 0"),
        ("configs/xor.py", {"data.features": ("x1", "x3")}, "unknown input feature 'x3'"),
        ("configs/xor.py", {"model.activation": "(relu, tanh)"}, "names 2 activations, but"),
        ("configs/mnist_cnn.py", {"data.features": ("x1^2",)}, "data.features feed an mlp"),
        ("configs/playground.py:circles", {"data.num_classes": 3}, "has 2 classes; gaussians"),
        ("configs/csv.py", {}, "data.name=csv needs --config.data.path=FILE"),
        ("configs/xor.py", {"model.dropout": 1.0}, r"model.dropout must be a rate in \[0, 1\)"),
        ("configs/xor.py", {"best_metric": "eval/acc"}, "best_metric must be train/ or eval/"),
    ],
)
def test_config_mistakes(file, values, message):
    config = config_of(file)
    for key, value in values.items():
        *sections, name = key.split(".")
        node = config
        for section in sections:
            node = node[section]
        node[name] = value
    check = train.EXPERIMENTS[config.get("experiment", "train")][0]
    with pytest.raises(UserError, match=message):
        check(config)


def test_a_model_that_does_not_fit_the_data(tmp_path):
    config = config_of("configs/xor.py")
    config.model.name = "cnn"
    with pytest.raises(UserError, match="model 'cnn' needs images .*got \\(2,\\)"):
        train.train_and_evaluate(config, str(tmp_path))


@pytest.mark.parametrize(
    "key, message",
    [
        ("lr", "unknown config key 'lr'.*the config: batch_size, best_metric, checkpoint_"),
        ("sweep.optimizer.lr", "unknown config key 'sweep.optimizer.lr'.*sweep.optimizer: b1, b2"),
        ("num_steps.x", "'num_steps' is a value, not a section"),
    ],
)
def test_unknown_config_keys(key, message):
    assert re.search(message, command_line._unknown_key(config_of(XOR[9:]), key, XOR[9:]))


@pytest.mark.parametrize(
    "source, message",
    [
        ("x = (\n", "SyntaxError"),
        ("x = 1\n", "has no attribute 'get_config'"),
        ("def get_config():\n    raise ValueError('boom')\n", "ValueError: boom"),
    ],
)
def test_broken_config_files(tmp_path, source, message):
    (tmp_path / "broken.py").write_text(source)
    result = run(f"--config={tmp_path / 'broken.py'}", workdir=tmp_path / "runs")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot load config") and message in result.stderr


def test_workdir_that_cannot_be_written(tmp_path):
    (tmp_path / "file").write_text("")
    result = run(XOR, "--config.num_steps=10", workdir=tmp_path / "file")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot write to --workdir")


def test_empty_workdir():
    result = run(XOR, workdir="")
    assert result.returncode == 1
    assert result.stderr == "error: --workdir is empty: give a directory, e.g. --workdir=runs\n"


def test_divergence_through_the_command_line(tmp_path):
    args = ("--config.optimizer.name=sgd", "--config.optimizer.learning_rate=1e9")
    result = run(XOR, *args, workdir=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: training diverged at step 3: update_norm")


def test_edited_config_file_is_not_resumed(tmp_path):
    config = tmp_path / "exp.py"
    config.write_text(
        "from configs import xor\n"
        "def get_config():\n"
        "    c = xor.get_config()\n"
        "    c.num_steps = 100\n"
        "    return c\n"
    )
    assert run(f"--config={config}", workdir=tmp_path / "runs").returncode == 0
    config.write_text(config.read_text().replace("c.num_steps = 100", "c.seed = 7"))
    result = run(f"--config={config}", workdir=tmp_path / "runs")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "holds a run with another config (num_steps" not in result.stderr
    assert "another config (seed: 0 -> 7)" in result.stderr


def test_a_run_that_fails_after_start_leaves_no_directory(tmp_path):
    result = run(XOR, "--config.model.hidden_sizes=(100000,100000,100000)", workdir=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    message = r"error: out of memory: the model's weights and optimizer state, kept \d times, take "
    assert re.fullmatch(message + r"[\d.]+ GiB; [\d.]+ GiB are usable: try a smaller model",
                        result.stderr.strip()), result.stderr  # fmt: skip
    assert not list(tmp_path.glob("xor/*"))


@pytest.mark.slow
def test_xor_end_to_end(tmp_path):
    """The README's first command with an override, again, and with --new_run."""
    args = (XOR, "--config.num_steps=400", "--config.model.activation=tanh")
    first = run(*args, workdir=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stderr == "", "console noise (TensorFlow/JAX logs)"
    assert "step 400  loss" in first.stdout
    assert re.search(r"done: 400 steps .*; train loss \S+  accuracy 1.000;", first.stdout)
    run_dir = tmp_path / "xor" / "model.activation=tanh,num_steps=400"
    assert f"Run written to {run_dir}" in first.stdout
    assert f"see it with: tensorboard --logdir {tmp_path / 'xor'}\n" in first.stdout  # its folder
    assert read_scalars(run_dir, "train/accuracy")[400] == 1.0
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    again = run(*args, workdir=tmp_path)
    assert again.returncode == 0 and again.stderr == ""
    assert f"{run_dir} finished at step 400" in again.stdout
    second = run(*args, "--new_run", workdir=tmp_path)
    assert f"Run written to {run_dir},run=2" in second.stdout


@pytest.mark.slow
def test_compilation_cache_changes_no_result(tmp_path):
    cache = tmp_path / "cache"
    flag = f"--compilation_cache={cache}"
    cold = run(XOR, "--config.num_steps=300", workdir=tmp_path, cache=flag)
    assert cold.returncode == 0 and any(cache.iterdir()), "nothing was cached"
    warm = run(XOR, "--config.num_steps=300", "--new_run", workdir=tmp_path, cache=flag)

    def metrics(stdout):  # "done: 300 steps in 0.1 s; <metrics>. Run written to ..."
        done = next(line for line in stdout.splitlines() if line.startswith("done:"))
        return done.split("; ", 1)[1].split(". Run written")[0]

    assert metrics(warm.stdout) == metrics(cold.stdout)
