"""The benchmarks run (in --quick mode), so they cannot rot; speed itself is never asserted."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_cnn_benchmark_quick_mode_prints_json():
    result = subprocess.run(
        [sys.executable, "benchmarks/cnn.py", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    assert numbers["train_images_per_second"] > 0 and numbers["train_gflops_per_second"] > 0
    assert numbers["train_gflop_per_step"] > 2  # 128 images x about 28 MFLOP


@pytest.mark.slow
def test_xor_benchmark_quick_mode_prints_json():
    result = subprocess.run(
        [sys.executable, "benchmarks/xor.py", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    assert numbers["loop_steps_per_second"] > 0 and numbers["command_seconds"] > 0
