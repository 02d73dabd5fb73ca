"""After Ctrl-C the state read is best effort and bounded."""

from __future__ import annotations

import threading

from pipeline.steps.interrupt import read_now


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
