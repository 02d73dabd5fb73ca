"""smoke: through the stack's URL, the health path answers 200 and a sample prediction has the expected shape."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from pipeline.clock import Clock
from pipeline.config import SmokeSettings
from pipeline.errors import SmokeAnswerProblem, SmokeTestError

Echo = Callable[[str], None]


@dataclass(frozen=True)
class SmokeResult:
    attempts: int
    seconds: float
    response: dict[str, object]


@dataclass
class SmokeTester:
    clock: Clock
    echo: Echo = print
    poll: float = 2.0
    request_timeout: float = 10.0

    def run(self, base_url: str, health_path: str, smoke: SmokeSettings) -> SmokeResult:
        started = self.clock.now()
        deadline = started + smoke.timeout
        attempts = 0
        last_problem = ""
        while True:
            attempts += 1
            try:
                response = self._check_once(base_url.rstrip("/"), health_path, smoke)
                self.echo(f"  smoke test passed: {base_url}{smoke.path} answered with {', '.join(sorted(response))}")
                return SmokeResult(attempts, self.clock.now() - started, response)
            except _Retry as problem:
                if str(problem) != last_problem:
                    self.echo(f"  smoke test: {problem}; retrying")
                last_problem = str(problem)
            if self.clock.now() >= deadline:
                raise SmokeTestError(
                    f"smoke test failed after {attempts} attempt(s) in {int(self.clock.now() - started)}s: {last_problem}",
                    hint="Check the service's logs; the release is rolled back.",
                )
            self.clock.sleep(self.poll)

    def _check_once(self, base: str, health_path: str, smoke: SmokeSettings) -> dict[str, object]:
        status, _ = self._request("GET", base + health_path, None)
        if status != 200:
            raise _Retry(f"GET {health_path} answered {status}")
        data = smoke.request.encode() if smoke.method == "POST" else None
        status, body = self._request(smoke.method, base + smoke.path, data)
        try:
            return read_smoke_answer(smoke, status, body)
        except SmokeAnswerProblem as problem:
            raise _Retry(problem.message) from None

    def _request(self, method: str, url: str, data: bytes | None) -> tuple[int, bytes]:
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "User-Agent": "ecs-model-pipeline-smoke"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.request_timeout) as response:  # nosec B310 # the service's own http(s) URL, from the stack outputs
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (urllib.error.URLError, OSError) as err:
            raise _Retry(f"{method} {url} failed: {getattr(err, 'reason', err)}") from None


class _Retry(Exception):
    pass


def read_smoke_answer(smoke: SmokeSettings, status: int, body: bytes) -> dict[str, object]:
    """The one rule for a good smoke answer, shared by the smoke test and the pre-push image check:
    200; for a POST or when keys are expected, a JSON object holding every expected key."""
    call = f"{smoke.method} {smoke.path}"
    if status != 200:
        raise SmokeAnswerProblem(f"{call} answered {status}: {body[:200]!r}")
    if smoke.method == "GET" and not smoke.expect_keys:
        return {"status": status}  # a GET smoke test checks the answer's status, and keys only when asked
    try:
        payload = json.loads(body)
    except ValueError:
        raise SmokeAnswerProblem(f"{call} did not answer JSON: {body[:200]!r}") from None
    if not isinstance(payload, dict):
        raise SmokeAnswerProblem(f"{call} answered {type(payload).__name__}, not a JSON object")
    missing = [key for key in smoke.expect_keys if key not in payload]
    if missing:
        raise SmokeAnswerProblem(f"{call} answer lacks {', '.join(missing)}")
    return payload
