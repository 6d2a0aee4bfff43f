"""Real processes killed, their directories removed, their disk full, run twice at once."""

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import COMPILATION_CACHE, ROOT, start_cli
from test_checkpoints import all_summaries

from dashboards import summaries

# Slow enough (~1 s of training) to be caught mid-run.
ARGS = [
    "--config=configs/xor.py",
    "--config.model.hidden_sizes=(256,256)",
    "--config.num_steps=6000",
    "--config.log_every=500",
    "--config.checkpoint_every=1000",
]
RUN = "xor/checkpoint_every=1000,log_every=500,model.hidden_sizes=256x256,num_steps=6000"
# The killed runs draw fewer pictures (drawing 256-unit nets every 500 steps took half
# their time); the tests that act while a run goes keep it slow.
FEWER_PICTURES = ["--config.picture_every=3000"]
KILLED_RUN = RUN + ",picture_every=3000"
# A sweep: 2 learning rates x 2 seeds, one program; its sharpness picture
# at the end draws every log step's, those before the kill from the checkpoint.
SWEEP = [
    *FEWER_PICTURES,
    "--config.num_seeds=2",
    "--config.sweep.optimizer.learning_rate=(0.01,0.05)",
    "--config.probes.sharpness=true",
]
SWEEP_RUN = (
    "xor/checkpoint_every=1000,log_every=500,model.hidden_sizes=256x256,num_seeds=2,"
    "num_steps=6000,picture_every=3000,probes.sharpness=True,sweep.optimizer.learning_rate=0.01+0.05"
)


def start(workdir, extra=()):
    return start_cli(*ARGS, *extra, workdir=workdir)


def wait_for_checkpoint(run_dir, step, timeout=120):
    path = run_dir / "checkpoints" / str(step)
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"no checkpoint {step} in {timeout} s"
        time.sleep(0.02)


def every_summary(run_dir) -> dict:
    """{run below run_dir: all_summaries(run)} for every TensorBoard run in it."""
    runs = {}
    for folder, _, _ in os.walk(run_dir):
        if summaries.event_files(folder):
            runs[os.path.relpath(folder, run_dir)] = all_summaries(folder)
    return runs


KINDS = {"run": (FEWER_PICTURES, KILLED_RUN), "sweep": (SWEEP, SWEEP_RUN)}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """Each kind's summaries, trained without a break (computed once)."""
    done = {}

    def get(kind):
        if kind not in done:
            workdir = tmp_path_factory.mktemp(f"whole-{kind}")
            process = start(workdir, KINDS[kind][0])
            assert process.wait(timeout=300) == 0, process.stderr.read()
            done[kind] = every_summary(workdir / KINDS[kind][1])
        return done[kind]

    return get


@pytest.mark.slow
# A single run and a sweep go through the same loop, so each kind is killed
# one way: SIGTERM (save first, then stop) and SIGKILL (no warning at all).
@pytest.mark.parametrize("kind, signum", [("run", signal.SIGTERM), ("sweep", signal.SIGKILL)])
def test_killed_run_resumes_to_identical_results(tmp_path, uninterrupted, kind, signum):
    extra, name = KINDS[kind]
    process = start(tmp_path, extra)
    wait_for_checkpoint(tmp_path / name, 1000)
    process.send_signal(signum)
    code = process.wait(timeout=120)
    stderr = process.stderr.read()
    steps = sorted(int(s) for s in os.listdir(tmp_path / name / "checkpoints") if s.isdigit())
    assert steps[-1] < 6000, "the run finished before the signal: nothing was tested"
    if signum == signal.SIGTERM:
        assert code == 128 + signal.SIGTERM
        assert stderr.startswith("error: SIGTERM at step") and "run the same command" in stderr
    else:
        assert code == -signal.SIGKILL
    resumed = start(tmp_path, extra)
    assert resumed.wait(timeout=300) == 0, resumed.stderr.read()
    assert f"resumed at step {steps[-1]}" in resumed.stdout.read()
    runs = every_summary(tmp_path / name)
    assert len(runs) == (1 if kind == "run" else 2 * 2 + 2 + 1)  # members, aggregates, table
    assert runs == uninterrupted(kind)


@pytest.mark.slow
def test_the_same_command_twice_at_once_refuses_the_second(tmp_path):
    first = start(tmp_path)
    wait_for_checkpoint(tmp_path / RUN, 1000)
    second = start(tmp_path)
    assert second.wait(timeout=120) == 1
    stderr = second.stderr.read()
    assert stderr == (
        f"error: {tmp_path / RUN} is being trained by process {first.pid} right now: wait "
        "for it to finish (the same command then resumes or reports it finished), or pass "
        "--new_run to start a run beside it\n"
    )
    assert first.wait(timeout=300) == 0, first.stderr.read()
    assert len(summaries.event_files(tmp_path / RUN)) == 1
    assert sorted(os.listdir(tmp_path / RUN / "checkpoints")) == ["4000", "5000", "6000"]


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

    from plumbing import failures

    def record(name, pathname):
        return logging.LogRecord(name, logging.ERROR, pathname, 1, "boom", None, None)

    dropped = [
        record("absl", "/site-packages/orbax/checkpoint/async_checkpointer.py"),
        record("asyncio", "/lib/python3.11/asyncio/base_events.py"),
        record("concurrent.futures", "/lib/python3.11/concurrent/futures/_base.py"),
    ]
    assert not any(failures.not_from_a_failed_write(r) for r in dropped)
    assert failures.not_from_a_failed_write(record("absl", "/work/train.py"))
    assert failures.not_from_a_failed_write(record("jax._src.xla_bridge", "/jax/xla_bridge.py"))
