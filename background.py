"""Slow imports, started early on a background thread and awaited when needed.

TensorFlow (for event files) and orbax (for checkpoints) take seconds to
import; starting them while JAX traces and compiles takes them off the
critical path as far as Python's GIL allows.
"""

import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any


@functools.cache
def start(load: Callable[[], Any]) -> concurrent.futures.Future:
    """Runs `load` once on its own thread; returns the future of its result."""
    pool = concurrent.futures.ThreadPoolExecutor(1, f"background-{load.__name__}")
    future = pool.submit(load)
    pool.shutdown(wait=False)
    return future
