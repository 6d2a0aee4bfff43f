"""host_memory: freed blocks stay with the process for the next step."""

import os
import subprocess
import sys
import textwrap

import pytest

from plumbing import host_memory

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Allocates, touches and frees a 48 MB block (XLA:CPU's CNN step: 44 MB of
# temporaries) from a worker thread, as XLA does, ten times; prints the
# page faults of the last nine.
_STEPS = textwrap.dedent("""
    import ctypes, resource, sys, threading
    from plumbing import host_memory
    if sys.argv[1] == "keep":
        assert host_memory.keep_freed_memory()
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    def step():
        block = libc.malloc(48 << 20)
        ctypes.memset(block, 1, 48 << 20)
        libc.free(block)
    def run():
        step()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(9):
            step()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
""")


def page_faults(mode):
    out = subprocess.run(
        [sys.executable, "-c", _STEPS, mode], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_freed_blocks_are_reused_without_page_faults():
    pages = 9 * (48 << 20) // 4096
    assert page_faults("default") > pages // 2  # glibc unmaps and refaults every block
    assert page_faults("keep") < pages // 100  # the same memory, already mapped


def test_returns_false_where_there_is_no_glibc(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert host_memory.keep_freed_memory() is False
