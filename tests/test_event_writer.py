"""The event-writer process: no TensorFlow anywhere, yet it writes what flax's
writer would, with the trainer's wall times, and the trainer hears of every failure."""

import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types

import numpy as np
import pytest
from conftest import COMPILATION_CACHE, read_events, read_scalars, without_package
from PIL import Image
from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import event_pb2, graph_pb2
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from dashboards import event_writer, summaries
from plumbing.failures import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The same summaries through both writers: flax's (the reference, in a
# process with TensorFlow, which the tests install) and summaries.Writer.
CONFIG = {"a": 1, "b": {"c": (2, 3), "d": "x", "e": True, "f": 0.5}}
SUMMARIES = """
    rgb = (np.arange(5 * 7 * 3).reshape(5, 7, 3) * 3 % 256).astype(np.uint8)
    gray = np.linspace(0, 1, 35).reshape(5, 7)
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
with writer._event_writer.as_default():
    tf.summary.graph(tf.compat.v1.GraphDef.FromString(graph.SerializeToString()))
writer.close()
"""


def write_ours(log_dir):
    exec(textwrap.dedent(SUMMARIES), globals(), namespace := {})
    writer = summaries.Writer(str(log_dir))
    writer.hparams(CONFIG)
    writer.text("config", "some *markdown*", 3)
    writer.scalars(7, {"loss": 0.25, "accuracy": 0.75})
    writer.image("rgb", namespace["rgb"], 7)
    writer.image("gray", namespace["gray"], 8)
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
                width, height, png = array.tolist()
                array = (width, height, np.asarray(Image.open(io.BytesIO(png))).tolist())
            else:
                array = (array.dtype.str, array.tolist())
            out[(event.step, value.tag)] = (metadata.SerializeToString(), array)
    return out


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
    assert len(ours) == 7  # hparams, text, 2 scalars, 2 images, graph
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
    """The whole command line, the trainer and its event writer (both list their
    imports), and cutting events back for a resumed run."""
    result = subprocess.run(
        [sys.executable, "train.py", "--config=configs/xor.py"]
        + ["--config.num_steps=200", f"--workdir={tmp_path}", COMPILATION_CACHE],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPROFILEIMPORTTIME="1"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines()}
    assert {"jax", "dashboards.summaries", "google_crc32c"} <= imported  # both processes
    assert not {m for m in imported if m.split(".")[0] in ("tensorflow", "keras")}
    run_dir = tmp_path / "xor" / "num_steps=200"
    assert sorted(read_scalars(run_dir, "train/loss")) == [100, 200]
    tags = read_events(run_dir).Tags()
    assert {"config", "run", "decision_boundary/train"} <= set(tags["tensors"]) and tags["graph"]
    cut = "import sys; from dashboards import summaries; "
    cut += f"print(summaries.cut_events_after({str(run_dir)!r}, 100)); "
    cut += "assert 'tensorflow' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", cut], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and int(result.stdout) > 0, result.stderr
    assert sorted(read_scalars(run_dir, "train/loss")) == [100]


def test_each_event_keeps_the_wall_time_the_trainer_gave_it(tmp_path, monkeypatch):
    clock = iter([1_000_000_000.25, 1_000_000_100.5])  # times no process would stamp now
    monkeypatch.setattr(summaries, "time", types.SimpleNamespace(time=lambda: next(clock)))
    writer = summaries.Writer(str(tmp_path))
    writer.scalars(1, {"loss": 1.0})
    writer.scalars(2, {"loss": 0.5})
    writer.close()
    events = read_events(tmp_path).Tensors("loss")
    assert [(e.step, e.wall_time) for e in events] == [(1, 1_000_000_000.25), (2, 1_000_000_100.5)]


