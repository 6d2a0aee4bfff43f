"""The benchmarks run (in --quick mode), so they cannot rot; speed itself is never asserted."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quick(script):
    """Runs `benchmarks/<script> --quick`; returns its JSON line."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_cnn_benchmark_quick_mode_prints_json():
    numbers = run_quick("cnn.py")
    assert numbers["train_images_per_second"] > 0 and numbers["train_gflops_per_second"] > 0
    assert numbers["train_gflop_per_step"] > 2  # 128 images x about 28 MFLOP
    assert numbers["peer_optimizer_train_images_per_second"] > 0  # SGD with momentum
    assert numbers["eval_images_per_second"] > 0


@pytest.mark.slow
def test_xor_benchmark_quick_mode_prints_json():
    numbers = run_quick("xor.py")
    assert numbers["loop_steps_per_second"] > 0 and numbers["command_seconds"] > 0


def test_sweep_benchmark_quick_mode_prints_json():
    numbers = run_quick("sweep.py")
    assert numbers["members"] == 8
    assert numbers["member_steps_per_second"] > 0 and numbers["sequential_steps_per_second"] > 0
    assert 0 < numbers["bytes_per_member"] < 10_000  # a 2-4-1 net and its metrics
