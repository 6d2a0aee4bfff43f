"""Shared test settings and helpers."""

import os
import tempfile

import jax
import pytest
from tensorboard.backend.event_processing import plugin_event_accumulator
from tensorboard.util import tensor_util

# Strict numerics: a silent broadcast between ranks is a bug here.
jax.config.update("jax_numpy_rank_promotion", "raise")
# Not jax_disable_most_optimizations: with jax 0.10.2 on CPU it turned a
# finite Adam update into NaN (tests/test_activations.py, maxout learning |x|).


# Subprocess runs share one XLA compilation cache, away from the user's.
COMPILATION_CACHE = f"--compilation_cache={os.path.join(tempfile.gettempdir(), 'hnl-test-xla')}"


def read_events(run_dir: str) -> plugin_event_accumulator.EventAccumulator:
    """Loads every summary of a run (tensors size_guidance 0 = keep all)."""
    accumulator = plugin_event_accumulator.EventAccumulator(
        str(run_dir), size_guidance={"tensors": 0}
    )
    accumulator.Reload()
    return accumulator


def read_scalars(run_dir: str, tag: str) -> dict[int, float]:
    """{step: value} of one scalar tag, read back from the event file."""
    events = read_events(run_dir).Tensors(tag)
    return {e.step: float(tensor_util.make_ndarray(e.tensor_proto)) for e in events}


@pytest.fixture
def xor_config():
    """configs/xor.py, shrunk to what a test needs."""
    from configs import xor

    config = xor.get_config()
    config.num_steps = 600
    config.log_every = 200
    config.eval_every = 300
    return config
