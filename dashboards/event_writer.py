"""The process that writes the TensorBoard event files, beside the trainer.

The trainer (`summaries.Writer`) builds each `Event` proto itself, with
TensorBoard's NumPy helpers, stamps its wall time and step, and sends it
here serialized. This child process (this file, run as `python
dashboards/event_writer.py`) owns every event file, one per log directory,
all the trainer's writers in one process, and appends each event unchanged
as a TFRecord frame (`_Writer`), the format TensorFlow's writer makes; no
TensorFlow is imported (tests/test_event_writer.py checks the events
against `flax.metrics.tensorboard`'s). So writing takes the trainer's
Python thread no time, and what it sent before `flush(wait=True)` is
written even if it is killed right after. Sending never waits: a thread
moves the trainer's messages into the pipe, and a thread here drains the
pipe into memory.

Protocol, both ways: frames of an 8-byte little-endian length and a pickled
(kind, key, value) tuple. To this process:
  open   (id, (log_dir, (st_dev, st_ino)))
                        make writer `id`, with a new event file in log_dir,
                        which must still be the directory the trainer made
  event  (id, bytes)    write one serialized Event
  flush  (id, ticket)   flush the file; with a ticket, answer `done` after
  close  (id, ticket)   flush and close the writer, then answer `done`
  finish                write what is queued, close every writer, exit
and back:
  opened (id, path)     writer `id` writes the event file `path`
  error  (id, message)  writer `id` failed; what it is sent later is dropped
  done   (ticket)       everything sent before the ticket is written, flushed
  fatal  (message)      nothing can be written here (a library is missing); exiting

At the end of its input (the trainer exited or was killed) this process
writes everything it was sent, closes the files and exits; if no writer was
ever opened, it exits at once. Until then it holds a lock (`flock`) on each
of its event files: `summaries.cut_events_after` waits for it, so a run
resumed right after a kill never edits a file its predecessor's writer still
appends to. It ignores SIGINT and SIGTERM: the trainer handles them, and
closes its writers through this process.
"""

import atexit
import contextlib
import fcntl
import itertools
import os
import pickle
import queue
import resource
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

if __name__ == "__main__":  # run as a file: the repository's packages by absolute name
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

from plumbing import failures  # noqa: E402

_LENGTH = struct.Struct("<Q")


def _frame(message) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def _read_frame(stream):
    """The next message from a binary stream, or None at its end."""
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(header)
    data = stream.read(size)
    return pickle.loads(data) if len(data) == size else None


def disappeared(path: str) -> str:
    """The error for an event file removed under its writer."""
    return f"cannot write summaries: {path} disappeared (was the run directory removed?)"


# --------------------------------------------------------------------------
# The trainer's side.