def test_sending_does_not_wait_for_the_writer(tmp_path):
    """20 MB of events leave the trainer's thread while the writer process is stopped."""
    script = f"""
import os, signal, threading
from dashboards import summaries
writer = summaries.Writer({str(tmp_path)!r})
os.kill(writer._process.pid, signal.SIGSTOP)
threading.Timer(60, os.kill, (writer._process.pid, signal.SIGCONT)).start()  # if it hangs
for step in range(50):
    writer.text("big", "x" * 400_000, step)
print("sent", flush=True)  # not reached if a call waited for the stopped writer
os.kill(writer._process.pid, signal.SIGCONT)
writer.close()
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "sent\n"
    assert len(read_events(tmp_path).Tensors("big")) == 50


def wait_for_event_file(log_dir, timeout=60):
    deadline = time.time() + timeout
    while not summaries.event_files(log_dir):
        assert time.time() < deadline, f"no event file in {log_dir} after {timeout} s"
        time.sleep(0.05)
    return summaries.event_files(log_dir)[0]


def test_a_directory_removed_and_made_again_is_an_error(tmp_path):
    """Before, after or while the event writer opens its file there."""
    for attempt in range(50):
        log_dir = tmp_path / str(attempt)
        writer = summaries.Writer(str(log_dir))
        writer.scalars(1, {"a": 1.0})
        time.sleep(attempt % 5 * 0.001)
        while log_dir.exists():  # the event writer may be adding its file
            shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(exist_ok=True)  # as a checkpoint's save would make it again
        with pytest.raises(UserError, match="disappeared .was the run directory removed"):
            writer.flush()
        with pytest.raises(UserError, match="disappeared"):
            writer.close()
        assert not summaries.event_files(log_dir), f"written into the new directory ({attempt})"


def test_a_dead_writer_process_is_an_error_and_the_next_writer_starts_another(tmp_path):
    writer = summaries.Writer(str(tmp_path / "first"))
    writer.scalars(1, {"a": 1.0})
    wait_for_event_file(tmp_path / "first")
    os.kill(event_writer.start().pid, signal.SIGKILL)
    with pytest.raises(UserError, match=r"cannot write summaries to .*first: the process .* ended"):
        writer.close()
    again = summaries.Writer(str(tmp_path / "second"))
    again.scalars(1, {"a": 2.0})
    again.close()
    assert read_scalars(tmp_path / "second", "a") == {1: 2.0}


def test_the_writer_process_leaves_ctrl_c_and_sigterm_to_the_trainer(tmp_path):
    writer = summaries.Writer(str(tmp_path))
    writer.scalars(1, {"a": 1.0})
    wait_for_event_file(tmp_path)
    pid = event_writer.start().pid
    os.kill(pid, signal.SIGINT)
    os.kill(pid, signal.SIGTERM)
    writer.scalars(2, {"a": 2.0})
    writer.close()
    assert event_writer.start().pid == pid
    assert read_scalars(tmp_path, "a") == {1: 1.0, 2: 2.0}


def test_what_was_flushed_is_written_after_the_trainer_is_killed(tmp_path):
    script = f"""
import os, signal
from dashboards import summaries
writer = summaries.Writer({str(tmp_path)!r})
for step in range(1, 101):
    writer.scalars(step, {{"a": float(step)}})
writer.flush(wait=True)
print(writer._process.pid, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == -signal.SIGKILL, result.stderr
    child = int(result.stdout)
    deadline = time.time() + 120
    while os.path.exists(f"/proc/{child}") and " Z " not in open(f"/proc/{child}/stat").read():
        assert time.time() < deadline, "the event writer outlived its trainer by 120 s"
        time.sleep(0.1)
    assert read_scalars(tmp_path, "a") == {step: float(step) for step in range(1, 101)}


def test_events_are_not_cut_while_a_writer_still_appends(tmp_path):
    writer = summaries.Writer(str(tmp_path))
    writer.scalars(1, {"a": 1.0})
    path = wait_for_event_file(tmp_path)
    with pytest.raises(UserError, match="still being written by another process"):
        summaries._wait_until_written(path, timeout=0.5)
    writer.close()
    start = time.perf_counter()
    assert summaries.cut_events_after(str(tmp_path), 0) == 1
    assert time.perf_counter() - start < 0.5


def test_hundreds_of_writers_at_once(tmp_path):
    """A sweep's members: one writer each, all open together in one event writer."""
    writers = [summaries.Writer(str(tmp_path / str(k))) for k in range(300)]
    for step in (1, 2):
        for k, writer in enumerate(writers):
            writer.scalars(step, {"a": float(k * step)})
            writer.flush()
    for writer in writers:
        writer.close()
    for k in (0, 150, 299):
        assert read_scalars(tmp_path / str(k), "a") == {1: float(k), 2: float(2 * k)}
    assert all(len(summaries.event_files(tmp_path / str(k))) == 1 for k in range(300))


def test_a_writer_process_without_its_libraries_is_one_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "--config=configs/xor.py", "--config.num_steps=100"]
        + [f"--workdir={tmp_path / 'runs'}", COMPILATION_CACHE],
        cwd=ROOT,
        env=without_package("google_crc32c", tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot write summaries to "), result.stderr
    assert "cannot import its libraries: ImportError('no google_crc32c here')" in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_close_in_a_failing_run_drops_what_other_threads_print_meanwhile(tmp_path):
    """The error that ends the run is what the user reads (one line from train.py)."""
    script = f"""
import os, signal, sys, threading, time
from dashboards import summaries
writer = summaries.Writer({str(tmp_path)!r})
writer.scalars(1, {{"a": 1.0}})
os.kill(writer._process.pid, signal.SIGSTOP)  # close waits for the writer: 0.5 s
threading.Timer(0.5, os.kill, (writer._process.pid, signal.SIGCONT)).start()
noise = lambda: [time.sleep(0.1), os.write(2, b"NOISE from a thread\\n")]
try:
    try:
        raise RuntimeError("the error")
    finally:
        threading.Thread(target=noise).start()
        writer.close()
except RuntimeError:
    print("the error", file=sys.stderr)
threading.Thread(target=noise).start()
time.sleep(0.5)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "the error\nNOISE from a thread\n"  # only the one after close
    assert read_scalars(tmp_path, "a") == {1: 1.0}
