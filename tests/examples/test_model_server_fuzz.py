"""Fuzz the example model server: thousands of generated requests, never a 5xx.

schemathesis generates requests from the published openapi.json, valid and invalid, and checks
every answer against it (status documented, body matching its schema, no server error);
hypothesis adds arbitrary JSON, bytes, deep nesting and raw HTTP with lying framing.
The example counts bound the run (about 3,200 requests, under 30 s on 2 busy cores).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "model-server"
OPENAPI = json.loads((EXAMPLE / "openapi.json").read_text())
SCHEMAS = OPENAPI["components"]["schemas"]
SCHEMA = schemathesis.openapi.from_path(EXAMPLE / "openapi.json")
PREDICT_STATUSES = {int(code) for code in OPENAPI["paths"]["/predict"]["post"]["responses"]} - {503}


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,  # a shared 2-core machine: time is bounded by the example counts instead
        database=None,
        suppress_health_check=list(HealthCheck),
    )


class Client:
    """One keep-alive connection, reopened whenever the server closes it."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.sent = 0

    def post(self, body: bytes) -> tuple[int, bytes]:
        for attempt in range(2):
            try:
                self.conn.request("POST", "/predict", body=body, headers={"Content-Type": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self.conn.close()
                self.sent += 1
                return resp.status, data
            except (ConnectionError, http.client.RemoteDisconnected):  # an idle close raced our send
                self.conn.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    log_path = tmp_path_factory.mktemp("fuzz") / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODEL_")}
    env.update(
        HOST="127.0.0.1",
        PORT="0",  # the server binds what the kernel gives and logs it: no race with a test beside this one
        METRICS_PORT="0",
        MODEL_REQUEST_DEADLINE_SECONDS="5",  # a busy machine must not turn a fair request into a 408
    )
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen([sys.executable, str(EXAMPLE / "server.py")], env=env, stdout=log_file, stderr=log_file)
    try:
        deadline = time.monotonic() + 15
        port = 0
        while True:
            bound = re.search(r"listening on [\d.]+:(\d+) ", log_path.read_text())
            port = int(bound.group(1)) if bound else 0
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/health")
                if port and conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline and proc.poll() is None, log_path.read_text()
            time.sleep(0.05)
        client = Client(port)
        yield client
        log = log_path.read_text()
        assert "Traceback" not in log and "internal" not in log, log[-3000:]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def check(status: int, data: bytes) -> Any:
    """A documented status, never a 5xx, and a body that matches the published schema."""
    assert status < 500 and status in PREDICT_STATUSES, (status, data[:300])
    body = json.loads(data)
    jsonschema.validate(body, SCHEMAS["PredictResponse" if status == 200 else "Error"])
    return body


@fuzz(600)
@SCHEMA.include(path="/predict").parametrize()
def test_requests_generated_from_the_openapi_description(server: Client, case: schemathesis.Case) -> None:
    # Not-a-server-error, documented status codes and content types, bodies matching their schemas.
    case.call_and_validate(base_url=f"http://127.0.0.1:{server.port}", timeout=10)
    server.sent += 1


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
ANY_JSON = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
)


@fuzz(600)
@given(st.one_of(ANY_JSON, st.fixed_dictionaries({"instances": ANY_JSON})))
def test_arbitrary_json_including_nan_and_huge_numbers(server: Client, payload: Any) -> None:
    status, data = server.post(json.dumps(payload).encode())  # json.dumps writes NaN and Infinity

    check(status, data)
    assert status in (200, 422)


@fuzz(1000)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.integers(1, 20_000).map(lambda depth: b'{"instances": ' + b"[" * depth + b"]" * depth + b"}"),
        st.builds(
            lambda head, tail: head + tail, st.binary(max_size=5), st.sampled_from([b"\xff", b"\xc3(", b"\xed\xa0\x80"])
        ),
    )
)
def test_arbitrary_bytes_and_deep_nesting(server: Client, body: bytes) -> None:
    status, data = server.post(body)

    check(status, data)
    assert status in (200, 422)


TOKEN = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=126, exclude_characters=":"), min_size=1, max_size=12
)
HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=30)
METHODS = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "TRACE"]) | TOKEN
PATHS = st.sampled_from(["/predict", "/health", "/metrics", "/"]) | TOKEN.map(lambda t: "/" + t)
LENGTH_LIES = st.sampled_from(["-1", "+1", "1_0", " 1", "0x10", "1, 1", "", "١", "99999999999999999999999"])


@st.composite
def raw_requests(draw: st.DrawFn) -> bytes:
    body = draw(st.binary(min_size=1, max_size=200))  # a " 1" length then never waits for the deadline
    headers = draw(st.lists(st.tuples(TOKEN, HEADER_VALUE), max_size=4))
    framing = draw(st.sampled_from(["honest", "lie", "none", "two", "chunked"]))
    if framing == "honest":
        headers.append(("Content-Length", str(len(body))))
    elif framing == "lie":
        headers.append(("Content-Length", draw(LENGTH_LIES)))
    elif framing == "two":
        headers += [("Content-Length", str(len(body))), ("Content-Length", str(len(body) + 1))]
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
    headers.append(("Connection", "close"))
    head = f"{draw(METHODS)} {draw(PATHS)} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
    return head.encode("utf-8") + body  # UTF-8 on the wire: bytes a latin-1 reader splits oddly


@fuzz(1000)
@given(raw_requests())
def test_raw_http_with_lying_framing(server: Client, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        try:
            conn.sendall(data)
        except ConnectionError:  # answered and closed before the whole body went out
            pass
        answer = b""
        try:
            while chunk := conn.recv(65536):
                answer += chunk
        except ConnectionResetError:  # closed with our unread bytes: the answer was already in `answer`
            pass
    assert answer, data[:200]
    status_line = answer.split(b"\r\n", 1)[0]
    if status_line.startswith(b"HTTP/1."):
        status = int(status_line.split()[1])
        assert 200 <= status < 500, (data[:200], answer[:300])
    else:  # a request http.server treats as HTTP/0.9 gets its error page without a status line
        assert b"Error code: 4" in answer, (data[:200], answer[:300])
