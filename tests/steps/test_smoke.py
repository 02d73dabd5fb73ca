from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline.clock import FakeClock
from pipeline.config import SmokeSettings
from pipeline.errors import SmokeTestError
from pipeline.steps.smoke import SmokeTester

SMOKE = SmokeSettings(
    path="/predict", request='{"instances": [[1, 2, 3, 4]]}', expect_keys=("predictions",), timeout=20
)


class Model:
    """What the fake service answers; tests flip it."""

    health = 200
    predict_body: object = {"predictions": ["setosa"]}
    seen: list[bytes] = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def _send(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(Model.health, {"status": "ok"})

    def do_POST(self) -> None:
        Model.seen.append(self.rfile.read(int(self.headers["Content-Length"])))
        self._send(200, Model.predict_body)


@pytest.fixture()
def url() -> Iterator[str]:
    Model.health, Model.predict_body, Model.seen = 200, {"predictions": ["setosa"]}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_passes_on_a_healthy_service(url: str) -> None:
    result = SmokeTester(FakeClock(), echo=lambda _: None).run(url, "/health", SMOKE)
    assert result.attempts == 1 and result.response == {"predictions": ["setosa"]}
    assert json.loads(Model.seen[0]) == {"instances": [[1, 2, 3, 4]]}


def test_fails_with_the_cause_after_the_deadline(url: str) -> None:
    Model.health = 503
    clock = FakeClock()
    with pytest.raises(SmokeTestError, match=r"attempt\(s\) in 20s: GET /health answered 503"):
        SmokeTester(clock, echo=lambda _: None, poll=2.0).run(url, "/health", SMOKE)
    assert sum(clock.slept) == 20


def test_wrong_shape_is_a_failure(url: str) -> None:
    Model.predict_body = {"label": "setosa"}
    with pytest.raises(SmokeTestError, match="lacks predictions"):
        SmokeTester(FakeClock(), echo=lambda _: None).run(url, "/health", SMOKE)


def test_unreachable_url_is_a_failure() -> None:
    with pytest.raises(SmokeTestError, match="failed"):
        SmokeTester(FakeClock(), echo=lambda _: None, request_timeout=1).run("http://127.0.0.1:9", "/health", SMOKE)


def test_a_get_smoke_test_calls_the_path_without_a_body(url: str) -> None:
    tester = SmokeTester(FakeClock(), echo=lambda _line: None, poll=1.0)
    result = tester.run(url, "/health", SmokeSettings(path="/health", method="GET", timeout=5))
    assert result.response == {"status": 200}
    assert Model.seen == []  # nothing POSTed


def test_a_get_smoke_test_fails_on_a_bad_status(url: str) -> None:
    Model.health = 503
    tester = SmokeTester(FakeClock(), echo=lambda _line: None, poll=1.0)
    with pytest.raises(SmokeTestError, match="GET /health answered 503"):
        tester.run(url, "/health", SmokeSettings(path="/health", method="GET", timeout=5))
