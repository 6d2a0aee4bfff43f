"""Failed reads and writes of run files, reported as one clear line."""

import contextlib
import os
import sys
import tempfile


class UserError(Exception):
    """A mistake the user can fix (a bad config value, a missing file, ...).

    `train.py` prints these as one line, without a traceback, and exits 1.
    """


class Diverged(UserError):
    """A loss or a weight became NaN or Inf (every member's, in a sweep)."""


class Interrupted(UserError):
    """SIGINT or SIGTERM arrived; a checkpoint was saved first."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


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
    return os.fdopen(_console_fd, "w", closefd=False)  # no new fd: there may be none left


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

    While a write fails, the libraries below (orbax's and tensorstore's
    callbacks) print pages of tracebacks and warnings straight
    to file descriptor 2; they are held back and shown only if the operation
    succeeds after all (then they are warnings worth seeing).

    Args:
      what: the failed operation, e.g. "cannot write a checkpoint to DIR".
      hint: what the user can do about it.
    """
    with held_stderr(mute_on_failure=True):
        try:
            yield
        except Exception as e:  # orbax, tensorstore and json have their own types
            raise UserError(f"{what}: {describe(e)}{hint}") from None


class Held:
    """What `held_stderr` yields: set `failed` to drop what was held."""

    def __init__(self, failed: bool):
        self.failed = failed


@contextlib.contextmanager
def held_stderr(drop: bool = False, mute_on_failure: bool = False):
    """Holds back what reaches file descriptor 2 meanwhile (this process's C++
    libraries write there directly), and shows it afterwards unless the
    block failed (an exception, or `held.failed` set; `drop`: from the start).

    A failure's pages of tracebacks are not for the user: the one error line
    says what went wrong. With `mute_on_failure` (and `mute_after_failure`,
    the command line's setting) a failure leaves fd 2 muted, since the
    failing library's threads may still be printing; the error line then
    goes to `console()`.
    """
    global _console_fd
    sys.stderr.flush()
    held = Held(drop)
    try:
        file, saved = tempfile.TemporaryFile(), os.dup(2)
    except OSError:  # no temp dir or no fd left: hold nothing back
        yield held
        return
    os.dup2(file.fileno(), 2)
    try:
        yield held
    except BaseException:
        held.failed = True
        raise
    finally:
        sys.stderr.flush()
        if held.failed and mute_on_failure and mute_after_failure:
            # fd 2 stays on `file` (unlinked): muted without opening anything,
            # so this works when no fd is left (EMFILE).
            if _console_fd is None:
                _console_fd = saved
            else:
                os.close(saved)
        else:
            os.dup2(saved, 2)
            os.close(saved)
            if not held.failed:
                file.seek(0)
                os.write(2, file.read())
        file.close()


def describe(error: BaseException) -> str:
    """A failure in one line: 'Type: message', shortened; a full disk said plainly."""
    detail = " ".join(f"{type(error).__name__}: {error}".split())
    if "Too many open files" in detail:
        return "too many open files (ulimit -n)"
    if "No space left on device" in detail:
        return "the disk is full (No space left on device)"
    if len(detail) > 300:
        return f"{detail[:150]} ... {detail[-150:]}"
    return detail


def not_from_a_failed_write(record) -> bool:
    """A log filter: False for the records of a failed checkpoint or event write.

    orbax, and asyncio under it, log a failed write as pages of ERROR, and
    asyncio's futures, completing after their event loop closed, as
    "exception calling callback" tracebacks (logger `concurrent.futures`).
    Our one-line error says why the run stopped.
    """
    quiet = ("asyncio", "concurrent.futures")
    return "orbax" not in record.pathname and record.name not in quiet


def one_line(e: BaseException) -> tuple[str, int] | None:
    """(message, exit code) for a mistake or event the user caused; None for a bug."""
    if isinstance(e, Interrupted):
        return str(e), 128 + e.signum
    if isinstance(e, UserError):
        return str(e), 1
    if isinstance(e, KeyboardInterrupt):
        return "interrupted", 130
    if isinstance(e, SystemExit):
        return None
    if "RESOURCE_EXHAUSTED" in str(e) or isinstance(e, MemoryError):
        return "out of memory: try a smaller model, batch or sweep", 1
    if isinstance(e, OSError) and e.errno == 24:  # EMFILE
        return "too many open files (ulimit -n): train fewer members at once", 1
    return None


def exit_now(code: int, line: str | None = None) -> None:
    """Prints `line` (to the terminal, even with fd 2 muted) and exits at once.

    Everything of ours is closed and flushed by then. Skipping the
    interpreter's teardown saves 0.6 s of configs/xor.py's 4 s (freeing JAX,
    Flax and orbax), and a failed orbax write's leftover coroutines print
    warnings there.
    """
    if line is not None:
        print(line, file=console(), flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@contextlib.contextmanager
def one_line_errors():
    """The command line's one rule: a user's mistake is one line and an exit
    code; a bug is its traceback, never swallowed."""
    global mute_after_failure
    mute_after_failure = True  # this process exits after the error line
    try:
        yield
    except BaseException as e:
        failure = one_line(e)
        if failure is None:
            unmute()
            raise  # a bug, not a user mistake: the traceback helps
        exit_now(failure[1], f"error: {failure[0]}")
