"""The example model server, run as a real subprocess on a loopback port."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-server"
SERVER = EXAMPLE / "server.py"
CANONICAL = "sepal_length_cm,sepal_width_cm,petal_length_cm,petal_width_cm"
SETOSA = [5.1, 3.5, 1.4, 0.2]
VIRGINICA = [6.7, 3.0, 5.2, 2.3]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    metrics_port: int
    log_path: Path
    _closed: list[bool] = field(default_factory=list)

    def request(
        self, method: str, path: str, body: bytes | None = None, timeout: float = 10, port: int | None = None
    ) -> Response:
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def predict(self, payload: Any, timeout: float = 10) -> Response:
        return self.request("POST", "/predict", json.dumps(payload).encode(), timeout=timeout)

    def log(self) -> str:
        return self.log_path.read_text()

    def metrics(self) -> Response:
        return self.request("GET", "/metrics", port=self.metrics_port)

    def raw(self, data: bytes, timeout: float = 10) -> bytes:
        """Send bytes as they are; everything the server answers until it closes."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as conn:
            conn.sendall(data)
            raw = b""
            while chunk := conn.recv(4096):
                raw += chunk
        return raw


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def poll(check: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval)
    return check()


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start server.py with extra env; wait until it listens (optionally until healthy)."""
    started: list[Server] = []

    def _start(healthy: bool = True, **env: str) -> Server:
        # Port 0: the server binds what the kernel gives and logs it. Ports picked here and bound
        # later could be taken meanwhile by a server of a test running beside this one.
        log_path = tmp_path / f"server-{len(started)}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
        full_env.update({"PORT": "0", "METRICS_PORT": "0", "HOST": "127.0.0.1", **env})
        with log_path.open("wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, str(SERVER)], env=full_env, stdout=log_file, stderr=subprocess.STDOUT
            )
        server = Server(proc, 0, 0, log_path)
        started.append(server)
        assert poll(lambda: _bound_ports(server) is not None or proc.poll() is not None), "server did not listen"
        assert proc.poll() is None, f"server exited early:\n{server.log()}"
        server.port, server.metrics_port = _bound_ports(server) or (0, 0)
        if healthy:
            assert poll(lambda: server.request("GET", "/health").status == 200), server.log()
        return server

    yield _start
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait(timeout=10)


def _bound_ports(server: Server) -> tuple[int, int] | None:
    """The service and metrics ports the server logged (metrics 0 when it could not listen)."""
    text = server.log()
    service = re.search(r"listening on [\d.]+:(\d+) ", text)
    metrics = re.search(r"metrics on [\d.]+:(\d+)/metrics", text)
    if service and (metrics or "no /metrics" in text):
        return int(service.group(1)), int(metrics.group(1)) if metrics else 0
    return None


# --- health and prediction -----------------------------------------------------------------------


def test_health_is_503_while_the_model_loads_then_200(start: Callable[..., Server]) -> None:
    server = start(healthy=False, MODEL_WARMUP_SECONDS="0.6")

    loading = server.request("GET", "/health")
    assert (loading.status, loading.json()) == (503, {"status": "loading"})
    not_ready = server.predict({"instances": [SETOSA]})
    assert not_ready.status == 503 and not_ready.json()["error"]["code"] == "model_not_ready"

    assert poll(lambda: server.request("GET", "/health").status == 200, timeout=5)
    assert server.request("GET", "/health").json() == {"status": "ok", "version": "1.2.0"}


def test_predict_returns_labels_probabilities_and_version(start: Callable[..., Server]) -> None:
    server = start()

    resp = server.predict({"instances": [SETOSA, VIRGINICA, [6, 3, 4, 1]]})

    assert resp.status == 200 and resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert body["predictions"] == ["setosa", "virginica", "versicolor"]
    assert body["version"] == "1.2.0"
    for probs in body["probabilities"]:
        assert len(probs) == 3 and abs(sum(probs) - 1) < 1e-5


def test_keep_alive_serves_several_requests_on_one_connection(start: Callable[..., Server]) -> None:
    server = start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        for _ in range(3):
            conn.request("POST", "/predict", body=json.dumps({"instances": [SETOSA]}))
            resp = conn.getresponse()
            assert resp.status == 200 and json.loads(resp.read())["predictions"] == ["setosa"]
    finally:
        conn.close()


def test_keep_alive_requests_are_not_held_back_by_nagle(start: Callable[..., Server]) -> None:
    # Without TCP_NODELAY each keep-alive response waits ~40 ms for the client's delayed ACK.
    server = start()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    body = json.dumps({"instances": [SETOSA]})
    try:
        began = time.perf_counter()
        for _ in range(20):
            conn.request("POST", "/predict", body=body)
            conn.getresponse().read()
        assert time.perf_counter() - began < 0.4
    finally:
        conn.close()


BAD_INPUTS = [
    pytest.param(b"{not json", "invalid_json", "not valid JSON", id="not-json"),
    pytest.param(b"\xff\xfe", "invalid_json", "not valid JSON", id="not-utf8"),
    pytest.param(b'{"instances": [[NaN, 1, 2, 3]]}', "invalid_json", "NaN", id="nan"),
    pytest.param(b'{"rows": [[1, 2, 3, 4]]}', "missing_instances", '"instances"', id="missing-key"),
    pytest.param(b"[[1, 2, 3, 4]]", "missing_instances", '"instances"', id="not-an-object"),
    pytest.param(b'{"instances": "1,2,3,4"}', "invalid_instances", "non-empty list", id="instances-not-list"),
    pytest.param(b'{"instances": []}', "invalid_instances", "non-empty list", id="no-rows"),
    pytest.param(
        b'{"instances": [[1, 2, 3, 4], [1, 2, 3]]}',
        "wrong_row_length",
        "instances[1] has 3 values; expected 4",
        id="short-row",
    ),
    pytest.param(b'{"instances": [[1, 2, 3, 4, 5]]}', "wrong_row_length", "has 5 values", id="long-row"),
    pytest.param(b'{"instances": [1, 2, 3, 4]}', "wrong_row_length", "instances[0] has int", id="flat-list"),
    pytest.param(
        b'{"instances": [[1, "2", 3, 4]]}',
        "not_a_number",
        'instances[0][1] (sepal_width_cm) is "2"',
        id="string",
    ),
    pytest.param(b'{"instances": [[1, 2, true, 4]]}', "not_a_number", "(petal_length_cm) is true", id="bool"),
    pytest.param(b'{"instances": [[1, 2, 3, null]]}', "not_a_number", "is null", id="null"),
    pytest.param(b'{"instances": [[1, 2, 3, 1e999]]}', "not_a_number", "finite", id="overflow"),
    pytest.param(
        json.dumps({"instances": [SETOSA] * 6}).encode(),
        "too_many_instances",
        "6 rows; the limit is 5",
        id="too-many-rows",
    ),
]


@pytest.mark.parametrize(("body", "code", "says"), BAD_INPUTS)
def test_bad_input_is_422_naming_the_problem(start: Callable[..., Server], body: bytes, code: str, says: str) -> None:
    server = start(MODEL_MAX_INSTANCES="5")

    resp = server.request("POST", "/predict", body)

    assert resp.status == 422, resp.body
    error = resp.json()["error"]
    assert error["code"] == code and says in error["message"], error


def test_body_over_the_limit_is_413_and_the_connection_closes(start: Callable[..., Server]) -> None:
    server = start(MODEL_MAX_BODY_BYTES="2048")

    resp = server.request("POST", "/predict", json.dumps({"instances": [SETOSA] * 200}).encode())

    assert resp.status == 413 and resp.headers["connection"] == "close"
    assert resp.json()["error"]["code"] == "body_too_large"
    body_size = len(json.dumps({"instances": [SETOSA] * 200}))
    assert f"body is {body_size} bytes; the limit is 2048" in resp.json()["error"]["message"]
    assert server.predict({"instances": [SETOSA]}).status == 200  # the server is fine afterwards


def test_a_body_shorter_than_its_content_length_times_out_with_408(start: Callable[..., Server]) -> None:
    server = start(MODEL_REQUEST_DEADLINE_SECONDS="1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        raw = b""
        while chunk := conn.recv(4096):  # the server closes after answering
            raw += chunk
    answer = raw.decode()
    assert answer.startswith("HTTP/1.1 408") and "Connection: close" in answer
    assert '"incomplete_body"' in answer and "got 1 of 100 bytes" in answer


def test_unknown_path_is_404_and_wrong_method_405(start: Callable[..., Server]) -> None:
    server = start()
    assert server.request("GET", "/nope").status == 404
    wrong = server.request("GET", "/predict")
    assert wrong.status == 405 and "POST" in wrong.json()["error"]["message"]


# --- hostile clients: never a 5xx, never a stuck worker ---------------------------------------------

HOSTILE_BODIES = [
    pytest.param(b'{"instances": ' + b"[" * 5000 + b"]" * 5000 + b"}", "invalid_json", "nested too deeply", id="deep"),
    pytest.param(b"[" * 100_000, "invalid_json", "nested too deeply", id="deep-unclosed"),
    pytest.param(b'{"instances": [[1e308, 1e308, 1e308, 1e308]]}', "out_of_range", "instances[0][0]", id="huge"),
    pytest.param(b'{"instances": [[1, 1, 1, -1e308]]}', "out_of_range", "between -1e+06 and 1e+06", id="huge-negative"),
    pytest.param(b'{"instances": [[' + b"9" * 5000 + b", 1, 2, 3]]}", "invalid_json", "digits", id="long-int"),
    pytest.param(b'{"instances": [[' + b"9" * 400 + b", 1, 2, 3]]}", "not_a_number", "finite", id="int-over-float"),
    pytest.param(b'{"instances": [[-Infinity, 1, 2, 3]]}', "invalid_json", "Infinity", id="infinity"),
    pytest.param(b'{"instances": [["\xc3\x28", 1, 2, 3]]}', "invalid_json", "utf-8", id="bad-utf8-in-string"),
    pytest.param(
        b'{"instances": [[' + b"[" * 900 + b"]" * 900 + b", 1, 2, 3]]}", "not_a_number", "a list", id="deep-cell"
    ),
]


@pytest.mark.parametrize(("body", "code", "says"), HOSTILE_BODIES)
def test_hostile_bodies_get_422_and_no_traceback(
    start: Callable[..., Server], body: bytes, code: str, says: str
) -> None:
    server = start()

    resp = server.request("POST", "/predict", body)

    assert resp.status == 422, resp.body
    error = resp.json()["error"]
    assert error["code"] == code and says in error["message"], error
    assert b"NaN" not in resp.body and "Traceback" not in server.log()


RAW_REQUESTS = [
    pytest.param(b"GET /health HTTP/2.0\r\n\r\n", "400", id="http2-version"),  # http.server: 505
    pytest.param(b"BREW /health HTTP/1.1\r\nConnection: close\r\n\r\n", "405", id="unknown-method"),  # 501
    pytest.param(b"M-SEARCH * HTTP/1.1\r\nConnection: close\r\n\r\n", "400", id="method-not-a-name"),
    pytest.param(b"POST /predict HTTP/1.1\r\nContent-Length: 1_0\r\n\r\n0123456789", "400", id="length-1_0"),
    pytest.param(b"POST /predict HTTP/1.1\r\nContent-Length: +2\r\n\r\n{}", "400", id="length-plus"),
    pytest.param(
        b"POST /predict HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 20\r\n\r\n{}", "400", id="two-lengths"
    ),
    pytest.param(
        b"POST /predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        "411",
        id="chunked",
    ),
    pytest.param(b"POST /predict HTTP/1.1\r\nContent-Length: 50\r\n\r\n", "408", id="length-no-body"),
    pytest.param(
        b"POST /predict HTTP/1.1\r\nConnection: close\r\nContent-Length: 3\r\n\r\n\xff\xfe\xfd", "422", id="not-utf8"
    ),
]


@pytest.mark.parametrize(("data", "status"), RAW_REQUESTS)
def test_malformed_requests_get_4xx(start: Callable[..., Server], data: bytes, status: str) -> None:
    server = start(MODEL_REQUEST_DEADLINE_SECONDS="1")

    answer = server.raw(data)

    if answer.startswith(b"HTTP/"):
        assert answer.split(b" ", 2)[1].decode() == status, answer
    else:  # http.server answers an unusable version line without a status line (as HTTP/0.9)
        assert f"Error code: {status}".encode() in answer, answer
    assert server.request("GET", "/health").status == 200  # and the server is fine afterwards


def _threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1))  # type: ignore[union-attr]


def test_slow_clients_hold_no_more_than_the_worker_pool_and_only_until_the_deadline(
    start: Callable[..., Server],
) -> None:
    server = start(MODEL_WORKERS="4", MODEL_REQUEST_DEADLINE_SECONDS="1")
    idle_threads = _threads(server.proc.pid)
    slow = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(40)]
    try:
        for _ in range(3):  # slowloris: a byte at a time, well inside any per-read timeout
            for conn in slow:
                conn.sendall(b"P")
            time.sleep(0.3)
        assert _threads(server.proc.pid) <= idle_threads  # a fixed pool: no thread per connection
        # Each worker is freed at its connection's deadline, so an honest client gets through.
        began = time.monotonic()
        assert server.request("GET", "/health", timeout=30).status == 200
        assert time.monotonic() - began < 20
    finally:
        for conn in slow:
            conn.close()


def test_idle_keep_alive_connections_give_their_worker_up_when_others_wait(start: Callable[..., Server]) -> None:
    server = start(MODEL_WORKERS="2")  # keep-alive stays 75 s: only saturation frees these workers
    idle = []
    for _ in range(2):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/health")
        assert conn.getresponse().read()
        idle.append(conn)
    try:
        assert server.request("GET", "/health", timeout=5).status == 200
    finally:
        for conn in idle:
            conn.close()


def test_log_lines_escape_control_characters(start: Callable[..., Server]) -> None:
    server = start()

    server.raw(b"GET /\x1b]0;owned\x07\x1b[2J HTTP/1.1\r\nConnection: close\r\n\r\n")

    assert poll(lambda: "owned" in server.log())
    assert "\x1b" not in server.log() and "\x07" not in server.log()
    assert "/\\x1b]0;owned\\x07\\x1b[2J" in server.log()


def test_metrics_are_only_on_their_own_port(start: Callable[..., Server]) -> None:
    server = start()
    assert server.request("GET", "/metrics").status == 404  # the port the load balancer routes
    assert server.metrics().status == 200
    assert server.request("POST", "/predict", b"{}", port=server.metrics_port).status == 404


def test_a_taken_metrics_port_costs_the_metrics_not_the_service(start: Callable[..., Server]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = start(METRICS_PORT=str(taken.getsockname()[1]))
        assert server.predict({"instances": [SETOSA]}).status == 200
        assert "no /metrics: cannot listen" in server.log()


def test_health_reason_names_no_file_paths(start: Callable[..., Server], tmp_path: Path) -> None:
    missing = tmp_path / "secret-folder" / "model.json"
    server = start(healthy=False, MODEL_PATH=str(missing))

    assert poll(lambda: server.request("GET", "/health").json()["status"] == "failed")

    reason = server.request("GET", "/health").json()["reason"]
    assert reason == "the model artifact cannot be read; see the server log"
    assert str(missing) in server.log()  # the operator still sees where


# --- metrics ---------------------------------------------------------------------------------------

SAMPLE = re.compile(r'^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*",?)*\})? -?[0-9.e+-]+$')
COMMENT = re.compile(
    r"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .+|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram|summary|untyped))$"
)


def parse_metrics(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        assert COMMENT.match(line) or SAMPLE.match(line), f"not Prometheus text format: {line!r}"
        if not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_are_prometheus_text_with_counts_latency_and_gauges(start: Callable[..., Server]) -> None:
    server = start()
    server.predict({"instances": [SETOSA, VIRGINICA]})
    server.predict({"instances": [[1, 2]]})

    resp = server.metrics()

    assert resp.status == 200 and resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_metrics(resp.body.decode())
    assert samples['model_server_requests_total{method="POST",path="/predict",status="200"}'] == 1
    assert samples['model_server_requests_total{method="POST",path="/predict",status="422"}'] == 1
    assert samples["model_server_predicted_instances_total"] == 2
    assert samples["model_server_model_loaded"] == 1
    assert samples['model_server_model_info{version="1.2.0"}'] == 1
    # This scrape counts itself; a request answered a moment ago may not have left yet.
    assert samples["model_server_in_flight_requests"] >= 1
    assert poll(lambda: in_flight(server) == 1, timeout=2)
    buckets = [
        v for k, v in samples.items() if k.startswith('model_server_request_duration_seconds_bucket{path="/predict"')
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 2  # cumulative, +Inf == count
    assert samples['model_server_request_duration_seconds_count{path="/predict"}'] == 2


# --- shutdown --------------------------------------------------------------------------------------


def in_flight(server: Server) -> float:
    return parse_metrics(server.metrics().body.decode())["model_server_in_flight_requests"]


def slow_request_started(server: Server) -> bool:
    """Another request besides this scrape is in flight, twice 50 ms apart (a request answered a
    moment ago can linger for microseconds; the slow one lasts seconds)."""
    if in_flight(server) < 2:
        return False
    time.sleep(0.05)
    return in_flight(server) >= 2


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0(
    start: Callable[..., Server],
) -> None:
    server = start(MODEL_DEBUG_DELAY_SECONDS="1.0")
    results: list[Response] = []
    slow = threading.Thread(target=lambda: results.append(server.predict({"instances": [SETOSA]})))
    slow.start()
    assert poll(lambda: slow_request_started(server), timeout=5)

    server.proc.send_signal(signal.SIGTERM)

    assert poll(lambda: not listening(server.port), timeout=3), "still accepting after SIGTERM"
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)
    slow.join(timeout=10)
    assert [r.status for r in results] == [200] and results[0].json()["predictions"] == ["setosa"]
    assert results[0].headers["connection"] == "close"
    assert server.proc.wait(timeout=10) == 0
    assert "drained; exiting" in server.log()


def test_drain_is_bounded_by_the_drain_timeout(start: Callable[..., Server]) -> None:
    server = start(MODEL_DEBUG_DELAY_SECONDS="5", MODEL_DRAIN_SECONDS="0.3")
    slow = threading.Thread(target=lambda: _ignore_errors(lambda: server.predict({"instances": [SETOSA]})), daemon=True)
    slow.start()
    assert poll(lambda: slow_request_started(server), timeout=5)

    began = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)

    assert server.proc.wait(timeout=5) == 0
    assert time.monotonic() - began < 3
    assert "drain timeout: 1 requests still in flight" in server.log()


def _ignore_errors(call: Callable[[], object]) -> None:
    try:
        call()
    except OSError:
        pass


def test_idle_server_exits_0_promptly_on_sigterm(start: Callable[..., Server]) -> None:
    server = start()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=5) == 0


def test_a_bad_setting_exits_2_with_the_reason(tmp_path: Path) -> None:
    env = {**os.environ, "PORT": "http"}
    proc = subprocess.run(
        [sys.executable, str(SERVER)], env=env, capture_output=True, text=True, timeout=10, check=False
    )
    assert proc.returncode == 2 and "PORT='http' is not an integer" in proc.stderr


# --- the release that fails only where it is deployed ----------------------------------------------


def petal_first_model(tmp_path: Path) -> Path:
    """The "bad" 1.2.0: the same model with its columns in petal-first order.

    Permuting the columns of the committed artifact is exactly what
    `train.py --features petal_length_cm,petal_width_cm,sepal_length_cm,sepal_width_cm` learns
    (up to solver tolerance), without needing scikit-learn here.
    """
    artifact = json.loads((EXAMPLE / "model.json").read_text())
    order = [2, 3, 0, 1]
    artifact["feature_names"] = [artifact["feature_names"][i] for i in order]
    for key in ("mean", "scale"):
        artifact["preprocessing"][key] = [artifact["preprocessing"][key][i] for i in order]
    artifact["model"]["coef"] = [[row[i] for i in order] for row in artifact["model"]["coef"]]
    path = tmp_path / "model-petal-first.json"
    path.write_text(json.dumps(artifact))
    return path


def test_bad_model_passes_a_check_with_default_settings(start: Callable[..., Server], tmp_path: Path) -> None:
    server = start(MODEL_PATH=str(petal_first_model(tmp_path)))

    assert server.request("GET", "/health").json() == {"status": "ok", "version": "1.2.0"}
    resp = server.predict({"instances": [SETOSA]})
    assert resp.status == 200  # a smoke test that checks keys passes...
    assert resp.json()["predictions"] != ["setosa"]  # ...though every answer is for the wrong columns


def test_bad_model_never_becomes_healthy_where_the_feature_contract_is_set(
    start: Callable[..., Server], tmp_path: Path
) -> None:
    server = start(healthy=False, MODEL_PATH=str(petal_first_model(tmp_path)), MODEL_EXPECTED_FEATURES=CANONICAL)

    assert poll(lambda: server.request("GET", "/health").json()["status"] == "failed", timeout=5)
    health = server.request("GET", "/health")
    assert health.status == 503
    assert "trained on features petal_length_cm,petal_width_cm" in health.json()["reason"]
    assert "MODEL_EXPECTED_FEATURES" in health.json()["reason"]
    assert "model not loaded, /health stays 503" in server.log()
    assert server.predict({"instances": [SETOSA]}).status == 503
    assert server.proc.poll() is None  # it keeps running; the load balancer's health check decides


def test_good_model_is_healthy_under_the_feature_contract(start: Callable[..., Server]) -> None:
    server = start(MODEL_EXPECTED_FEATURES=CANONICAL)
    assert server.predict({"instances": [SETOSA]}).json()["predictions"] == ["setosa"]


# --- the real image, on the local Python base ------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _server_process(root: int) -> int | None:
    """The python3 running server.py under `buildah run` (it sits a few processes down)."""
    queue = [root]
    while queue:
        pid = queue.pop()
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv[:1] and argv[0].endswith(b"python3") and b"/app/server.py" in argv:
            return pid
        queue.extend(_children(pid))
    return None


@pytest.mark.slow
def test_the_image_builds_on_the_local_base_and_serves_as_a_non_root_user(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    for tool in ("buildah", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; the local Python base image needs it")
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root to make the local Python base image")
    from local_ground.python_base import ensure_python_base
    from pipeline.images import buildah

    if not os.environ.get(buildah.ROOT_ENV):  # never touch the machine's default store
        monkeypatch.setenv(buildah.ROOT_ENV, str(tmp_path_factory.mktemp("buildah")))
    base = ensure_python_base()  # about 40 s once per machine, about 5 s into a fresh store
    tag = f"localhost/iris-example:test-{os.getpid()}"
    buildah.build(EXAMPLE, EXAMPLE / "Dockerfile", tag, {"BASE_IMAGE": base.name})
    config = buildah.inspect_config(tag)
    assert config["User"] == "65532:65532" and {"8080/tcp", "9090/tcp"} <= set(config["ExposedPorts"])
    assert config["Cmd"] == ["python3", "/app/server.py"]

    port, metrics_port = free_port(), free_port()
    container = subprocess.run(
        buildah.global_args() + ["from", tag], capture_output=True, text=True, check=True
    ).stdout.strip()
    run = subprocess.Popen(
        buildah.global_args() + [
            "run", "--isolation", "chroot", "--env", f"PORT={port}", "--env", f"METRICS_PORT={metrics_port}",
            "--env", "HOST=127.0.0.1", container, "--", *config["Cmd"],
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        server = Server(run, port, metrics_port, tmp_path_factory.mktemp("log") / "unused.log")
        assert poll(lambda: listening(port) or run.poll() is not None, timeout=20) and run.poll() is None
        assert poll(lambda: server.request("GET", "/health").status == 200, timeout=10)
        assert server.predict({"instances": [SETOSA, VIRGINICA]}).json()["predictions"] == [
            "setosa",
            "virginica",
        ]
        assert server.metrics().status == 200 and server.request("GET", "/metrics").status == 404
        python = _server_process(run.pid)
        assert python is not None
        assert Path(f"/proc/{python}/status").read_text().count("\t65532\t") >= 2  # Uid: and Gid: lines
        # ECS signals the container's PID 1; `buildah run` itself would kill rather than forward.
        os.kill(python, signal.SIGTERM)
        assert run.wait(timeout=15) == 0
        output = run.stdout.read().decode() if run.stdout else ""
        assert "drained; exiting" in output
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=10)
        subprocess.run(buildah.global_args() + ["rm", container], capture_output=True, check=False)
        buildah.remove(tag)
