"""The model gate: send the golden set to a new version and decide whether it may take production traffic.

Pure HTTP (standard library), no AWS: the engine points it at the test listener while a PAUSE hook
holds the deployment, and turns the `GateResult` into ContinueServiceDeployment CONTINUE or ROLLBACK.
A model can be healthy and still wrong (shuffled labels, another feature order): health checks and the
smoke test cannot see that, the golden set's expected answers can.
"""

from __future__ import annotations

import http.client
import json
import math
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import GoldenSetError

if TYPE_CHECKING:
    from pipeline.clock import Clock
    from pipeline.config import GateSettings, Settings


@dataclass(frozen=True)
class GoldenRow:
    request: Any  # the JSON body POSTed to the model server
    expected: Any  # the answer (the response's answer_key) a correct model gives


@dataclass(frozen=True)
class Answer:
    """One golden request's outcome: the parsed body, or why there is none."""

    latency: float  # seconds, by the injected clock
    body: dict[str, Any] | None = None
    error: str | None = None


@dataclass(frozen=True)
class Metric:
    """One measured figure against its threshold; `line` says both, e.g. `accuracy 0.41 < 0.90`."""

    name: str
    value: float | str | None  # None: not measured (e.g. nothing serving yet to agree with)
    threshold: float | str
    passed: bool
    unit: str = ""

    @property
    def line(self) -> str:
        if self.value is None:
            return f"{self.name} not measured"
        if isinstance(self.value, str) or isinstance(self.threshold, str):
            op = "==" if self.passed else "!="
            return f"{self.name} {self.value} {op} {self.threshold}"
        lower_is_better = self.name.startswith("p99")
        if lower_is_better:
            op = "<=" if self.passed else ">"
        else:
            op = ">=" if self.passed else "<"
        if self.unit == "ms":
            return f"{self.name} {self.value:.0f} ms {op} {self.threshold:.0f} ms"
        return f"{self.name} {self.value:.2f} {op} {self.threshold:.2f}"


@dataclass(frozen=True)
class GateResult:
    passed: bool
    metrics: tuple[Metric, ...]
    requests: int
    errors: int  # golden requests that got no usable answer (timeout, refused, non-2xx, not JSON)
    first_error: str | None = None

    @property
    def failed_metrics(self) -> tuple[Metric, ...]:
        return tuple(m for m in self.metrics if not m.passed)

    @property
    def summary(self) -> str:
        """One line: the failing metrics (or all of them when it passed), and the errors if any."""
        shown = self.failed_metrics or self.metrics
        text = ", ".join(m.line for m in shown)
        if self.errors:
            text += f" ({self.errors} of {self.requests} requests failed: {self.first_error})"
        return text

    def metric(self, name: str) -> Metric:
        return next(m for m in self.metrics if m.name == name)


def parse_golden_set(text: str) -> tuple[GoldenRow, ...]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError as err:
            raise GoldenSetError(f"line {number} is not JSON ({err})") from None
        if not isinstance(data, dict) or set(data) != {"request", "expected"}:
            raise GoldenSetError(f'line {number} must be an object with exactly "request" and "expected"')
        rows.append(GoldenRow(data["request"], data["expected"]))
    if not rows:
        raise GoldenSetError("has no rows")
    return tuple(rows)


def read_golden_set(file: Path) -> tuple[GoldenRow, ...]:
    """The rows of a golden set file; a file that cannot be read or is not UTF-8 is a GoldenSetError too."""
    try:
        data = file.read_bytes()
    except OSError as err:
        raise _file_error(f"cannot be read ({err.strerror or err})", "Make it a readable file.") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        where = f"byte 0x{data[err.start]:02x} at offset {err.start}"
        raise _file_error(f"not UTF-8 text ({where})", "Save it as UTF-8 (JSON's encoding).") from None
    return parse_golden_set(text)


def _file_error(message: str, hint: str) -> GoldenSetError:
    """A GoldenSetError about the file itself: its fix is not the format's, the hint GoldenSetError gives."""
    error = GoldenSetError(message)
    error.hint = hint
    return error


def load_golden_set(settings: Settings) -> tuple[GoldenRow, ...]:
    if settings.gate is None:
        raise GoldenSetError("no [gate] table in the settings")
    return read_golden_set(settings.root / settings.gate.golden_set)


