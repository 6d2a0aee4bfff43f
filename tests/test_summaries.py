"""dashboards/summaries.py: Flax's SummaryWriter without TensorFlow, in the trainer's
process: what flax's writer writes, the trainer's wall times, every failure one line."""

import importlib.util
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
from conftest import read_events, read_scalars, start_cli, train_command
from PIL import Image
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import event_pb2, graph_pb2
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from dashboards import summaries
from plumbing.failures import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The same summaries through both writers, with the same calls: flax's (the
# reference, in a process with TensorFlow, a dev-only install) and ours.
CONFIG = {"a": 1, "b": {"c": (2, 3), "d": "x", "e": True, "f": 0.5}}
SUMMARIES = """
    rgb = (np.arange(5 * 7 * 3).reshape(5, 7, 3) * 3 % 256).astype(np.uint8)
    gray = np.linspace(0, 1, 35).reshape(5, 7)
    batch = np.stack([rgb, rgb[::-1], rgb[:, ::-1], rgb])  # 4 pictures: 3 are kept
    weights = np.linspace(-2, 3, 1000) ** 3
    graph = graph_pb2.GraphDef()
    graph.node.add(name="x", op="Const")
    graph.node.add(name="y", op="Neg", input=["x"])
"""
REFERENCE = f"""
import os, sys
import numpy as np
import tensorflow as tf
from flax.metrics import tensorboard
from tensorboard.compat.proto import graph_pb2
from dashboards import summaries
{textwrap.dedent(SUMMARIES)}
writer = tensorboard.SummaryWriter(sys.argv[1], auto_flush=False)
writer.hparams(summaries.flatten({CONFIG!r}))
writer.text("config", "some *markdown*", 3)
writer.scalar("loss", 0.25, 7)
writer.scalar("accuracy", 0.75, 7)
writer.image("rgb", rgb, 7)
writer.image("gray", gray, 8)
writer.image("batch", batch, 8)
writer.histogram("weights", weights, 9)
writer.histogram("weights_10", weights, 9, bins=10)
writer.write("tensor", np.arange(6.0).reshape(2, 3), 9)
with writer._event_writer.as_default():
    tf.summary.graph(tf.compat.v1.GraphDef.FromString(graph.SerializeToString()))
writer.close()
"""


def write_ours(log_dir):
    exec(textwrap.dedent(SUMMARIES), globals(), namespace := {})
    writer = summaries.SummaryWriter(str(log_dir), auto_flush=False)
    writer.hparams(CONFIG)
    writer.text("config", "some *markdown*", 3)
    writer.scalar("loss", 0.25, 7)
    writer.scalar("accuracy", 0.75, 7)
    writer.image("rgb", namespace["rgb"], 7)
    writer.image("gray", namespace["gray"], 8)
    writer.image("batch", namespace["batch"], 8)
    writer.histogram("weights", namespace["weights"], 9)
    writer.histogram("weights_10", namespace["weights"], 9, bins=10)
    writer.write("tensor", np.arange(6.0).reshape(2, 3), 9)
    writer.graph(namespace["graph"])
    writer.close()


def load_events(log_dir):
    (path,) = summaries.event_files(log_dir)
    records = event_file_loader.RawEventFileLoader(path).Load()
    return [event_pb2.Event.FromString(r) for r in records]


