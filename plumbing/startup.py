"""What `python train.py` sets up around its run; none of it changes a result.

`main()` calls `prepare()` first and `finish()` last:
- glibc's allocator keeps the memory XLA:CPU frees between steps
  (host_memory.py): set before XLA's threads start, at the first
  computation;
- XLA's compilation cache: a run whose program was compiled before (another
  seed, a resume) starts faster;
- quiet logs unless `--verbosity` is given;
- at the end, once everything is written, flushed and closed, the process
  exits without the interpreter's teardown (0.6 s of configs/xor.py's 4 s:
  freeing JAX, Flax and orbax).
"""

import jax
from absl import flags, logging

from plumbing import failures, host_memory


def prepare(compilation_cache: str) -> None:
    """Everything above but the exit."""
    host_memory.keep_freed_memory()
    if compilation_cache:
        jax.config.update("jax_compilation_cache_dir", compilation_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if not flags.FLAGS["verbosity"].present:  # --verbosity=0 shows them all:
        logging.set_verbosity(logging.WARNING)  # JAX's "Unable to initialize backend 'tpu'"
        logging.get_absl_handler().addFilter(failures.not_from_a_failed_write)


def finish() -> None:
    """Exits at once, with code 0 (a multi-host run shuts down in step instead)."""
    if not jax.distributed.is_initialized():
        failures.exit_now(0)