def run_gate(
    base_url: str,
    gate: GateSettings,
    rows: Sequence[GoldenRow],
    expected_version: str,
    *,
    clock: Clock,
    compare_url: str | None = None,
) -> GateResult:
    """Send every golden row to `base_url` and judge the answers.

    `compare_url` is the version serving now (the production listener): with `gate.min_agreement`
    above 0 the same rows go there too, and the share of equal answers must reach that minimum.
    """
    answers = send_all(base_url, gate, rows, clock=clock)
    metrics = [
        _accuracy(gate, rows, answers),
        _p99(gate, answers),
    ]
    if gate.require_version:
        metrics.append(_version(gate, answers, expected_version))
    if gate.min_agreement > 0:
        baseline = send_all(compare_url, gate, rows, clock=clock) if compare_url else None
        metrics.append(_agreement(gate, answers, baseline))
    errors = [a.error for a in answers if a.error is not None]
    return GateResult(
        passed=all(m.passed for m in metrics),
        metrics=tuple(metrics),
        requests=len(answers),
        errors=len(errors),
        first_error=errors[0] if errors else None,
    )


def send_all(base_url: str, gate: GateSettings, rows: Sequence[GoldenRow], *, clock: Clock) -> list[Answer]:
    """POST each row's request, at most `gate.concurrency` at once; answers keep the rows' order."""
    url = base_url.rstrip("/") + gate.path
    with ThreadPoolExecutor(max_workers=gate.concurrency) as pool:
        return list(pool.map(lambda row: _send(url, row.request, gate.request_timeout, clock), rows))


def _send(url: str, body: Any, timeout: float, clock: Clock) -> Answer:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={"Content-Type": "application/json"})
    start = clock.now()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # nosec B310 # the test listener URL from the stack outputs
            raw = response.read()
    except urllib.error.HTTPError as err:
        return Answer(clock.now() - start, error=f"HTTP {err.code} from {url}")
    except (OSError, http.client.HTTPException) as err:  # refused, reset, timed out, cut short
        reason = getattr(err, "reason", err)
        return Answer(clock.now() - start, error=f"{url}: {reason}")
    latency = clock.now() - start
    try:
        parsed = json.loads(raw)
    except ValueError:
        return Answer(latency, error=f"{url} answered something that is not JSON")
    if not isinstance(parsed, dict):
        return Answer(latency, error=f"{url} answered JSON that is not an object")
    return Answer(latency, body=parsed)


def percentile(values: Sequence[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value at or above `share` of the values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _accuracy(gate: GateSettings, rows: Sequence[GoldenRow], answers: Sequence[Answer]) -> Metric:
    right = sum(
        1
        for row, a in zip(rows, answers, strict=True)
        if a.body is not None and a.body.get(gate.answer_key) == row.expected
    )
    value = right / len(rows)
    return Metric("accuracy", value, gate.min_accuracy, value >= gate.min_accuracy)


def _p99(gate: GateSettings, answers: Sequence[Answer]) -> Metric:
    # Failed requests count with the time they took: a timeout is as slow as its timeout.
    value = percentile([a.latency for a in answers], 0.99) * 1000
    return Metric("p99", value, gate.max_p99_ms, value <= gate.max_p99_ms, unit="ms")


def _version(gate: GateSettings, answers: Sequence[Answer], expected: str) -> Metric:
    served = sorted({str(a.body.get(gate.version_key)) for a in answers if a.body is not None})
    value = ",".join(served) if served else "none"
    return Metric("version", value, expected, served == [expected])


def _agreement(gate: GateSettings, answers: Sequence[Answer], baseline: Sequence[Answer] | None) -> Metric:
    if baseline is None:
        # Nothing serves yet (a first release): there is no answer to agree with.
        return Metric("agreement", None, gate.min_agreement, True)
    same = sum(
        1
        for new, old in zip(answers, baseline, strict=True)
        if new.body is not None
        and old.body is not None
        and new.body.get(gate.answer_key) == old.body.get(gate.answer_key)
    )
    value = same / len(answers)
    return Metric("agreement", value, gate.min_agreement, value >= gate.min_agreement)
