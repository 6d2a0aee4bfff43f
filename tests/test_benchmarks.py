"""The benchmarks run (in --quick mode), so they cannot rot; speed itself is never asserted."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_quick(script, env=None):
    """Runs `benchmarks/<script> --quick` (with `env` added); returns its JSON line."""
    result = subprocess.run(
        [sys.executable, f"benchmarks/{script}", "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})},
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
    parts = numbers["command_parts_s"]  # where the command's seconds go
    assert list(parts) == ["python", "import_jax", "backend_start", "imports", "build", "train",
                           "rest"]  # fmt: skip
    assert parts["import_jax"] > 0 and parts["build"] > 0 and parts["train"] > 0
    assert (
        set(numbers["backend_start_with_s"])
        == {"default", "XLA_PYTHON_CLIENT_PREALLOCATE=false", "JAX_PLATFORMS=cpu"}
        or numbers["backend"] != "cpu"
    )


def test_sweep_benchmark_quick_mode_prints_json():
    numbers = run_quick("sweep.py")
    assert numbers["members"] == 8
    assert numbers["member_steps_per_second"] > 0 and numbers["sequential_steps_per_second"] > 0
    assert 0 < numbers["bytes_per_member"] < 10_000  # a 2-4-1 net and its metrics


def test_members_benchmark_quick_mode_prints_json():
    numbers = run_quick("members.py")  # 8 and 64 members of the peer's net
    assert list(numbers["sizes"]) == ["8", "64"]
    assert all(size["member_steps_per_second"] > 0 for size in numbers["sizes"].values())


def test_members_last_benchmark_trains_the_programs_nets():
    """Its hand-written members-last step is the program's arithmetic: from the
    same weights, the same weights after a chunk (so its speed is comparable)."""
    # (float32 products: a GPU's TF32 would round the program's apart; CPU: no change)
    numbers = run_quick("members_last.py", env={"JAX_DEFAULT_MATMUL_PRECISION": "highest"})
    for size in numbers["sizes"].values():
        assert size["members_last_member_steps_per_second"] > 0
        assert size["max_weight_difference"] < 1e-4  # (2,500 steps of SGD on CPU: 0.0)


@pytest.mark.slow
def test_log_cost_benchmark_quick_mode_prints_json():
    numbers = run_quick("log_cost.py")  # three train.py commands of 1,000 seeds
    assert numbers["seeds"] == 1000 and numbers["logged_every_10_over_at_end"] > 0
    assert set(numbers["runs_s"]) == {"10", "40"}


def run_gpu_check(*args, tmp_path):
    """Runs benchmarks/gpu_check.py ARGS --json=...; returns (the process, its JSON summary)."""
    path = tmp_path / "gpu_check.json"
    path.unlink(missing_ok=True)
    result = subprocess.run(
        [sys.executable, "benchmarks/gpu_check.py", *args, f"--json={path}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return result, (json.loads(path.read_text()) if path.exists() else None)


def test_gpu_check_runs_its_parts_and_skips_pytorch_when_there_is_none(tmp_path):
    # A big sweep of the README's kind (above max_member_runs: aggregates only), small;
    # a PyTorch part with no PyTorch ('' : none) is skipped, not failed.
    result, summary = run_gpu_check(
        "--quick", "--parts=seeds,torch_xor", "--seeds=512", "--torch-python=", tmp_path=tmp_path
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary["ok"] and summary["quick"]
    assert list(summary["parts"]) == ["env", "seeds", "torch_xor"]  # env: which PyTorch, device
    env = summary["parts"]["env"]
    assert env["status"] == "pass" and env["numbers"]["backend"] == summary["env"]["backend"]
    seeds = summary["parts"]["seeds"]
    assert seeds["status"] == "pass", seeds
    assert seeds["command"] == (
        "python train.py --config=configs/xor.py --config.num_seeds=512 --config.log_every=10"
    )
    numbers = seeds["numbers"]
    assert numbers["seeds"] == 512 and numbers["steps"] == 2000 and 0 < numbers["train_s"]
    assert numbers["train_s"] < numbers["command_s"] and 0 <= numbers["solved"] <= 1
    assert numbers["member_steps_per_s"] == round(512 * 2000 / numbers["train_s"])
    torch_xor = summary["parts"]["torch_xor"]
    assert torch_xor["status"] == "skip" and "no PyTorch" in torch_xor["note"]
    # The printed summary: one line per part, its status and numbers, then the verdict.
    tail = result.stdout[result.stdout.index("== GPU check summary") :].splitlines()
    assert tail[1].split()[:2] == ["env", "PASS"]
    assert tail[2].split()[:2] == ["seeds", "PASS"] and "512 seeds x 2000 steps" in tail[2]
    assert tail[3].split()[:2] == ["torch_xor", "SKIP"]
    assert tail[-1] == "OK: no part failed (skipped: torch_xor)"


def test_gpu_check_reports_a_failing_part_and_refuses_unknown_parts(tmp_path):
    result, summary = run_gpu_check("--parts=seeds", "--seeds=0", tmp_path=tmp_path)
    assert result.returncode == 1
    seeds = summary["parts"]["seeds"]
    assert seeds["status"] == "fail" and "error: num_seeds must be >= 1" in seeds["note"]
    assert not summary["ok"] and result.stdout.splitlines()[-1] == "FAILED: seeds"

    result, summary = run_gpu_check("--parts=suite,gpu", tmp_path=tmp_path)
    assert result.returncode == 2 and summary is None
    assert "unknown --parts gpu: choose from env, suite, seeds" in result.stderr
