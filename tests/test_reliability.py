"""Real processes killed, their directories removed, their disk full."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import COMPILATION_CACHE
from test_checkpoints import all_summaries

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Slow enough (~1 s of training) to be caught mid-run.
ARGS = [
    "--config=configs/xor.py",
    "--config.model.hidden_sizes=(256,256)",
    "--config.num_steps=6000",
    "--config.log_every=500",
    "--config.checkpoint_every=1000",
]
RUN = "xor/checkpoint_every=1000,log_every=500,model.hidden_sizes=256x256,num_steps=6000"


def start(workdir):
    return subprocess.Popen(
        [sys.executable, "train.py", *ARGS, f"--workdir={workdir}", COMPILATION_CACHE],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(run_dir, step, timeout=120):
    path = run_dir / "checkpoints" / str(step)
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"no checkpoint {step} in {timeout} s"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("whole")
    process = start(workdir)
    assert process.wait(timeout=300) == 0, process.stderr.read()
    return all_summaries(workdir / RUN)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_results(tmp_path, uninterrupted, signum):
    process = start(tmp_path)
    wait_for_checkpoint(tmp_path / RUN, 1000)
    process.send_signal(signum)
    code = process.wait(timeout=120)
    stderr = process.stderr.read()
    steps = sorted(int(s) for s in os.listdir(tmp_path / RUN / "checkpoints") if s.isdigit())
    assert steps[-1] < 6000, "the run finished before the signal: nothing was tested"
    if signum == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM
        assert stderr.startswith("error: SIGTERM at step") and "run the same command" in stderr
    else:
        assert code == -signal.SIGKILL
    resumed = start(tmp_path)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert f"resumed at step {steps[-1]}" in resumed.stdout.read()
    assert all_summaries(tmp_path / RUN) == uninterrupted


@pytest.mark.slow
def test_sigterm_during_start_up_leaves_nothing(tmp_path):
    process = start(tmp_path)
    deadline = time.time() + 120
    while not (tmp_path / RUN).exists():  # main() has made it: compiling now
        assert time.time() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    assert process.stderr.read() == "error: SIGTERM before the first step: nothing to save\n"
    assert not (tmp_path / RUN).exists()


@pytest.mark.slow
def test_run_directory_removed_mid_run_is_a_clear_error(tmp_path):
    process = start(tmp_path)
    wait_for_checkpoint(tmp_path / RUN, 1000)
    subprocess.run(["rm", "-rf", str(tmp_path / "xor")], check=True)
    assert process.wait(timeout=120) == 1
    stderr = process.stderr.read()
    assert "Traceback" not in stderr
    assert stderr.startswith("error: cannot write") and "removed" in stderr, stderr


@pytest.fixture(params=["60k", "300k"])
def full_disk(request, tmp_path):
    """A tiny tmpfs: 60 KiB fills up with the events, 300 KiB at a checkpoint."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={request.param}", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode != 0:
        pytest.skip("needs root and mount to fake a full disk")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


def test_full_disk_is_a_clear_error(full_disk):
    result = subprocess.run(
        [sys.executable, "train.py", "--config=configs/xor.py", COMPILATION_CACHE]
        + ["--config.model.hidden_sizes=(64,64)", f"--workdir={full_disk}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: cannot write ") and f" to {full_disk}/xor/" in lines[0]
    assert lines[0].endswith(": the disk is full (No space left on device)")


def test_a_failed_writes_library_logs_are_kept_off_the_console():
    """The full-disk error is one line: orbax's, asyncio's and the closed
    event loop's "exception calling callback" records are dropped."""
    import logging

    import train

    def record(name, pathname):
        return logging.LogRecord(name, logging.ERROR, pathname, 1, "boom", None, None)

    dropped = [
        record("absl", "/site-packages/orbax/checkpoint/async_checkpointer.py"),
        record("asyncio", "/lib/python3.11/asyncio/base_events.py"),
        record("concurrent.futures", "/lib/python3.11/concurrent/futures/_base.py"),
    ]
    assert not any(train._not_from_a_failed_write(r) for r in dropped)
    assert train._not_from_a_failed_write(record("absl", "/work/train.py"))
    assert train._not_from_a_failed_write(record("jax._src.xla_bridge", "/jax/xla_bridge.py"))
