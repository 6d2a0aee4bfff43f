"""A real TensorBoard server reads this project's runs, at a non-ASCII path."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
from conftest import COMPILATION_CACHE, read_events, read_scalars, without_package
from tensorboard.util import tensor_util

import train
from dashboards import console

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_info_text(xor_config, tmp_path):
    xor_config.num_steps = 10
    train.train_and_evaluate(xor_config, str(tmp_path))
    text = tensor_util.make_ndarray(read_events(tmp_path).Tensors("run")[0].tensor_proto)
    text = text.item().decode()
    for row in ("| command |", "| git commit |", "| JAX | 0.", "| devices | "):
        assert row in text, text


def test_each_summary_carries_the_wall_time_of_its_step(xor_config, tmp_path, monkeypatch):
    printed = {}  # step -> time the loop printed its line, right after logging it

    def say(message):
        if message.startswith("step "):
            printed[int(message.split()[1])] = time.time()

    monkeypatch.setattr(console, "say", say)
    xor_config.num_steps, xor_config.log_every = 300_000, 60_000  # about 0.5 s apart
    xor_config.eval_every = xor_config.picture_every = xor_config.checkpoint_every = 300_000
    xor_config.optimizer.learning_rate = 1e-5  # the loss still moving: no line left out as same
    train.train_and_evaluate(xor_config, str(tmp_path))
    events = {e.step: e.wall_time for e in read_events(tmp_path).Tensors("train/loss")}
    assert sorted(events) == sorted(printed) == [60_000, 120_000, 180_000, 240_000, 300_000]
    for step, wall_time in events.items():
        assert printed[step] - 1.0 < wall_time <= printed[step], step


@pytest.mark.slow
def test_summaries_appear_while_the_run_goes(tmp_path):
    """Flushed at every log step: readable long before the run ends."""
    every = 200_000  # about 1.5 s of XOR steps
    process = subprocess.Popen(
        [sys.executable, "train.py", "--config=configs/xor.py", f"--workdir={tmp_path}"]
        + ["--config.num_steps=100000000", f"--config.log_every={every}"]
        + [f"--config.{key}={every * 10}" for key in ("eval_every", "picture_every")]
        + [f"--config.checkpoint_every={every * 10}", COMPILATION_CACHE],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 90
        seen = {}
        while not seen and time.time() < deadline and process.poll() is None:
            time.sleep(0.5)
            for run_dir in tmp_path.glob("xor/*"):
                if "train/loss" in read_events(run_dir).Tags()["tensors"]:
                    seen = read_scalars(run_dir, "train/loss")
        assert seen, f"no train/loss event while running; stderr: {process.stderr.read()}"
        assert process.poll() is None, "the run ended before its events were read"
        assert min(seen) == every
    finally:
        process.terminate()
        process.wait(timeout=60)


class Server:
    """A TensorBoard server on `logdir`, as a user's runs: without TensorFlow."""

    def __init__(self, logdir, tmp_path, runs: int):
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", f"--logdir={logdir}"]
            + ["--host=127.0.0.1", f"--port={port}"],
            env=without_package("tensorflow", tmp_path),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 120
        while True:  # until it has read every run
            try:
                if len(self.get("/data/runs")) == runs:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "TensorBoard did not answer in 120 s"
            time.sleep(0.5)

    def get(self, path, body=None):
        request = urllib.request.Request(self.base + path, data=body)
        if body is not None:
            request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def hparams(self) -> tuple[list[str], list[str], dict]:
        """HPARAMS: (hparam columns, metric columns, {row: (sessions, hparams, metrics)})."""
        experiment = self.get("/data/plugin/hparams/experiment", b'{"experimentName": ""}')
        request = {
            "experimentName": "",
            "startIndex": 0,
            "sliceSize": 1000,
            "allowedStatuses": ["STATUS_UNKNOWN"],
            "aggregationType": "AGGREGATION_AVG",
        }
        groups = self.get("/data/plugin/hparams/session_groups", json.dumps(request).encode())
        rows = {g["name"]: ([s["name"] for s in g["sessions"]], g["hparams"],
                            {m["name"]["tag"]: m["value"] for m in g["metricValues"]})
                for g in groups["sessionGroups"]}  # fmt: skip
        return ([h["name"] for h in experiment["hparamInfos"]],
                [m["name"]["tag"] for m in experiment["metricInfos"]], rows)  # fmt: skip

    def close(self) -> str:
        self.process.kill()
        self.process.wait(timeout=30)
        return self.process.stderr.read()


