"""No recompiles: a run compiles the same programs however often it returns to the host."""

import jax
import pytest

import train

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"  # jax._src.dispatch


@pytest.fixture
def count_compiles():
    counts = []

    def listener(event, duration, **_):
        if event == COMPILE_EVENT:
            counts.append(duration)

    jax.monitoring.register_event_duration_secs_listener(listener)
    jax.config.update("jax_enable_compilation_cache", False)  # a cache hit is not a compile
    yield counts
    jax.config.update("jax_enable_compilation_cache", True)
    jax.monitoring.unregister_event_duration_listener(listener)


@pytest.mark.parametrize("batch_size", [0, 2])
def test_more_chunks_do_not_mean_more_compiles(xor_config, tmp_path, count_compiles, batch_size):
    """Tens and hundreds of chunks (the last one shorter) compile alike."""
    xor_config.batch_size = batch_size
    xor_config.num_steps = 1305  # the last chunk is 5 steps
    compiles = []
    for every in (50, 100, 10):  # a warm-up run, then 13 and 130 returns to the host
        xor_config.log_every = xor_config.eval_every = every
        xor_config.picture_every = xor_config.checkpoint_every = 650
        count_compiles.clear()
        train.train_and_evaluate(xor_config, str(tmp_path / str(every)))
        compiles.append(len(count_compiles))
    assert compiles[1] == compiles[2], compiles  # after the warm-up: the run's own programs
    assert compiles[1] >= 2, "the train loop and evaluation compile for every run"
