"""SIGINT and SIGTERM as a polite request: the loop saves, then stops."""

import contextlib
import signal
import threading

from plumbing.failures import Interrupted


class StopRequests:
    """The signals received so far; `check(step, save)` acts on them."""

    def __init__(self):
        self.received: list[int] = []
        self.acted_on = False  # a check raised Interrupted for them

    def check(self, step: int, save) -> None:
        """If a signal came: `save()` (returns a description of what was
        saved), then raise Interrupted naming the signal and the step."""
        if not self.received:
            return
        name = signal.Signals(self.received[0]).name
        self.acted_on = True
        raise Interrupted(f"{name} at step {step}: {save()}", self.received[0])

    def check_before_start(self) -> None:
        """If a signal came while the program was built: stop, nothing to save."""
        if self.received:
            name = signal.Signals(self.received[0]).name
            self.acted_on = True
            raise Interrupted(f"{name} before the first step: nothing to save", self.received[0])


_active: StopRequests | None = None  # the outermost stop_requests()'s


@contextlib.contextmanager
def stop_requests():
    """Turns SIGINT/SIGTERM into a request the loop honours between chunks.

    A second signal gets the usual behaviour (Ctrl-C twice stops at once).
    Nested, the inner one is the outer's: train.py's command line opens one
    before it makes the run directory, so a signal in between is a request
    too (the run stops before its first step and leaves no directory). A
    request no check acted on (it came after the last one) ends the
    outermost with Interrupted all the same: the run is complete.
    Outside the main thread (where Python allows no handlers) nothing changes.
    """
    global _active
    if threading.current_thread() is not threading.main_thread():
        yield StopRequests()
        return
    if _active is not None:
        yield _active
        return
    requests = StopRequests()

    def request_stop(signum, _):
        requests.received.append(signum)
        signal.signal(signum, previous[signum])  # a second one is not polite

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for s in previous:
            signal.signal(s, request_stop)
        _active = requests
        yield requests
        if requests.received and not requests.acted_on:
            name = signal.Signals(requests.received[0]).name
            message = f"{name} after the last step: the run is complete"
            raise Interrupted(message, requests.received[0])
    finally:
        _active = None
        for s, handler in previous.items():
            signal.signal(s, handler)
