"""Slow imports, started early on a background thread and awaited when needed.

orbax (for checkpoints) takes most of a second to import; starting it while
JAX traces and compiles takes it off the critical path as far as Python's
GIL allows.
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
