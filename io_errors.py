"""Failed reads and writes of run files, reported as one clear line."""

import contextlib
import os
import sys
import tempfile

from registry import UserError


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
        if held is not None:
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