class Client:
    """The trainer's handle on one event-writer process (see `start`).

    Thread-safe. Requests go out in the order they are made; `flush(wait)`
    and `close` are the only calls that wait.
    """

    def __init__(self):
        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pid = self._process.pid
        self._outbox = queue.SimpleQueue()  # messages for the sender thread
        self._put_lock = threading.Lock()  # numbers messages in outbox order
        self._changed = threading.Condition()  # guards everything below
        self._queued = 0  # messages put into the outbox
        self._sent = 0  # messages written into the pipe
        self._files: dict[int, str] = {}
        self._errors: dict[int, str] = {}
        self._done: set[int] = set()
        self._ended: str | None = None  # why the process can write no more
        self._ids = itertools.count(1)  # writer ids and tickets
        self._sender = threading.Thread(target=self._send, name="event-writer-send", daemon=True)
        self._sender.start()
        threading.Thread(target=self._receive, name="event-writer-receive", daemon=True).start()
        atexit.register(self._finish)

    def open(self, log_dir: str, identity: tuple[int, int]) -> int:
        """A new writer for `log_dir`, whose (st_dev, st_ino) are `identity`
        (the trainer makes the directory and holds it open); returns its id."""
        writer_id = next(self._ids)
        self._put(("open", writer_id, (log_dir, identity)))
        return writer_id

    def write(self, writer_id: int, event: bytes) -> None:
        self._put(("event", writer_id, event))

    def flush(self, writer_id: int, wait: bool = False) -> None:
        """Asks for a flush. With `wait`, returns once every request so far
        has left this process: the event writer carries them out even if this
        process is killed right after."""
        sent = self._put(("flush", writer_id, None))
        if wait:
            with self._changed:
                self._changed.wait_for(lambda: self._sent >= sent or self._ended is not None)

    def close(self, writer_id: int) -> None:
        """Closes a writer; returns once everything it was sent is written."""
        ticket = next(self._ids)
        self._put(("close", writer_id, ticket))
        with self._changed:
            self._changed.wait_for(lambda: ticket in self._done or self._ended is not None)
            self._done.discard(ticket)

    def error(self, writer_id: int) -> str | None:
        """The first failure of this writer (or of the process), if any."""
        with self._changed:
            return self._errors.get(writer_id) or self._ended

    def event_file(self, writer_id: int) -> str | None:
        """The writer's event file, once the process has opened it."""
        with self._changed:
            return self._files.get(writer_id)

    def ended(self) -> bool:
        with self._changed:
            return self._ended is not None

    def _put(self, message) -> int:
        with self._put_lock:
            self._queued += 1
            self._outbox.put(message)
            return self._queued

    def _send(self):
        """Moves messages from the outbox into the pipe, many per write."""
        stdin = self._process.stdin
        while True:
            messages = [self._outbox.get()]
            with contextlib.suppress(queue.Empty):
                while len(messages) < 1000:
                    messages.append(self._outbox.get_nowait())
            try:
                stdin.write(b"".join(_frame(m) for m in messages if m is not None))
                stdin.flush()
            except (OSError, ValueError):  # the process is gone: _receive says why
                return
            with self._changed:
                self._sent += len(messages)
                self._changed.notify_all()
            if None in messages:  # this process is exiting
                with contextlib.suppress(OSError):
                    stdin.close()
                return

    def _receive(self):
        stdout = self._process.stdout
        while (message := _read_frame(stdout)) is not None:
            kind, key, value = message
            with self._changed:
                if kind == "opened":
                    self._files[key] = value
                elif kind == "error":
                    self._errors.setdefault(key, value)
                elif kind == "done":
                    self._done.add(key)
                elif kind == "fatal":
                    self._ended = value
                self._changed.notify_all()
        code = self._process.wait()
        with self._changed:
            if self._ended is None:
                self._ended = (
                    f"the process writing the event files (pid {self.pid}) ended with exit "
                    f"code {code}; what was sent to it since its last flush may be lost"
                )
            self._changed.notify_all()

    def _finish(self):
        """At exit: writers left open get what they were sent; the process ends."""
        self._put(("finish", None, None))
        self._outbox.put(None)
        self._sender.join(timeout=60)


_client: Client | None = None
_client_lock = threading.Lock()


def start() -> Client:
    """The event-writer process, started on first use (again if it ended).

    One per trainer process, shared by all its writers. Raises OSError if it
    cannot be started.
    """
    global _client
    with _client_lock:
        if _client is None or _client.ended():
            _client = Client()
        return _client


def start_early() -> None:
    """`start()` at the top of a program; a failure is left for the first writer."""
    with contextlib.suppress(OSError):
        start()


# --------------------------------------------------------------------------
# The event writer's side.


class _Disappeared(Exception):
    pass


class _Writer:
    """One log directory's event file, open for appending, and its lock.

    An event file is what TensorFlow's writer makes: TFRecord frames (the
    length, its masked CRC-32C, the serialized `Event`, its masked CRC-32C),
    a `file_version` event first, named events.out.tfevents.TIME.HOST.PID.N.v2.
    """

    def __init__(self, log_dir: str, identity: tuple[int, int]):
        self.log_dir = log_dir
        self.path = self._file = None
        self._check(identity)
        name = f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}"
        path = os.path.join(log_dir, f"{name}.{os.getpid()}.{next(_file_numbers)}.v2")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        except FileNotFoundError:
            raise _Disappeared(log_dir) from None
        self.path, self._file = path, os.fdopen(fd, "wb")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until closed: see cut_events_after
            # Removed and made again between the check and the open: the file
            # went into the new directory (_Disappeared); take it back.
            self._check(identity)
            writer = _event_pb2.SourceMetadata(writer="dashboards.event_writer")
            first = _event_pb2.Event(
                wall_time=time.time(), file_version="brain.Event:2", source_metadata=writer
            )
            self.write(first.SerializeToString())
            self.flush()
        except BaseException:  # a full disk too: no empty event file left behind
            with contextlib.suppress(OSError):
                self.close()
            with contextlib.suppress(OSError):
                os.remove(path)
            raise

    def _check(self, identity):
        """Raises _Disappeared unless log_dir is still the trainer's directory."""
        try:
            directory = os.stat(self.log_dir)
        except FileNotFoundError:
            raise _Disappeared(self.log_dir) from None
        if (directory.st_dev, directory.st_ino) != tuple(identity):
            raise _Disappeared(self.log_dir)  # removed, and made again by someone else

    def write(self, data: bytes):
        """Appends one serialized Event as a TFRecord frame."""
        length = _LENGTH.pack(len(data))
        self._file.write(length + _masked_crc(length) + data + _masked_crc(data))

    def flush(self):
        self._file.flush()
        if not os.path.exists(self.path):
            # Writing into a removed file succeeds without a word.
            raise _Disappeared(self.path)

    def close(self):
        if self._file is not None:
            file, self._file = self._file, None
            file.close()  # flushes, and releases the flock


