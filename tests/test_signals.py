"""SIGINT and SIGTERM as requests: nested, restored, and never lost."""

import os
import signal

import pytest

from plumbing import signals
from plumbing.failures import Interrupted


def test_a_signal_is_a_request_that_the_check_acts_on():
    with signals.stop_requests() as stop:
        stop.check(5, save=lambda: "nothing to save")  # no signal yet: goes on
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.received == [signal.SIGTERM]
        with pytest.raises(Interrupted, match="^SIGTERM at step 7: saved$") as raised:
            stop.check(7, save=lambda: "saved")
    assert raised.value.signum == signal.SIGTERM


def test_nested_requests_are_the_outer_ones_and_the_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with pytest.raises(Interrupted, match="^SIGINT after the last step: the run is complete$"):
        with signals.stop_requests() as outer:
            with signals.stop_requests() as inner:
                assert inner is outer
                os.kill(os.getpid(), signal.SIGINT)  # as between making a run's directory ...
            assert outer.received == [signal.SIGINT]  # ... and its loop: not lost
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    with signals.stop_requests() as again:  # a new outermost one: nothing received
        assert again.received == []
