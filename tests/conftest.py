"""Shared test settings and helpers."""

import contextlib
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


def refused(*args, workdir) -> str:
    """The one line the command line refuses `args` with (before any work:
    no traceback, no run directory left behind)."""
    result = run_cli(*args, workdir=workdir)
    assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert not os.path.exists(workdir), "a failed start left a run directory"
    return lines[0]


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


# Numbers on CPU and on a GPU. XLA:CPU computes float32 matrix products and
# convolutions in float32, and the tests found its results the same bits
# whatever the shape around a member (how many members a program trains, how
# the steps are cut into calls). On a GPU neither holds: XLA rounds float32
# products' inputs to TF32 by default (10 bits of mantissa, about 5e-4
# relative), and it picks each kernel, and with it the order of each sum, by
# the shape. So a test whose point is that a value IS an exact reference
# computes both under `exact_matmuls()`, and a test that two ways of training
# give the same numbers asserts `assert_same_numbers`: bitwise where
# docs/design.md promises bitwise, float32 rounding elsewhere.
SAME_NUMBERS_RTOL, SAME_NUMBERS_ATOL = 1e-4, 1e-5


def exact_matmuls():
    """`with exact_matmuls():` every float32 matrix product and convolution
    traced inside, of the programs a run compiles and of a test's own
    reference, computes at float32 precision, on any backend (HIGHEST in each
    dot's and convolution's HLO). It changes no number on CPU."""
    return jax.default_matmul_precision("highest")


def bitwise_backend() -> bool:
    """Whether members trained in parts are promised the bits of members
    trained all at once here: on XLA:CPU (docs/design.md). The environment
    variable HNL_TESTS_AS_IF_NOT_CPU=1 takes the other branch on a CPU, to
    check that branch's code; its numbers there are still the CPU's."""
    return jax.default_backend() == "cpu" and not os.environ.get("HNL_TESTS_AS_IF_NOT_CPU")


def assert_same_numbers(actual, expected, rtol=SAME_NUMBERS_RTOL, atol=SAME_NUMBERS_ATOL):
    """Two pytrees (dicts of final values, states, metrics) of the same shape
    hold the same numbers: the same bits on a `bitwise_backend()`; elsewhere
    integers and booleans equal and floats to `rtol` and `atol`, computed
    under `same_numbers_precision()` (float32 rounding summed in another
    order, through a test's few dozen steps; a member given another's seed,
    batches or learning rate differs by 1e-1 or more)."""
    leaves, tree = jax.tree_util.tree_flatten_with_path(actual)
    expected_leaves, expected_tree = jax.tree_util.tree_flatten_with_path(expected)
    assert tree == expected_tree, (tree, expected_tree)
    for (path, x), (_, y) in zip(leaves, expected_leaves, strict=True):
        x, y, where = np.asarray(x), np.asarray(y), jax.tree_util.keystr(path)
        floats = np.issubdtype(x.dtype, np.inexact) or np.issubdtype(y.dtype, np.inexact)
        if bitwise_backend() or not floats:
            np.testing.assert_array_equal(x, y, err_msg=where)
        else:
            np.testing.assert_allclose(x, y, rtol, atol, err_msg=where)


def same_numbers_precision():
    """`with same_numbers_precision():` around what `assert_same_numbers`
    compares: XLA's own precision on a `bitwise_backend()` (the programs a
    user runs), float32 products elsewhere, so that the tolerance is float32
    rounding, not TF32's, should the kernels of the two shapes differ in it."""
    return contextlib.nullcontext() if bitwise_backend() else exact_matmuls()
