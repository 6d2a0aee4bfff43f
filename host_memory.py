"""Keeps the memory that XLA:CPU frees for its next step (glibc's malloc).

XLA:CPU allocates each compiled call's temporaries with malloc and frees
them when the call ends: for the CNN's train step that is one 44 MB block
per step. glibc hands blocks over 32 MB (and, from its per-thread arenas,
smaller ones too) back to the kernel when they are freed, so the next step
maps fresh pages and the kernel zeroes them on first touch: in a `perf`
profile of that step the kernel's page faults took 27% of the time, and
the step ran 25-40% slower than one whose temporaries happened to stay
under 32 MB (31 MB). With one arena, no mmap below 1 GiB and no trimming,
the next step reuses the same memory.

The cost: the process keeps the heap of its peak use until it ends, as
PyTorch's caching allocator keeps GPU memory. Entry points (train.py,
benchmarks) call `keep_freed_memory()` first thing, before the threads that
XLA allocates from exist.
"""

import ctypes
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_SETTINGS = {
    _M_ARENA_MAX: 1,  # every thread allocates from the main heap
    _M_MMAP_THRESHOLD: 1 << 30,  # blocks up to 1 GiB come from that heap
    _M_TRIM_THRESHOLD: (1 << 31) - 1,  # and freed ones stay there
}


def keep_freed_memory() -> bool:
    """Sets glibc's malloc to reuse freed blocks; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018 (glibc only: musl has no such function)
    except (OSError, AttributeError):
        return False
    return all(libc.mallopt(parameter, value) == 1 for parameter, value in _SETTINGS.items())
