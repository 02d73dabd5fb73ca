"""The model gate against real HTTP servers on 127.0.0.1: right, wrong, slow, wrong version, failing."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pipeline import config
from pipeline.clock import WallClock
from pipeline.errors import ConfigProblems
from pipeline.gate import (
    GoldenRow,
    GoldenSetError,
    load_golden_set,
    parse_golden_set,
    percentile,
    read_golden_set,
    run_gate,
)


@pytest.fixture()
def raw_settings(canary_raw_settings: dict[str, Any]) -> dict[str, Any]:
    """This module's settings: production as a canary with the model gate (tests/conftest.py)."""
    return canary_raw_settings


@pytest.fixture()
def settings(canary_settings: config.Settings) -> config.Settings:
    return canary_settings


VERSION = "1.3.0"
CUT_SHORT = b'{"predictions": '
# (request body) -> (status, response body); runs in the server's handler thread.
Behaviour = Callable[[dict[str, Any]], tuple[int, Any]]


@dataclass
class StepClock:
    """Time that only the model server moves: a request 'takes' what the server adds (no real waiting)."""

    t: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        with self.lock:
            return self.t

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self.lock:
            self.t += seconds


class ModelServer:
    """A small stdlib HTTP server standing in for the model server behind the test listener."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests += 1
                status, answer = owner.behaviour(body)
                data = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                # CUT_SHORT promises more than it sends, then the connection closes (a crashing server).
                self.send_header("Content-Length", str(100 if answer is CUT_SHORT else len(data)))
                self.close_connection = True
                self.end_headers()
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the gate gave up on this request (its timeout): nobody reads the answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def serve() -> Iterator[Callable[[Behaviour], ModelServer]]:
    servers: list[ModelServer] = []

    def start(behaviour: Behaviour) -> ModelServer:
        servers.append(ModelServer(behaviour))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture()
def rows(settings: config.Settings) -> tuple[GoldenRow, ...]:
    return load_golden_set(settings)


@pytest.fixture()
def gate(settings: config.Settings) -> config.GateSettings:
    assert settings.gate is not None
    return settings.gate


def answers_from(rows: tuple[GoldenRow, ...], version: str = VERSION) -> Behaviour:
    """A correct model: the expected answer of the golden row with this request."""
    table = {json.dumps(r.request, sort_keys=True): r.expected for r in rows}

    def behaviour(body: dict[str, Any]) -> tuple[int, Any]:
        return 200, {"predictions": table[json.dumps(body, sort_keys=True)], "version": version}

    return behaviour


def test_the_project_golden_set_covers_every_iris_class(rows: tuple[GoldenRow, ...]) -> None:
    assert len(rows) == 30
    assert {r.expected[0] for r in rows} == {"setosa", "versicolor", "virginica"}
    assert all(len(r.request["instances"][0]) == 4 for r in rows)


def test_a_right_model_passes(serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    server = serve(answers_from(rows))
    result = run_gate(server.url, gate, rows, VERSION, clock=WallClock())
    assert result.passed, result.summary
    assert result.metric("accuracy").value == 1.0
    assert result.metric("version").value == VERSION
    assert (result.requests, result.errors, server.requests) == (30, 0, 30)
    assert result.summary.startswith("accuracy 1.00 >= 0.90")


def test_a_wrong_model_fails_naming_accuracy(
    serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings
) -> None:
    # Healthy but wrong, as a model trained on shuffled labels: it answers one class for everything.
    server = serve(lambda body: (200, {"predictions": ["setosa"], "version": VERSION}))
    result = run_gate(server.url, gate, rows, VERSION, clock=WallClock())
    assert not result.passed
    assert [m.name for m in result.failed_metrics] == ["accuracy"]
    assert result.summary == "accuracy 0.33 < 0.90"


def test_a_slow_model_fails_on_p99(serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    clock = StepClock()
    right = answers_from(rows)

    def slow(body: dict[str, Any]) -> tuple[int, Any]:
        clock.advance(2.5)  # the injected clock: 2.5 s per request without waiting for it
        return right(body)

    server = serve(slow)
    result = run_gate(server.url, replace(gate, concurrency=1), rows, VERSION, clock=clock)
    assert not result.passed
    assert result.metric("p99").value == pytest.approx(2500)
    assert result.summary == "p99 2500 ms > 1000 ms"


def test_the_served_version_must_be_the_tag(serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    server = serve(answers_from(rows, version="1.2.0"))
    result = run_gate(server.url, gate, rows, VERSION, clock=WallClock())
    assert result.summary == "version 1.2.0 != 1.3.0"
    relaxed = run_gate(server.url, replace(gate, require_version=False), rows, VERSION, clock=WallClock())
    assert relaxed.passed and "version" not in [m.name for m in relaxed.metrics]


def test_errors_count_as_wrong_answers(serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    server = serve(lambda body: (500, {"error": "boom"}))
    result = run_gate(server.url, gate, rows, VERSION, clock=WallClock())
    assert not result.passed
    assert result.errors == 30
    assert result.summary.startswith("accuracy 0.00 < 0.90, version none != 1.3.0 (30 of 30 requests failed: HTTP 500")


def test_a_request_over_its_timeout_is_an_error(
    serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings
) -> None:
    right = answers_from(rows)
    hang = threading.Event()

    def sometimes_hangs(body: dict[str, Any]) -> tuple[int, Any]:
        if body == rows[0].request:
            hang.wait(5)  # released at the end of the test; the gate gives up after its timeout
        return right(body)

    server = serve(sometimes_hangs)
    try:
        result = run_gate(server.url, replace(gate, request_timeout=0.2), rows, VERSION, clock=WallClock())
    finally:
        hang.set()
    assert result.errors == 1
    assert "timed out" in (result.first_error or "")
    assert result.metric("accuracy").value == pytest.approx(29 / 30)
    assert result.passed  # one lost answer of 30 stays above 0.90


def test_an_answer_cut_short_is_an_error(serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    server = serve(lambda body: (200, CUT_SHORT))
    result = run_gate(server.url, gate, rows, VERSION, clock=WallClock())
    assert (result.passed, result.errors) == (False, 30)
    assert "IncompleteRead" in (result.first_error or "")


def test_not_json_is_an_error(serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    server = serve(lambda body: (200, b"<html>502 Bad Gateway</html>"))
    result = run_gate(server.url, gate, rows, VERSION, clock=WallClock())
    assert result.errors == 30 and "not JSON" in (result.first_error or "")


def test_nothing_listening_fails_the_gate(rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    server = ModelServer(lambda body: (200, {}))
    url = server.url
    server.close()  # the port is now closed: connections are refused
    result = run_gate(url, gate, rows, VERSION, clock=WallClock())
    assert not result.passed and result.errors == 30


def test_concurrency_is_bounded(serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings) -> None:
    right = answers_from(rows)
    lock = threading.Lock()
    in_flight = peak = 0
    # The first three requests wait for each other: they only get through if three are in flight at once.
    together = threading.Barrier(3, timeout=5)
    seen = 0

    def counting(body: dict[str, Any]) -> tuple[int, Any]:
        nonlocal in_flight, peak, seen
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
            seen += 1
            first_three = seen <= 3
        try:
            if first_three:
                together.wait()
        except threading.BrokenBarrierError:
            return 500, {"error": "fewer than three requests in flight"}
        finally:
            with lock:
                in_flight -= 1
        return right(body)

    server = serve(counting)
    result = run_gate(server.url, replace(gate, concurrency=3), rows, VERSION, clock=WallClock())
    assert result.passed and result.errors == 0
    assert peak == 3


def test_agreement_with_the_version_serving_now(
    serve: Any, rows: tuple[GoldenRow, ...], gate: config.GateSettings
) -> None:
    new = serve(answers_from(rows))
    # The version serving now answers the first 10 rows differently.
    differs = {json.dumps(r.request, sort_keys=True) for r in rows[:10]}
    right = answers_from(rows, version="1.2.0")
    old = serve(
        lambda body: (
            (200, {"predictions": ["other"], "version": "1.2.0"})
            if json.dumps(body, sort_keys=True) in differs
            else right(body)
        )
    )
    strict = replace(gate, min_agreement=0.9)
    result = run_gate(new.url, strict, rows, VERSION, clock=WallClock(), compare_url=old.url)
    assert result.summary == "agreement 0.67 < 0.90"
    lenient = run_gate(new.url, replace(gate, min_agreement=0.6), rows, VERSION, clock=WallClock(), compare_url=old.url)
    assert lenient.passed
    first_release = run_gate(new.url, strict, rows, VERSION, clock=WallClock(), compare_url=None)
    assert first_release.passed and first_release.metric("agreement").line == "agreement not measured"


def test_percentile_is_nearest_rank() -> None:
    assert percentile([float(i) for i in range(1, 101)], 0.99) == 99.0
    assert percentile([0.5], 0.99) == 0.5
    assert percentile([1.0, 9.0], 0.99) == 9.0


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "has no rows"),
        ("{not json}\n", "line 1 is not JSON"),
        ('{"request": {}}\n', 'line 1 must be an object with exactly "request" and "expected"'),
        ('{"request": {}, "expected": 1}\n[1]\n', "line 2 must be an object"),
    ],
)
def test_a_malformed_golden_set_names_the_line(text: str, problem: str) -> None:
    with pytest.raises(GoldenSetError, match=problem):
        parse_golden_set(text)


def test_golden_set_file_is_checked_with_the_settings(raw_settings: dict[str, Any], tmp_path: Path) -> None:
    (tmp_path / "golden.jsonl").write_text('{"request": {}, "expected": ["setosa"]}\n')
    raw_settings["gate"]["golden_set"] = "golden.jsonl"
    assert config.parse(raw_settings, root=tmp_path).gate is not None
    for name, message in (
        ("missing.jsonl", "gate.golden_set: 'missing.jsonl' does not exist"),
        ("../outside.jsonl", "gate.golden_set: '../outside.jsonl' is outside the repository"),
    ):
        raw_settings["gate"]["golden_set"] = name
        with pytest.raises(config.ConfigError, match=message):
            config.parse(raw_settings, root=tmp_path)
    (tmp_path / "bad.jsonl").write_text("[]\n")
    raw_settings["gate"]["golden_set"] = "bad.jsonl"
    with pytest.raises(config.ConfigError, match="gate.golden_set: bad.jsonl: line 1 must be an object"):
        config.parse(raw_settings, root=tmp_path)


def test_a_golden_set_no_file_can_be_read_from_is_one_problem_naming_the_key(
    raw_settings: dict[str, Any], tmp_path: Path
) -> None:
    # Each was a traceback: UnicodeDecodeError, "embedded null byte", RuntimeError "Symlink loop".
    (tmp_path / "latin1.jsonl").write_bytes('{"request": {}, "expected": "caf\u00e9"}\n'.encode("latin-1"))
    (tmp_path / "loop").symlink_to("loop")
    for name, message in (
        ("latin1.jsonl", "gate.golden_set: latin1.jsonl: not UTF-8 text (byte 0xe9 at offset 32). Save it as UTF-8"),
        ("x\0y", "gate.golden_set: 'x\\x00y' contains a NUL character. Remove it"),
        ("loop", "gate.golden_set: 'loop' is a symlink loop. Point it at a real file"),
    ):
        raw_settings["gate"]["golden_set"] = name
        with pytest.raises(ConfigProblems) as caught:
            config.parse(raw_settings, root=tmp_path)
        assert caught.value.keys == ("gate.golden_set",)
        assert message in caught.value.one_line()


def test_reading_a_golden_set_file_fails_as_a_golden_set_error(tmp_path: Path) -> None:
    (tmp_path / "golden.jsonl").write_bytes(b'{"request": {}, "expected": 1}\n\xff\n')
    with pytest.raises(GoldenSetError, match=r"not UTF-8 text \(byte 0xff at offset 31\)\. Save it as UTF-8"):
        read_golden_set(tmp_path / "golden.jsonl")
    with pytest.raises(GoldenSetError, match=r"cannot be read \(No such file or directory\)"):
        read_golden_set(tmp_path / "missing.jsonl")
    (tmp_path / "golden.jsonl").write_text('{"request": {}, "expected": 1}\n', encoding="utf-8")
    assert read_golden_set(tmp_path / "golden.jsonl") == (GoldenRow({}, 1),)


# --- the example model server (examples/model-server/server.py) behind the gate -------------------

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "model-server"


@pytest.fixture()
def model_server(tmp_path: Path) -> Iterator[Callable[[Path], str]]:
    """Start the example server on a free loopback port with a given artifact; its URL once healthy."""
    import os
    import socket
    import subprocess
    import sys
    import urllib.request

    procs: list[subprocess.Popen[bytes]] = []

    def start(artifact: Path) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
        env.update(PORT=str(port), HOST="127.0.0.1", MODEL_PATH=str(artifact))
        log = (tmp_path / f"server-{port}.log").open("wb")
        procs.append(subprocess.Popen([sys.executable, str(EXAMPLE / "server.py")], env=env, stdout=log, stderr=log))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return url
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"example server did not become healthy: {(tmp_path / f'server-{port}.log').read_text()}")

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=10)


def test_the_example_model_passes_its_golden_set(
    model_server: Callable[[Path], str], rows: tuple[GoldenRow, ...], gate: config.GateSettings
) -> None:
    url = model_server(EXAMPLE / "model.json")
    result = run_gate(url, gate, rows, "1.2.0", clock=WallClock())
    assert result.passed, result.summary
    assert result.metric("accuracy").value == pytest.approx(29 / 30)  # one versicolor row it gets wrong
    assert result.metric("version").value == "1.2.0"


def test_a_healthy_model_trained_on_another_feature_order_is_stopped(
    model_server: Callable[[Path], str], rows: tuple[GoldenRow, ...], gate: config.GateSettings, tmp_path: Path
) -> None:
    """The demo's v1.2.0 where no environment pins the feature order: healthy, answering, wrong."""
    import subprocess
    import sys

    artifact = tmp_path / "petal-first.json"
    features = "petal_length_cm,petal_width_cm,sepal_length_cm,sepal_width_cm"
    subprocess.run(
        [sys.executable, "train.py", "--version", "1.3.0", "--features", features, "--out", str(artifact)],
        cwd=EXAMPLE,
        check=True,
        capture_output=True,
    )
    url = model_server(artifact)
    result = run_gate(url, gate, rows, "1.3.0", clock=WallClock())
    assert not result.passed
    assert result.summary == "accuracy 0.33 < 0.90"  # it answers virginica for every row: 10 of 30
    assert result.metric("version").passed and result.errors == 0
