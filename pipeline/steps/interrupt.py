"""After Ctrl-C or SIGTERM: read what AWS is doing right now, for the one line the user sees before exit
130 (SIGINT) or 143 (SIGTERM).

Best effort and bounded: the user asked to stop, so a slow or failing read is reported as such
instead of holding the terminal (a read runs in a daemon thread and is abandoned after `timeout`).

`stop_signals()` makes SIGTERM stop a release as Ctrl-C does. GitHub's runner cancels a job (or ends it
at its timeout) with SIGINT, then SIGTERM about 7.5 s later, then SIGKILL: the first signal raises
KeyboardInterrupt; later ones are only noted, so the clean-up it starts (stopping the ECS deployment,
finishing the GitHub deployment) is not cut short by the second.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

READ_TIMEOUT = 10.0  # seconds a state read may take after Ctrl-C


def read_now(read: Callable[[], str], what: str, timeout: float = READ_TIMEOUT) -> str:
    """`read()`'s answer, or a sentence saying why `what` could not be read."""
    answer: list[str] = []

    def run() -> None:
        try:
            answer.append(read())
        except Exception as err:  # noqa: BLE001 - any failure becomes part of the message
            text = str(err).splitlines()[0] if str(err) else type(err).__name__
            answer.append(f"{what} could not be read ({text})")

    reader = threading.Thread(target=run, name="read-after-interrupt", daemon=True)
    reader.start()
    reader.join(timeout)
    return answer[0] if answer else f"{what} could not be read within {timeout:g}s"


@dataclass
class Signals:
    """The stop signals received while a release ran, first first."""

    received: list[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """128 + the first signal's number, as a shell reports a process that signal ended: 130 or 143."""
        return 128 + self.received[0] if self.received else 130

    @property
    def name(self) -> str:
        return signal.Signals(self.received[0]).name if self.received else "SIGINT"


@contextmanager
def stop_signals() -> Iterator[Signals]:
    """While the block runs, SIGINT and SIGTERM raise KeyboardInterrupt once (in the main thread only:
    Python delivers signals there; elsewhere this does nothing)."""
    signals = Signals()
    if threading.current_thread() is not threading.main_thread():
        yield signals
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        signals.received.append(signum)
        if len(signals.received) == 1:
            raise KeyboardInterrupt

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
