"""After Ctrl-C: read what AWS is doing right now, for the one line the user sees before exit 130.

Best effort and bounded: the user asked to stop, so a slow or failing read is reported as such
instead of holding the terminal (a read runs in a daemon thread and is abandoned after `timeout`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

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