def comparable(events):
    """{(step, tag): what TensorBoard shows of it}, free of encodings and clocks."""
    out = {}
    for event in events:
        if event.HasField("graph_def"):
            graph = graph_pb2.GraphDef.FromString(event.graph_def)
            out[(event.step, "graph")] = graph.SerializeToString(deterministic=True)
        for value in event.summary.value:
            metadata = value.metadata
            array = tensor_util.make_ndarray(value.tensor)
            if metadata.plugin_data.plugin_name == "hparams":
                data = plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content)
                data.session_start_info.start_time_secs = 0  # when each was written
                shown = sorted(
                    (k, v.SerializeToString()) for k, v in data.session_start_info.hparams.items()
                )
                data.session_start_info.ClearField("hparams")
                metadata.plugin_data.content = data.SerializeToString()
                array = (array.tolist(), shown)
            elif metadata.plugin_data.plugin_name == "images":  # PNGs differ in zlib's choices
                width, height, *pngs = array.tolist()
                pixels = [np.asarray(Image.open(io.BytesIO(png))).tolist() for png in pngs]
                array = (width, height, pixels)
            elif metadata.plugin_data.plugin_name == "histograms":  # float sums differ in ulps
                array = (array.dtype.str, np.round(array, 5).tolist())
            else:
                array = (array.dtype.str, array.tolist())
            out[(event.step, value.tag)] = (metadata.SerializeToString(), array)
    return out


@pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="flax's writer, the reference, needs TensorFlow (requirements-dev.txt)",
)
def test_events_match_what_flax_writes(tmp_path):
    subprocess.run(
        [sys.executable, "-c", REFERENCE, str(tmp_path / "flax")],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""),
        check=True,
        capture_output=True,
    )
    write_ours(tmp_path / "ours")
    theirs, ours = (
        comparable(load_events(tmp_path / "flax")),
        comparable(load_events(tmp_path / "ours")),
    )
    assert len(ours) == 11  # hparams, text, 2 scalars, 3 images, 2 histograms, a tensor, graph
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert ours[key] == theirs[key], key
    # The same file: its first event and its name (the checksums are checked on reading).
    for log_dir in ("flax", "ours"):
        (path,) = summaries.event_files(tmp_path / log_dir)
        assert load_events(tmp_path / log_dir)[0].file_version == "brain.Event:2"
        name = (
            r"events\.out\.tfevents\.\d{10}\." + re.escape(socket.gethostname()) + r"\.\d+\.\d+\.v2"
        )
        assert re.fullmatch(name, os.path.basename(path)), path


