"""Shared test settings and helpers."""

import os
import subprocess
import sys
import tempfile

# On a GPU, the two test workers and the runs they start share it: each takes
# what it needs, up to a fifth of its memory (JAX's default: 75%, at its start).
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from dashboards import reading  # noqa: E402

# Strict numerics: a silent broadcast between ranks is a bug here.
jax.config.update("jax_numpy_rank_promotion", "raise")
# Not jax_disable_most_optimizations: with jax 0.10.2 on CPU it turned a
# finite Adam update into NaN (tests/test_activations.py, maxout learning |x|).


# The tests and their subprocess runs share one XLA compilation cache, away
# from the user's: many tests compile the same small programs.
CACHE_DIR = os.path.join(tempfile.gettempdir(), "hnl-test-xla")
COMPILATION_CACHE = f"--compilation_cache={CACHE_DIR}"
jax.config.update("jax_compilation_cache_dir", CACHE_DIR)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_command(*args, workdir, cache=COMPILATION_CACHE) -> list[str]:
    """`python train.py ARGS --workdir=WORKDIR`, with the tests' compilation cache."""
    return [sys.executable, "train.py", *args, f"--workdir={workdir}", cache]


def run_cli(*args, workdir, cache=COMPILATION_CACHE) -> subprocess.CompletedProcess:
    """Runs the real command line to its end, from the repository root."""
    command = train_command(*args, workdir=workdir, cache=cache)
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def start_cli(*args, workdir) -> subprocess.Popen:
    """Starts the real command line; the caller waits for it (or kills it)."""
    command = train_command(*args, workdir=workdir)
    return subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def without_package(name: str, tmp_path) -> dict:
    """An environment for a subprocess in which `import NAME` fails, as if not installed."""
    site = tmp_path / "without" / name
    site.mkdir(parents=True)
    (site / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    paths = [str(site.parent), *filter(None, [os.environ.get("PYTHONPATH")])]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths))


def write_mnist(folder, n_train=12, n_test=6, labels_train=None):
    """A tiny MNIST in IDX files (two of them gzipped), as data.mnist reads it."""
    from data import idx

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    idx.write(str(folder / "train-images-idx3-ubyte.gz"), rng.integers(0, 256, (n_train, 28, 28)))
    labels = labels_train if labels_train is not None else np.arange(n_train) % 10
    idx.write(str(folder / "train-labels-idx1-ubyte.gz"), labels)
    idx.write(str(folder / "t10k-images-idx3-ubyte"), rng.integers(0, 256, (n_test, 28, 28)))
    idx.write(str(folder / "t10k-labels-idx1-ubyte"), np.arange(n_test) % 10)


# A run's summaries read back from its event files (dashboards/reading.py).
read_events, read_scalars, read_image = reading.events, reading.scalars, reading.pixels


@pytest.fixture
def xor_config():
    """configs/xor.py, shrunk to what a test needs."""
    from configs import xor

    config = xor.get_config()
    config.num_steps = 600
    config.log_every = 200
    config.eval_every = 300
    return config
