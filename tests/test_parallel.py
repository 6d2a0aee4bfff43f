"""Several devices: 4 simulated CPU devices in a subprocess against this process's one."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
from conftest import read_scalars, write_mnist

import train
from configs import mnist_cnn, playground, xor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Runs in a fresh interpreter with 4 CPU devices; prints one JSON line.
ON_FOUR_DEVICES = r"""
import json, sys
import jax, numpy as np
import data, train
from training import parallel, program, sweeps
from configs import mnist_cnn, playground, xor

tasks, run_dir, mnist_dir = sys.argv[1:4]
out = {"devices": jax.device_count()}
if "data_parallel" in tasks:
    config = playground.get_config("circles")
    config.batch_size, config.num_steps, config.log_every, config.eval_every = 8, 60, 30, 30
    out["circles"] = train.train_and_evaluate(config, run_dir + "/circles")
    config = mnist_cnn.get_config()
    config.data.data_dir = mnist_dir
    config.batch_size, config.num_steps, config.log_every, config.eval_every = 16, 4, 4, 4
    config.embedding_examples = 0
    out["cnn"] = train.train_and_evaluate(config, run_dir + "/cnn")
    mesh = parallel.mesh()
    batch = parallel.put(np.zeros((8, 2), np.float32), parallel.replicated(mesh))
    split = jax.jit(lambda b: jax.lax.with_sharding_constraint(b, parallel.split(mesh)))(batch)
    out["batch_shards"] = [list(s.data.shape) for s in split.addressable_shards]
    out["replicated_shards"] = [list(s.data.shape) for s in batch.addressable_shards]
    config = playground.get_config("circles")
    config.batch_size = 6
    try:
        train.train_and_evaluate(config, run_dir + "/uneven")
    except train.UserError as e:
        out["uneven"] = str(e)
if "sweep" in tasks:
    config = xor.get_config()
    config.num_steps, config.num_seeds = 200, 4
    config.sweep.optimizer.learning_rate = (0.01, 0.1)
    group = sweeps.groups(config)[0]
    built = program.build(group, data.load_dataset(config.data))
    kernel = built.state.params["layers"][0]["kernel"].value
    out["member_spec"] = str(kernel.sharding.spec)
    out["member_shards"] = sorted((s.device.id, s.data.shape[0]) for s in kernel.addressable_shards)
    out["sweep"] = train.train_and_evaluate(config, run_dir + "/sweep")
print(json.dumps(out, default=str))
"""


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    """Both tasks on 4 devices, in one subprocess; (its JSON, the folder of its tiny MNIST)."""
    folder = tmp_path_factory.mktemp("four")
    write_mnist(folder, n_train=64, n_test=20)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4")
    result = subprocess.run(
        [sys.executable, "-c", ON_FOUR_DEVICES, "data_parallel,sweep", str(folder / "four"),
         str(folder)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1]), folder


def close(four, one, tags):
    for tag in tags:
        np.testing.assert_allclose(four[tag], one[tag], rtol=2e-4, atol=1e-6, err_msg=tag)


@pytest.mark.slow
def test_data_parallel_matches_one_device_and_splits_the_batch(tmp_path, four):
    four, mnist_dir = four
    assert four["devices"] == 4
    assert four["batch_shards"] == [[2, 2]] * 4  # 8 rows: 2 on each device
    assert four["replicated_shards"] == [[8, 2]] * 4
    assert "the batch (6) does not split evenly over 4 devices" in four["uneven"]

    config = playground.get_config("circles")
    config.batch_size, config.num_steps, config.log_every, config.eval_every = 8, 60, 30, 30
    one = train.train_and_evaluate(config, str(tmp_path / "one" / "circles"))
    close(four["circles"], one, ["train/loss", "eval/loss", "eval/accuracy", "train/grad_norm"])
    config = mnist_cnn.get_config()
    config.data.data_dir = str(mnist_dir)
    config.batch_size, config.num_steps, config.log_every, config.eval_every = 16, 4, 4, 4
    config.embedding_examples = 0
    one = train.train_and_evaluate(config, str(tmp_path / "one" / "cnn"))
    close(four["cnn"], one, ["train/loss", "eval/loss", "train/grad_norm"])


@pytest.mark.slow
def test_sweep_members_spread_over_devices(tmp_path, four):
    four, _ = four
    assert four["member_spec"] == "P('data',)"
    assert four["member_shards"] == [[0, 2], [1, 2], [2, 2], [3, 2]]  # 8 members, 2 each
    config = xor.get_config()
    config.num_steps, config.num_seeds = 200, 4
    config.sweep.optimizer.learning_rate = (0.01, 0.1)
    one = train.train_and_evaluate(config, str(tmp_path / "one"))
    for point in ("learning_rate=0.01", "learning_rate=0.1"):
        for seed in range(4):
            tags = [f"{point}/seed={seed}/{tag}" for tag in ("train/loss", "eval/loss")]
            close(four["sweep"], one, tags)


@pytest.mark.slow
def test_two_processes_train_one_run_and_only_process_0_writes(tmp_path):
    with socket.socket() as s:  # a free port for the coordinator
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    args = [
        sys.executable, "train.py", "--config=configs/xor.py", "--config.num_steps=300",
        f"--workdir={tmp_path}", f"--coordinator_address=localhost:{port}", "--num_processes=2",
    ]  # fmt: skip
    processes = [
        subprocess.Popen(
            [*args, f"--process_id={i}"],
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in (0, 1)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], (
        outputs[0][1][-2000:] + outputs[1][1][-2000:]
    )
    assert "step 300" in outputs[0][0] and "step" not in outputs[1][0]  # process 0 reports
    run = tmp_path / "xor" / "num_steps=300"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert (run / "checkpoints" / "300").is_dir()
    alone = train.train_and_evaluate(_xor(300), str(tmp_path / "alone"))
    together = read_scalars(run, "train/loss")[300]
    np.testing.assert_allclose(together, alone["train/loss"], rtol=1e-3, atol=1e-6)


def _xor(num_steps):
    config = xor.get_config()
    config.num_steps = num_steps
    return config


def test_a_process_other_than_0_leaves_the_event_files_alone(tmp_path):
    # Process 1 starting from step 0 once removed the events process 0 had just begun.
    from dashboards.writers import Writers
    from training import sweeps

    (group,) = sweeps.groups(_xor(10))
    (tmp_path / "events.out.tfevents.1.host.0.v2").write_bytes(b"")
    writers = Writers(str(tmp_path), group.members, owner=False)
    writers.open(0)
    writers.close()
    assert [p.name for p in tmp_path.iterdir()] == ["events.out.tfevents.1.host.0.v2"]