_file_numbers = itertools.count()
_CRC = struct.Struct("<I")
_crc32c = _event_pb2 = None  # google_crc32c and TensorBoard's event_pb2: _import_libraries()


def _masked_crc(data: bytes) -> bytes:
    """TFRecord's masked CRC-32C of `data`, as 4 little-endian bytes."""
    crc = _crc32c.value(data)
    return _CRC.pack((((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


class _Server:
    """Carries out the trainer's requests."""

    def __init__(self, reply):
        self._reply = reply
        self._writers: dict[int, _Writer] = {}
        self._failed: set[int] = set()  # ids whose writer failed: requests dropped

    def handle(self, kind, key, value):
        if kind == "open":
            self._guard(key, value[0], self._open, key, *value)
        elif kind == "finish":
            self.close_all()
        else:
            writer = self._writers.get(key)
            if writer is not None:
                if kind == "event":
                    self._guard(key, writer.log_dir, writer.write, value)
                else:  # flush or close
                    self._guard(key, writer.log_dir, writer.flush)
                    if kind == "close":
                        self._drop(key)
            if kind in ("flush", "close") and value is not None:
                self._reply(("done", value, None))

    def close_all(self):
        for key in list(self._writers):
            self._guard(key, self._writers[key].log_dir, self._writers[key].flush)
            self._drop(key)

    def _open(self, key, log_dir, identity):
        self._writers[key] = writer = _Writer(log_dir, identity)
        self._reply(("opened", key, writer.path))

    def _drop(self, key):
        writer = self._writers.pop(key, None)
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()

    def _guard(self, key, log_dir, operation, *args):
        if key in self._failed:
            return
        try:
            operation(*args)
        except Exception as e:
            self._failed.add(key)
            self._drop(key)
            if isinstance(e, _Disappeared):
                message = disappeared(str(e))
            else:
                message = f"cannot write summaries to {log_dir}: {failures.describe(e)}"
            self._reply(("error", key, message))


def _import_libraries() -> None:
    """What writing needs, imported here only: a failure is one line, not the trainer's."""
    global _crc32c, _event_pb2
    import google_crc32c
    from tensorboard.compat.proto import event_pb2

    _crc32c, _event_pb2 = google_crc32c, event_pb2


def _serve() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the trainer handles Ctrl-C ...
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ... and SIGTERM, through us
    # Two files per writer (its events and their lock): a sweep has hundreds.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # Frames go to the original stdout; anything a library prints, to stderr.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)

    def reply(message):
        with contextlib.suppress(OSError):  # the trainer is gone: nobody to tell
            out.write(_frame(message))
            out.flush()

    inbox = queue.SimpleQueue()

    def read():
        opened = False
        while (message := _read_frame(sys.stdin.buffer)) is not None:
            if message[0] == "finish" and not opened:
                break
            opened = True
            inbox.put(message)
            if message[0] == "finish":
                break
        if not opened:  # the trainer ended without a writer
            os._exit(0)
        inbox.put(None)

    threading.Thread(target=read, name="read-requests", daemon=True).start()
    try:
        _import_libraries()
    except Exception as e:
        reply(("fatal", None, f"the event-file writer cannot import its libraries: {e!r}"))
        os._exit(1)
    server = _Server(reply)
    while True:
        batch = [inbox.get()]
        with contextlib.suppress(queue.Empty):
            while batch[-1] is not None and len(batch) < 1000:
                batch.append(inbox.get_nowait())
        for message in batch:
            if message is None:
                server.close_all()
            else:
                server.handle(*message)
        if batch[-1] is None:
            return


if __name__ == "__main__":
    _serve()