@pytest.mark.slow
def test_tensorboard_server_shows_every_dashboard(xor_config, tmp_path):
    """An experiment's folder, as the console names it (at a Korean path)."""
    logdir = tmp_path / "runs" / "실험"  # the seminar warns of Korean paths
    xor_config.num_steps = 100
    for activation in ("relu", "tanh"):
        xor_config.model.activation = activation
        train.train_and_evaluate(xor_config, str(logdir / activation))
    xor_config.num_seeds = 2  # and a sweep of seeds, for its bands
    train.train_and_evaluate(xor_config, str(logdir / "seeds"))
    server = Server(logdir, tmp_path, runs=5)
    get = server.get
    try:
        runs = get("/data/runs")
        assert sorted(runs) == ["relu", "seeds/aggregate", "seeds/seed=0", "seeds/seed=1", "tanh"]
        scalars = get("/data/plugin/scalars/tags")
        assert {"train/loss", "train/accuracy", "eval/loss"} <= set(scalars["relu"])
        histograms = get("/data/plugin/histograms/tags")
        assert "weights/layers/0/kernel" in histograms["tanh"]
        graphs = get("/data/plugin/graphs/info")
        assert graphs["relu"]["run_graph"] is True
        text = get("/data/plugin/text/tags")
        assert {"config", "run"} <= set(text["relu"])
        images = get("/data/plugin/images/tags")
        assert {"views/decision_boundary/train", "views/activation/relu"} <= set(images["relu"])
        # Time Series, in its alphabetical order: the loss and accuracy, then the pictures
        pictures = set(images["relu"]) | set(histograms["relu"])
        tags = sorted(set(scalars["relu"]) | pictures)
        first_picture = min(tags.index(t) for t in pictures)
        assert {"eval/loss", "eval/accuracy", "train/loss"} <= set(tags[:first_picture])
        assert all(t.startswith(("views/", "weights/")) for t in pictures)
        assert sorted(get("/data/plugin/projector/runs"))[::3] == ["relu", "tanh"]
        (embedding,) = get("/data/plugin/projector/info?run=tanh")["embeddings"]
        assert embedding["tensorName"] == "features" and embedding["tensorShape"] == [4, 16]
        # HPARAMS: a row per run named as the run, the seeds as sessions of theirs;
        # the key fields and the one that differs, not the logging cadence; headline metrics
        hparams, metrics, rows = server.hparams()
        assert {"model.activation", "optimizer.learning_rate", "num_steps"} <= set(hparams)
        assert "log_every" not in hparams and len(hparams) < 20, hparams
        assert metrics == ["train/loss", "train/accuracy", "eval/loss", "eval/accuracy"]
        assert sorted(rows) == ["relu", "seeds", "tanh"]
        assert rows["tanh"][0] == ["tanh"] and rows["tanh"][1]["model.activation"] == "tanh"
        assert sorted(rows["seeds"][0]) == ["seeds/seed=0", "seeds/seed=1"]
        assert rows["relu"][2]["train/accuracy"] == 1.0
        # CUSTOM SCALARS: the seeds' mean with a mean -+ std band, per metric
        (category,) = get("/data/plugin/custom_scalars/layout")["category"]
        band = category["chart"][0]
        assert band["title"] == "train/loss: mean -+ std over seeds"
        series = band["margin"]["series"][0]
        assert series == {"value": "train/loss/mean", "lower": "train/loss/lower",
                          "upper": "train/loss/upper"}  # fmt: skip
        regex = urllib.parse.quote("^train/loss/(lower|mean|std)$")
        found = get(f"/data/plugin/custom_scalars/scalars?run=seeds/aggregate&tag={regex}")
        events = found["tag_to_events"]
        (_, step, low), (_, _, m), (_, _, s) = (events[f"train/loss/{k}"][-1]
                                                 for k in ("lower", "mean", "std"))  # fmt: skip
        assert step == 100 and low == pytest.approx(m - s)
    finally:
        stderr = server.close()
    assert "TensorFlow installation not found" in stderr  # as a user's


@pytest.mark.slow
def test_tensorboard_server_on_a_sweep_above_max_member_runs(xor_config, tmp_path):
    """The sweep's own directory, as the console names it: every point's
    aggregate, its charts, and a HPARAMS row per point with medians."""
    xor_config.num_steps, xor_config.num_seeds, xor_config.max_member_runs = 100, 3, 4
    xor_config.sweep.optimizer.learning_rate = (0.01, 0.1)
    run_dir = tmp_path / "xor" / "sweep"
    train.train_and_evaluate(xor_config, str(run_dir))
    server = Server(run_dir, tmp_path, runs=3)
    try:
        runs = server.get("/data/runs")
        assert sorted(runs) == ["aggregate", "learning_rate=0.01/aggregate",
                                "learning_rate=0.1/aggregate"]  # fmt: skip
        scalars = server.get("/data/plugin/scalars/tags")
        assert {"train/loss/median", "eval/accuracy/mean", "solved"} <= set(
            scalars["learning_rate=0.1/aggregate"]
        )
        images = server.get("/data/plugin/images/tags")
        assert "views/sweep/eval_loss_vs_learning_rate" in images["aggregate"]
        text = server.get("/data/plugin/text/tags")
        assert "results" in text["aggregate"]
        hparams, metrics, rows = server.hparams()
        assert "optimizer.learning_rate" in hparams and "seed" not in hparams
        assert metrics == ["train/loss/median", "train/accuracy/median", "eval/loss/median",
                           "eval/accuracy/median", "solved", "diverged"]  # fmt: skip
        row = rows["sweep/learning_rate=0.1/aggregate"]
        assert row[1]["optimizer.learning_rate"] == 0.1 and row[2]["diverged"] == 0
        assert 0 <= row[2]["solved"] <= 1 and set(rows) == {
            "sweep/learning_rate=0.01/aggregate",
            "sweep/learning_rate=0.1/aggregate",
        }
    finally:
        server.close()
