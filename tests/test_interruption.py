"""Kill a real training process and resume it: nothing lost, nothing doubled."""

import os
import signal
import subprocess
import sys
import time

import pytest
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
        [sys.executable, "train.py", *ARGS, f"--workdir={workdir}"],
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
