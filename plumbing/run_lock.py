"""One run directory, one owner: a second process refuses at once.

The lock is an `flock` on `RUN_DIR/.lock`, which also holds the owner's
process id for the message. The kernel drops it when the owner exits,
however it exits (SIGKILL included), so a dead process's lock is simply
taken over.
"""

import contextlib
import fcntl
import os

from plumbing.failures import UserError

LOCK_FILE = ".lock"


@contextlib.contextmanager
def owned(run_dir: str):
    """Holds `run_dir` for this process; UserError if another one holds it."""
    with contextlib.suppress(OSError):  # an unwritable directory fails later, clearly
        os.makedirs(run_dir, exist_ok=True)
    try:
        fd = os.open(os.path.join(run_dir, LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise UserError(f"cannot write to the run directory {run_dir}: {e.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        owner = os.read(fd, 64).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise UserError(
            f"{run_dir} is being trained by process {owner} right now: wait for it to "
            "finish (the same command then resumes or reports it finished), or pass "
            "--new_run to start a run beside it"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    try:
        yield
    finally:
        os.close(fd)  # releases the lock