def test_no_process_of_a_run_imports_tensorflow(tmp_path):
    """The whole command line (it lists its imports), and cutting events back for a resumed run."""
    result = subprocess.run(
        train_command("--config=configs/xor.py", "--config.num_steps=200", workdir=tmp_path),
        cwd=ROOT,
        env=dict(os.environ, PYTHONPROFILEIMPORTTIME="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert {"jax", "dashboards.summaries", "google_crc32c"} <= imported
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras")}
    run_dir = tmp_path / "xor" / "num_steps=200"
    assert sorted(read_scalars(run_dir, "train/loss")) == [100, 200]
    tags = read_events(run_dir).Tags()
    assert {"config", "run", "views/decision_boundary/train"} <= set(tags["tensors"])
    assert tags["graph"]
    cut = "import sys; from dashboards import summaries; "
    cut += f"print(summaries.cut_events_after({str(run_dir)!r}, 100)); "
    cut += "assert 'tensorflow' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", cut], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and int(result.stdout) > 0, result.stderr
    assert sorted(read_scalars(run_dir, "train/loss")) == [100]


def children(pid: int) -> list[int]:
    """The processes that `pid` (any of its threads) started and that still run."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(child) for child in f.read().split()]
    return found


def test_a_run_writes_its_summaries_itself_with_no_process_of_its_own(tmp_path):
    """While it trains (its step lines print), train.py has no child process."""
    run = start_cli(
        "--config=configs/xor.py", "--config.num_steps=3000", "--config.log_every=1",
        "--config.picture_every=3000", workdir=tmp_path,
    )  # fmt: skip
    try:
        seen = []
        for line in run.stdout:
            if line.startswith("step") and len(seen) < 20:
                seen.append(children(run.pid))
        assert run.wait(timeout=300) == 0, run.stderr.read()
    finally:
        run.kill()
    assert len(seen) == 20 and seen == [[]] * 20
    assert len(read_scalars(tmp_path / "xor" / "log_every=1,num_steps=3000,picture_every=3000",
                            "train/loss")) == 3000  # fmt: skip


def test_each_event_keeps_the_wall_time_of_its_call(tmp_path, monkeypatch):
    # Times no process would stamp now; the first two: the file's name and its first event.
    clock = iter([1_000_000_000.0, 1_000_000_000.0, 1_000_000_000.25, 1_000_000_100.5])
    monkeypatch.setattr(summaries, "time", types.SimpleNamespace(time=lambda: next(clock)))
    writer = summaries.SummaryWriter(str(tmp_path))
    writer.scalar("loss", 1.0, 1)
    writer.scalar("loss", 0.5, 2)
    writer.close()
    events = read_events(tmp_path).Tensors("loss")
    assert [(e.step, e.wall_time) for e in events] == [(1, 1_000_000_000.25), (2, 1_000_000_100.5)]


def test_a_removed_run_directory_is_an_error_also_when_made_again(tmp_path):
    for again in (False, True):
        log_dir = tmp_path / str(again)
        writer = summaries.SummaryWriter(str(log_dir), auto_flush=False)
        writer.scalar("a", 1.0, 1)
        shutil.rmtree(log_dir)
        if again:
            log_dir.mkdir()  # as a checkpoint's save would make it again
        writer.scalar("a", 2.0, 2)
        with pytest.raises(UserError, match="disappeared .was the run directory removed"):
            writer.flush()
        with pytest.raises(UserError, match="disappeared"):
            writer.close()
        assert not again or not summaries.event_files(log_dir), "written into the new directory"


def test_a_full_disk_is_one_line(tmp_path):
    writer = summaries.SummaryWriter(str(tmp_path), auto_flush=False)
    writer._file.close()
    writer._file = open("/dev/full", "wb")  # noqa: SIM115  (every write: ENOSPC)
    writer.scalar("a", 1.0, 1)
    with pytest.raises(UserError) as error:
        writer.flush()
    assert str(error.value) == (
        f"cannot write summaries to {tmp_path}: the disk is full (No space left on device)"
    )


def test_what_was_flushed_survives_a_sigkill(tmp_path):
    script = f"""
import os, signal
from dashboards import summaries
writer = summaries.SummaryWriter({str(tmp_path)!r}, auto_flush=False)
for step in range(1, 101):
    writer.scalar("a", float(step), step)
writer.flush()
writer.scalar("a", 101.0, 101)  # not flushed: lost with the process
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert read_scalars(tmp_path, "a") == {step: float(step) for step in range(1, 101)}


def test_hundreds_of_writers_at_once(tmp_path):
    """A sweep's members: one writer each, all open together."""
    writers = [summaries.SummaryWriter(str(tmp_path / str(k)), False) for k in range(300)]
    for step in (1, 2):
        for k, writer in enumerate(writers):
            writer.write_scalars(step, {"a": float(k * step)})
            writer.flush()
    for writer in writers:
        writer.close()
    for k in (0, 150, 299):
        assert read_scalars(tmp_path / str(k), "a") == {1: float(k), 2: float(2 * k)}
    assert all(len(summaries.event_files(tmp_path / str(k))) == 1 for k in range(300))


def test_a_writer_whose_first_write_fails_leaves_no_event_file(tmp_path, monkeypatch):
    class FullDisk(io.FileIO):  # the file is made; nothing fits in it
        def write(self, data):
            raise OSError(28, "No space left on device")

    def buffered(path, mode):  # as open() makes it: the failure comes at flush and close
        return io.BufferedWriter(FullDisk(path, mode))

    monkeypatch.setattr(summaries, "open", buffered, raising=False)
    with pytest.raises(UserError, match="the disk is full"):
        summaries.SummaryWriter(str(tmp_path))
    assert not summaries.event_files(tmp_path)
