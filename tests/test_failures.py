"""plumbing.failures: a failed write is one clear line, whatever the library prints late."""

import os
import subprocess
import sys
import textwrap

import pytest

from plumbing import failures
from plumbing.failures import UserError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A write fails; its library then prints the tail of a traceback straight to
# fd 2 from another thread, after `reported` is done (seen in CI).
_FAILED_WRITE = textwrap.dedent("""
    import os, sys
    from plumbing import failures
    from plumbing.failures import UserError
    failures.mute_after_failure = sys.argv[1] == "cli"
    try:
        with failures.reported("cannot write summaries to /runs"):
            os.write(2, b"Traceback (most recent call last):\\n")
            raise OSError(28, "No space left on device")
    except UserError as e:
        os.write(2, b"RuntimeError: Event loop is closed\\n")  # the late tail
        print(f"error: {e}", file=failures.console(), flush=True)
""")


def stderr_of(mode):
    result = subprocess.run(
        [sys.executable, "-c", _FAILED_WRITE, mode], capture_output=True, text=True, cwd=ROOT
    )
    return result.stderr


def test_the_command_line_shows_only_the_error_line():
    expected = (
        "error: cannot write summaries to /runs: the disk is full (No space left on device)\n"
    )
    assert stderr_of("cli") == expected
    assert stderr_of("library") == "RuntimeError: Event loop is closed\n" + expected


def test_a_failed_write_is_a_user_error_and_a_good_one_shows_its_warnings(capfd):
    with pytest.raises(UserError, match="cannot read x: ValueError: bad"):
        with failures.reported("cannot read x"):
            raise ValueError("bad")
    with failures.reported("cannot write y"):
        os.write(2, b"a warning worth seeing\n")
    assert capfd.readouterr().err == "a warning worth seeing\n"


@pytest.mark.parametrize(
    "error", [RuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating 4 GiB"), MemoryError()]
)
def test_running_out_of_memory_in_xla_or_python_is_one_line(error):
    assert failures.one_line(error) == ("out of memory: try a smaller model, batch or sweep", 1)
