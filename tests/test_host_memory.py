"""host_memory: freed blocks stay with the process for the next step."""

import os
import subprocess
import sys
import textwrap

import jax
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


# A compiled call with a 76 MB temporary (sin(x), which the product reads
# whole), run six times; prints the page faults of the last five.
_BIG_TEMPORARY = textwrap.dedent("""
    import resource, sys
    from plumbing import host_memory
    if sys.argv[1] == "keep":
        assert host_memory.keep_freed_memory()
    import jax, jax.numpy as jnp
    x = jnp.ones(20_000_000)
    call = jax.jit(lambda x: jnp.sin(x).reshape(4000, 5000) @ jnp.ones(5000)).lower(x).compile()
    assert call.memory_analysis().temp_size_in_bytes > 64 << 20
    jax.block_until_ready(call(x))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(5):
        jax.block_until_ready(call(x))
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
""")


@pytest.mark.skipif(jax.default_backend() != "cpu" or not sys.platform.startswith("linux"),
                    reason="XLA:CPU on glibc")  # fmt: skip
def test_temporaries_above_a_thread_heap_are_reused_too():
    # By default XLA:CPU runs the call on a worker thread, whose heap cannot
    # hold 76 MB: every call maps its pages afresh. On the calling thread
    # the block is reused (what remains is the product's own work space).
    def faults(mode):
        out = subprocess.run([sys.executable, "-c", _BIG_TEMPORARY, mode], capture_output=True,
                             text=True, check=True, cwd=ROOT)  # fmt: skip
        return int(out.stdout)

    pages = 5 * (76 << 20) // 4096
    assert faults("default") > pages * 0.8
    assert faults("keep") < pages * 0.3
