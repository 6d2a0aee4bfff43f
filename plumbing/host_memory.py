"""Keeps the memory that XLA:CPU frees for its next step (glibc's malloc).

XLA:CPU allocates each compiled call's temporaries with malloc and frees
them when the call ends: for the CNN's train step that is one 44 MB block
per step. glibc gives freed memory back to the kernel three ways: a block
over its mmap threshold (at most 32 MB) is unmapped when freed; the main
heap's free top is trimmed; and a thread's arena heap (64 MB at most) is
shrunk or unmapped once its top is free. The next step then maps fresh
pages, and the kernel zeroes each one on first touch: in a `perf` profile
of the CNN's step the kernel took 27% of the time, and the step ran at
2,900-3,000 images/s against 3,600-3,700 with the settings below.

The settings: no mmap below 1 GiB, no trimming below 2 GiB, and a top pad
of 64 MB (each heap keeps that much spare at its top, so an emptied thread
heap is neither shrunk nor unmapped). Freed blocks are then reused by the
next step. (One arena for every thread did the same for the CNN, but made
malloc search long free lists: the XOR loop ran 25% slower.)

A thread's heap holds at most 64 MB, whatever the settings, and XLA:CPU
runs each call on a worker thread of its own: temporaries above 64 MB
were mapped and unmapped at every call (the chunk of a 100,000-member XOR
sweep has 69 MB: 16,800 page faults, 20 ms a call, a step's time). So
XLA:CPU also runs each computation on the thread that calls it, the main
thread, whose heap has no cap (`jax_cpu_enable_async_dispatch` off: a
call returns when its results are ready, which the training loop waits
for anyway). Sweeps of 10^5 and 10^6 members trained 5% and 20% faster. The cost: the
process keeps the heap of its peak use until it ends, as PyTorch's caching
allocator keeps GPU memory; the pad is address space, not memory, until
touched. Entry points (train.py through plumbing/startup.py, the
benchmarks) call `keep_freed_memory()` before XLA's backend starts its
threads (at the first computation; importing JAX starts none). mallopt's
settings are global: they hold for every later allocation.
"""

import ctypes
import sys

import jax

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_SETTINGS = {
    _M_MMAP_THRESHOLD: 1 << 30,  # blocks up to 1 GiB come from a heap
    _M_TRIM_THRESHOLD: (1 << 31) - 1,  # the main heap is not trimmed
    _M_TOP_PAD: 64 << 20,  # nor a thread's heap shrunk or unmapped
}


def keep_freed_memory() -> bool:
    """Sets glibc's malloc to reuse freed blocks, and XLA:CPU to compute on
    the calling thread; False where there is no glibc (nothing is set)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl has no such function)
    except (OSError, AttributeError):
        return False
    jax.config.update("jax_cpu_enable_async_dispatch", False)  # read when the backend starts
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in _SETTINGS.items())
