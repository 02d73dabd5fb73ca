"""After Ctrl-C the state read is best effort and bounded; SIGTERM stops a release as Ctrl-C does."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from pipeline.steps.interrupt import read_now, stop_signals


def test_the_answer_when_the_read_works() -> None:
    assert read_now(lambda: "stack is UPDATE_IN_PROGRESS", "the stack") == "stack is UPDATE_IN_PROGRESS"


def test_a_failed_read_is_said_in_one_line() -> None:
    def fail() -> str:
        raise RuntimeError("connection refused\nmore detail")

    assert read_now(fail, "the stack") == "the stack could not be read (connection refused)"


def test_a_hanging_read_is_abandoned_after_the_timeout() -> None:
    never = threading.Event()

    def hang() -> str:
        never.wait(5)
        return "too late"

    assert read_now(hang, "the stack", timeout=0.05) == "the stack could not be read within 0.05s"
    never.set()


def test_sigterm_stops_as_ctrl_c_once_and_says_143() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_signals() as signals:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread before kill returns
        # The runner's SIGINT after SIGTERM (or a second Ctrl-C) does not cut the clean-up short.
        os.kill(os.getpid(), signal.SIGINT)
        assert (signals.exit_code, signals.name, len(signals.received)) == (143, "SIGTERM", 2)
    assert signal.getsignal(signal.SIGTERM) is before, "the previous handlers are back"


def test_without_a_signal_the_exit_code_is_ctrl_cs() -> None:
    with stop_signals() as signals:
        pass
    assert (signals.exit_code, signals.name) == (130, "SIGINT")
