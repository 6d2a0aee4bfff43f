"""Failed reads and writes of run files, reported as one clear line."""

import contextlib
import os
import sys
import tempfile


class UserError(Exception):
    """A mistake the user can fix (a bad config value, a missing file, ...).

    `train.py` prints these as one line, without a traceback, and exits 1.
    """


# train.py's main() sets this: it prints one error line and exits. A failed
# write then leaves file descriptor 2 muted, because the failing library's
# threads can still be printing their tracebacks (seen in CI: the tail of
# one, "RuntimeError", before the error line), and the line goes to
# `console()` instead.
mute_after_failure = False
_console_fd: int | None = None  # the real fd 2, while it is muted


def console():
    """The terminal's stderr, also after a failed write muted fd 2."""
    if _console_fd is None:
        return sys.stderr
    return os.fdopen(os.dup(_console_fd), "w")


def unmute() -> None:
    """Gives fd 2 back to the terminal (for a traceback that must be seen)."""
    global _console_fd
    if _console_fd is not None:
        os.dup2(_console_fd, 2)
        os.close(_console_fd)
        _console_fd = None


@contextlib.contextmanager
def reported(what: str, hint: str = ""):
    """A failed read or write as one clear UserError.

    While a write fails, the libraries below (tensorstore's callbacks,
    TensorFlow's C++ logging) print pages of tracebacks and warnings straight
    to file descriptor 2; they are held back and shown only if the operation
    succeeds after all (then they are warnings worth seeing).

    Args:
      what: the failed operation, e.g. "cannot write a checkpoint to DIR".
      hint: what the user can do about it.
    """
    sys.stderr.flush()
    try:
        held, stderr = tempfile.TemporaryFile(), os.dup(2)
    except OSError:  # no temp dir or no fd 2: run without holding anything back
        held = stderr = None
    if held is not None:
        os.dup2(held.fileno(), 2)
    failed = True
    try:
        yield
        failed = False
    except Exception as e:  # orbax, tensorstore, TensorFlow and json have their own types
        raise UserError(f"{what}: {describe(e)}{hint}") from None
    finally:
        if held is not None and failed and mute_after_failure:
            global _console_fd
            nowhere = os.open(os.devnull, os.O_WRONLY)
            os.dup2(nowhere, 2)
            os.close(nowhere)
            if _console_fd is None:
                _console_fd = stderr
            else:
                os.close(stderr)
            held.close()
        elif held is not None:
            os.dup2(stderr, 2)
            os.close(stderr)
            if not failed:
                held.seek(0)
                os.write(2, held.read())
            held.close()


def describe(error: BaseException) -> str:
    """A failure in one line: 'Type: message', shortened; a full disk said plainly."""
    detail = " ".join(f"{type(error).__name__}: {error}".split())
    if "No space left on device" in detail:
        return "the disk is full (No space left on device)"
    if len(detail) > 300:
        return f"{detail[:150]} ... {detail[-150:]}"
    return detail
