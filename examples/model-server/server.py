"""The example model server: an iris classifier over HTTP, standard library only.

The image's Python is Debian's python3-minimal (no numpy, no pip), so prediction is
plain arithmetic over the numbers `train.py` wrote to model.json.

Endpoints: GET /health, POST /predict (openapi.json describes both); GET /metrics on its own
port (METRICS_PORT), which the load balancer does not route. See README.md.
Settings come from the environment (see `Settings.from_env` and README.md).
No client input gets a 5xx: a bounded worker pool, a whole-request deadline, 4xx for every
malformed request (nesting, numbers, encoding, framing), escaped log lines.
On SIGTERM the server stops accepting connections, lets in-flight requests finish
(bounded by MODEL_DRAIN_SECONDS) and exits 0, as ECS expects before its SIGKILL.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import queue
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("model-server")

ARTIFACT_FORMAT = 1
KNOWN_PATHS = ("/health", "/predict", "/metrics")
IDLE_POLL_SECONDS = 0.1  # how often an idle keep-alive connection checks whether to give up its worker
# C0 and C1 controls and DEL, as \xNN: a request line must not move a terminal's cursor or title.
LOG_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
# Measurements beyond this are no flower's: refused before the arithmetic could overflow (openapi.json says so).
MAX_ABS_VALUE = 1e6
DISCARD_LIMIT = 8 * 1_048_576  # larger oversized bodies are left unread: the connection closes
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# --- settings -------------------------------------------------------------------------------


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    metrics_port: int = 9090  # not in the task's port mappings: the load balancer never routes it
    model_path: Path = Path(__file__).resolve().parent / "model.json"
    warmup_seconds: float = 0.0
    # The feature contract this environment's clients send, in order. Unset: accept the model's own.
    expected_features: tuple[str, ...] | None = None
    max_instances: int = 1000
    max_body_bytes: int = 1_048_576
    drain_seconds: float = 20.0
    keepalive_seconds: float = 75.0  # above the ALB's 60 s idle timeout, as AWS recommends for targets
    workers: int = 32  # connections served at once; more wait in the listen backlog, not in threads
    request_deadline_seconds: float = 10.0  # request line, headers and body must all arrive within it
    debug_delay_seconds: float = 0.0  # tests only: makes every /predict slow, to observe draining

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        expected = env.get("MODEL_EXPECTED_FEATURES", "").strip()
        return cls(
            host=env.get("HOST", cls.host),
            port=_number(env, "PORT", cls.port, int, low=0, high=65535),
            metrics_port=_number(env, "METRICS_PORT", cls.metrics_port, int, low=0, high=65535),
            model_path=Path(env.get("MODEL_PATH", str(cls.model_path))),
            warmup_seconds=_number(env, "MODEL_WARMUP_SECONDS", cls.warmup_seconds, float),
            expected_features=tuple(f.strip() for f in expected.split(",") if f.strip()) or None,
            max_instances=_number(env, "MODEL_MAX_INSTANCES", cls.max_instances, int, low=1),
            max_body_bytes=_number(env, "MODEL_MAX_BODY_BYTES", cls.max_body_bytes, int, low=1),
            drain_seconds=_number(env, "MODEL_DRAIN_SECONDS", cls.drain_seconds, float),
            keepalive_seconds=_number(env, "MODEL_KEEPALIVE_SECONDS", cls.keepalive_seconds, float, low=1),
            workers=_number(env, "MODEL_WORKERS", cls.workers, int, low=1, high=1024),
            request_deadline_seconds=_number(
                env, "MODEL_REQUEST_DEADLINE_SECONDS", cls.request_deadline_seconds, float, low=0.1
            ),
            debug_delay_seconds=_number(env, "MODEL_DEBUG_DELAY_SECONDS", cls.debug_delay_seconds, float),
        )


def _number(
    env: Mapping[str, str], name: str, default: Any, kind: type, *, low: float = 0, high: float = math.inf
) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a{'n integer' if kind is int else ' number'}") from None
    if not (low <= value <= high) or (kind is float and not math.isfinite(value)):
        raise SettingsError(f"{name}={raw!r} is out of range [{low}, {high}]")
    return value


# --- model ----------------------------------------------------------------------------------


class ModelError(ValueError):
    """The artifact is malformed, or does not fit this environment's settings.

    `public` is what /health may tell anyone who asks: no file paths or OS errors (those go to the log).
    """

    def __init__(self, message: str, public: str | None = None) -> None:
        super().__init__(message)
        self.public = public or message


@dataclass(frozen=True)
class Model:
    version: str
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[tuple[float, ...], ...]
    intercept: tuple[float, ...]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Model:
        try:
            if data["format"] != ARTIFACT_FORMAT:
                raise ModelError(f"artifact format {data['format']!r} is not {ARTIFACT_FORMAT}")
            pre, lin = data["preprocessing"], data["model"]
            if pre["kind"] != "standardize" or lin["kind"] != "multinomial_logistic_regression":
                raise ModelError(f"unsupported model kinds {pre['kind']!r} / {lin['kind']!r}")
            model = cls(
                version=str(data["version"]),
                feature_names=tuple(map(str, data["feature_names"])),
                class_names=tuple(map(str, data["class_names"])),
                mean=tuple(map(float, pre["mean"])),
                scale=tuple(map(float, pre["scale"])),
                coef=tuple(tuple(map(float, row)) for row in lin["coef"]),
                intercept=tuple(map(float, lin["intercept"])),
            )
        except (KeyError, TypeError) as exc:
            raise ModelError(f"artifact is missing or mistypes {exc}") from None
        n, k = len(model.feature_names), len(model.class_names)
        shapes_ok = (
            n > 0
            and k > 1
            and len(model.mean) == len(model.scale) == n
            and len(model.coef) == len(model.intercept) == k
            and all(len(row) == n for row in model.coef)
            and all(s != 0 for s in model.scale)
        )
        if not shapes_ok:
            raise ModelError(f"artifact shapes do not agree ({n} features, {k} classes)")
        return model

    @classmethod
    def load(cls, path: Path) -> Model:
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ModelError(
                f"cannot read {path}: {exc}", public="the model artifact cannot be read; see the server log"
            ) from None

    def check(self, settings: Settings) -> None:
        """Refuse a model that does not fit what this environment's clients send."""
        expected = settings.expected_features
        if expected is not None and expected != self.feature_names:
            raise ModelError(
                f"model {self.version} was trained on features {','.join(self.feature_names)} "
                f"but this environment's clients send {','.join(expected)} (MODEL_EXPECTED_FEATURES); "
                "refusing to serve predictions for the wrong columns"
            )

    def predict(self, rows: list[list[float]]) -> list[tuple[str, list[float]]]:
        """Label and class probabilities for each row: standardize, linear, softmax.

        Raises OutOfRange for a row whose finite values still overflow the arithmetic (1e308 / scale).
        """
        out = []
        for i, row in enumerate(rows):
            z = [(x - m) / s for x, m, s in zip(row, self.mean, self.scale, strict=False)]
            logits = [
                sum(c * v for c, v in zip(coefs, z, strict=False)) + b
                for coefs, b in zip(self.coef, self.intercept, strict=False)
            ]
            if not all(math.isfinite(v) for v in logits):
                raise OutOfRange(i)
            top = max(logits)
            exps = [math.exp(v - top) for v in logits]
            total = sum(exps)
            probs = [e / total for e in exps]
            out.append((self.class_names[probs.index(max(probs))], probs))
        return out


class OutOfRange(ValueError):
    """A row's values are finite but too large for the model's arithmetic."""

    def __init__(self, row: int) -> None:
        super().__init__(f"instances[{row}] is too large in magnitude for the model to score")
        self.row = row


class ModelSlot:
    """The model once loaded, or why it never will be; written once by the loader thread."""

    def __init__(self) -> None:
        self.model: Model | None = None
        self.error: str | None = None

    def load(self, settings: Settings) -> None:
        if settings.warmup_seconds:
            time.sleep(settings.warmup_seconds)  # stands in for a large model's load time
        try:
            model = Model.load(settings.model_path)
            model.check(settings)
        except ModelError as exc:
            self.error = exc.public
            log.error("model not loaded, /health stays 503: %s", exc)
            return
        self.model = model
        log.info(
            "model %s loaded from %s (features %s)",
            model.version,
            settings.model_path,
            ",".join(model.feature_names),
        )


# --- metrics --------------------------------------------------------------------------------


class Metrics:
    """Prometheus text-format counters, kept by hand: the image has no prometheus_client."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple[str, str, int], int] = {}
        self._buckets: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._instances = 0
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)

    def started(self) -> None:
        with self._lock:
            self._in_flight += 1

    def finished(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._idle.notify_all()

    def record(self, method: str, path: str, status: int, seconds: float, instances: int = 0) -> None:
        path = path if path in KNOWN_PATHS else "other"  # bound label cardinality
        with self._lock:
            key = (method, path, status)
            self._requests[key] = self._requests.get(key, 0) + 1
            buckets = self._buckets.setdefault(path, [0] * len(LATENCY_BUCKETS))
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self._sums[path] = self._sums.get(path, 0.0) + seconds
            self._counts[path] = self._counts.get(path, 0) + 1
            self._instances += instances

    def wait_idle(self, timeout: float) -> int:
        """Block until no request is in flight or the timeout passes; return how many still are."""
        with self._lock:
            self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)
            return self._in_flight

    def render(self, slot: ModelSlot) -> str:
        model = slot.model
        lines = [
            "# HELP model_server_requests_total HTTP requests answered, by method, path and status.",
            "# TYPE model_server_requests_total counter",
        ]
        with self._lock:
            for (method, path, status), n in sorted(self._requests.items()):
                lines.append(f'model_server_requests_total{{method="{method}",path="{path}",status="{status}"}} {n}')
            lines += [
                "# HELP model_server_request_duration_seconds Time to answer a request, by path.",
                "# TYPE model_server_request_duration_seconds histogram",
            ]
            for path in sorted(self._counts):
                for bound, n in zip(LATENCY_BUCKETS, self._buckets[path], strict=False):
                    lines.append(f'model_server_request_duration_seconds_bucket{{path="{path}",le="{bound}"}} {n}')
                lines.append(
                    f'model_server_request_duration_seconds_bucket{{path="{path}",le="+Inf"}} {self._counts[path]}'
                )
                lines.append(f'model_server_request_duration_seconds_sum{{path="{path}"}} {self._sums[path]:.6f}')
                lines.append(f'model_server_request_duration_seconds_count{{path="{path}"}} {self._counts[path]}')
            in_flight, instances = self._in_flight, self._instances
        lines += [
            "# HELP model_server_predicted_instances_total Rows predicted.",
            "# TYPE model_server_predicted_instances_total counter",
            f"model_server_predicted_instances_total {instances}",
            "# HELP model_server_in_flight_requests Requests being answered now.",
            "# TYPE model_server_in_flight_requests gauge",
            f"model_server_in_flight_requests {in_flight}",
            "# HELP model_server_model_loaded 1 once the model is loaded and serving.",
            "# TYPE model_server_model_loaded gauge",
            f"model_server_model_loaded {1 if model else 0}",
        ]
        if model:
            lines += [
                "# HELP model_server_model_info The loaded model's version.",
                "# TYPE model_server_model_info gauge",
                f'model_server_model_info{{version="{model.version}"}} 1',
            ]
        return "\n".join(lines) + "\n"


# --- HTTP -----------------------------------------------------------------------------------


class RequestError(Exception):
    """A request we answer with a JSON error: status, a stable code, and what is wrong."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})


def parse_instances(body: bytes, model: Model, max_instances: int) -> list[list[float]]:
    """Validate a /predict body; every problem names the field and what was expected."""
    unprocessable = HTTPStatus.UNPROCESSABLE_ENTITY

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:  # ValueError includes ints over 4300 digits
        raise RequestError(unprocessable, "invalid_json", f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise RequestError(unprocessable, "invalid_json", "body is not valid JSON: nested too deeply") from None
    if not isinstance(payload, dict) or "instances" not in payload:
        raise RequestError(unprocessable, "missing_instances", 'body must be a JSON object with an "instances" key')
    rows = payload["instances"]
    if not isinstance(rows, list) or not rows:
        raise RequestError(unprocessable, "invalid_instances", '"instances" must be a non-empty list of rows')
    if len(rows) > max_instances:
        raise RequestError(
            unprocessable,
            "too_many_instances",
            f'"instances" has {len(rows)} rows; the limit is {max_instances}',
        )
    width = len(model.feature_names)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != width:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise RequestError(
                unprocessable,
                "wrong_row_length",
                f"instances[{i}] has {got}; expected {width} numbers ({', '.join(model.feature_names)})",
            )
        for j, value in enumerate(row):
            if not _finite_number(value):
                raise RequestError(
                    unprocessable,
                    "not_a_number",
                    f"instances[{i}][{j}] ({model.feature_names[j]}) is {_describe(value)}; expected a finite number",
                )
            if abs(value) > MAX_ABS_VALUE:
                raise RequestError(
                    unprocessable,
                    "out_of_range",
                    f"instances[{i}][{j}] ({model.feature_names[j]}) is {_describe(value)}; "
                    f"expected a number between -{MAX_ABS_VALUE:g} and {MAX_ABS_VALUE:g}",
                )
    return [[float(v) for v in row] for row in rows]


def _describe(value: Any) -> str:
    # A nested list or object is named, not dumped: dumping a deep one could recurse past the limit.
    if isinstance(value, (list, dict)):
        return "a list" if isinstance(value, list) else "an object"
    return json.dumps(value)[:40]


def _finite_number(value: Any) -> bool:
    # bool is an int subclass, but true/false are not measurements; 1e999 parses to inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str
    instances: int = 0  # rows predicted, for the metrics
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, status: int, payload: Mapping[str, Any], instances: int = 0, headers: Mapping[str, str] | None = None
    ) -> Reply:
        # allow_nan=False: a NaN that slipped through is a bug to see, never invalid JSON sent to a client
        body = json.dumps(payload, allow_nan=False).encode() + b"\n"
        return cls(status, body, "application/json", instances, dict(headers or {}))


class DeadlineReader(io.RawIOBase):
    """The connection as a raw stream whose every read stops at the request's deadline.

    A per-read timeout lets a client that trickles a byte every few seconds hold a worker forever
    (slowloris); a deadline bounds the whole request line, headers and body however they arrive.
    """

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self.deadline: float | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the request deadline passed")
            self._sock.settimeout(left)
        try:
            return self._sock.recv_into(buffer)
        except BlockingIOError:  # only while peeking without blocking
            return None


# Which handler answers (method, path), per listening port.
SERVICE_ROUTES = {("GET", "/health"): "_health", ("POST", "/predict"): "_predict"}
METRICS_ROUTES = {("GET", "/metrics"): "_metrics"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load balancer uses with targets
    server: ModelServer

    def setup(self) -> None:
        super().setup()
        # Headers and body go out as two writes; without this, Nagle holds the body back until the
        # client's delayed ACK (~40 ms on Linux) on every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rfile.close()  # the socket's own reader: ours replaces it
        self.reader = DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self.reader)

    def handle(self) -> None:
        settings = self.server.settings
        self.close_connection = False
        first = True
        while not self.close_connection:
            if not first and not self._next_request_arrives():
                return
            first = False
            self.reader.deadline = time.monotonic() + settings.request_deadline_seconds
            self.handle_one_request()

    def _next_request_arrives(self) -> bool:
        """Wait on an idle keep-alive connection: True once a request starts arriving; False to close
        it (idle past the keep-alive timeout, draining, or another connection waits for a worker)."""
        server, sock = self.server, self.connection
        self.reader.deadline = None
        sock.setblocking(False)
        try:
            if self.rfile.peek(1):  # a pipelined request is already buffered
                return True
        finally:
            sock.settimeout(server.settings.request_deadline_seconds)
        poller = select.poll()  # not select.select: that fails on descriptors above 1023
        poller.register(sock, select.POLLIN)
        give_up = time.monotonic() + server.settings.keepalive_seconds
        while time.monotonic() < give_up:
            if server.draining.is_set() or server.saturated.is_set():
                return False
            if poller.poll(IDLE_POLL_SECONDS * 1000):  # readable, closed or reset: the next read says which
                return True
        return False

    def __getattr__(self, name: str) -> Any:
        # Every method reaches the router (404/405), not http.server's 501 "Unsupported method".
        if name.startswith("do_") and name[3:].isalpha():
            return lambda: self._route(name[3:])
        raise AttributeError(name)

    def _route(self, method: str) -> None:
        path = urlsplit(self.path).path
        start = time.perf_counter()
        metrics = self.server.metrics
        metrics.started()
        try:
            reply = self._answer(method, path)
            # Counted before the answer goes out, so a client that reads /metrics next sees it;
            # still in flight until written, so draining never exits under an unsent answer.
            metrics.record(method, path, reply.status, time.perf_counter() - start, reply.instances)
            self._send(reply)
        finally:
            metrics.finished()

    def _answer(self, method: str, path: str) -> Reply:
        routes = self.server.routes
        try:
            name = routes.get((method, path))
            if name is None:
                if method != "POST" and ("Content-Length" in self.headers or "Transfer-Encoding" in self.headers):
                    self.close_connection = True  # an unread body would be parsed as the next request
                allowed = [m for (m, p) in routes if p == path]
                if allowed:
                    raise RequestError(
                        HTTPStatus.METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        f"{path} accepts {', '.join(allowed)}",
                        {"Allow": ", ".join(allowed)},
                    )
                paths = ", ".join(sorted({p for (_, p) in routes}))
                raise RequestError(HTTPStatus.NOT_FOUND, "not_found", f"no such path {path}; try {paths}")
            return getattr(self, name)()  # type: ignore[no-any-return]
        except RequestError as exc:
            return Reply.json(exc.status, {"error": {"code": exc.code, "message": exc.message}}, headers=exc.headers)
        except Exception:  # a bug: answer 500 rather than drop the connection
            log.exception("error answering %s %s", method, escape(path))
            return Reply.json(500, {"error": {"code": "internal", "message": "internal error"}})

    def _health(self) -> Reply:
        slot = self.server.slot
        if self.server.draining.is_set():
            return Reply.json(503, {"status": "draining"})
        if slot.model is not None:
            return Reply.json(200, {"status": "ok", "version": slot.model.version})
        if slot.error is not None:
            return Reply.json(503, {"status": "failed", "reason": slot.error})
        return Reply.json(503, {"status": "loading"})

    def _metrics(self) -> Reply:
        text = self.server.metrics.render(self.server.slot).encode()
        return Reply(200, text, "text/plain; version=0.0.4; charset=utf-8")

    def _predict(self) -> Reply:
        settings = self.server.settings
        body = self._read_body(settings.max_body_bytes)  # read before any early answer keeps keep-alive in sync
        model = self.server.slot.model
        if model is None:
            raise RequestError(
                HTTPStatus.SERVICE_UNAVAILABLE, "model_not_ready", "the model is not loaded; see /health"
            )
        rows = parse_instances(body, model, settings.max_instances)
        if settings.debug_delay_seconds:
            time.sleep(settings.debug_delay_seconds)
        try:
            results = model.predict(rows)
        except OutOfRange as exc:
            raise RequestError(HTTPStatus.UNPROCESSABLE_ENTITY, "out_of_range", str(exc)) from None
        payload = {
            "predictions": [label for label, _ in results],
            "probabilities": [[round(p, 6) for p in probs] for _, probs in results],
            "version": model.version,
        }
        return Reply.json(200, payload, instances=len(rows))

    def _read_body(self, limit: int) -> bytes:
        if "Transfer-Encoding" in self.headers:
            self.close_connection = True  # chunked (or smuggled beside a Content-Length): we cannot frame it
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "length_required", "send a Content-Length, not chunks")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self.close_connection = True  # unframed: we cannot find the next request
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "length_required", "send a Content-Length header")
        raw = values[0].strip()
        if len(values) > 1 or not (raw.isascii() and raw.isdigit()):  # int() would take "+1", "1_0", " 1"
            self.close_connection = True
            shown = ", ".join(repr(v) for v in values)[:80]
            raise RequestError(HTTPStatus.BAD_REQUEST, "bad_content_length", f"Content-Length {shown} is not a size")
        length = int(raw)
        if length > limit:
            self.close_connection = True
            if length <= DISCARD_LIMIT:
                # Read it away so closing does not reset the connection before the client reads our answer.
                try:
                    for offset in range(0, length, 65536):
                        if not self.rfile.read(min(65536, length - offset)):
                            break
                except TimeoutError:
                    pass
            raise RequestError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                "body_too_large",
                f"body is {length} bytes; the limit is {limit}",
            )
        body = bytearray()
        try:
            while len(body) < length:  # read1 keeps what arrived when a later read times out
                chunk = self.rfile.read1(length - len(body))
                if not chunk:
                    break
                body += chunk
        except (TimeoutError, ConnectionError):
            pass
        if len(body) != length:  # the client stopped sending: the connection is out of sync
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_TIMEOUT, "incomplete_body", f"got {len(body)} of {length} bytes")
        return bytes(body)

    def _send(self, reply: Reply) -> None:
        # Reading is over: the deadline stops, and a client that does not read gets as long to take the answer.
        self.reader.deadline = None
        self.connection.settimeout(self.server.settings.request_deadline_seconds)
        if self.server.draining.is_set():
            self.close_connection = True  # clients reconnect to a task that is staying
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server answers some malformed requests with a 5xx (505 for "HTTP/2.0"); they are the
        # client's fault, and a target 5xx counts toward the rollback alarm.
        if code >= 500:
            code, explain = HTTPStatus.BAD_REQUEST, f"{message or ''} (HTTP {code})"
        super().send_error(code, message, explain)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), escape(format % args))


def escape(text: str) -> str:
    """Control characters as \\xNN: what a client sent must not drive the terminal that shows the log."""
    return text.translate(LOG_ESCAPES)


class ModelServer(HTTPServer):
    """An HTTP server with a fixed pool of worker threads, one connection each.

    When every worker is busy, the accept loop waits (further connections queue in the kernel's
    listen backlog, not in threads) and idle keep-alive connections give their workers up.
    """

    # The default backlog of 5 drops connections when a load balancer opens many at once
    # (benchmarks/model_server.py measured 1-2 s tails from SYN retries).
    request_queue_size = 128

    def __init__(
        self,
        settings: Settings,
        port: int,
        routes: Mapping[tuple[str, str], str],
        workers: int,
        shared: ModelServer | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.slot = shared.slot if shared else ModelSlot()
        self.metrics = shared.metrics if shared else Metrics()
        self.draining = shared.draining if shared else threading.Event()
        self.saturated = threading.Event()  # the accept loop waits for a free worker
        self._free = threading.Semaphore(workers)
        self._connections: queue.SimpleQueue[tuple[socket.socket, Any]] = queue.SimpleQueue()
        super().__init__((settings.host, port), Handler)
        for i in range(workers):  # daemon: a request still running past the drain timeout cannot hold up exit
            threading.Thread(target=self._work, name=f"worker-{port}-{i}", daemon=True).start()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._free.acquire(blocking=False):
            self.saturated.set()
            while not self._free.acquire(timeout=IDLE_POLL_SECONDS):
                if self.draining.is_set():
                    self.shutdown_request(request)
                    return
            self.saturated.clear()
        self._connections.put((request, client_address))

    def _work(self) -> None:
        while True:
            request, client_address = self._connections.get()
            try:
                self.finish_request(request, client_address)
            except Exception:  # noqa: BLE001 - as socketserver does: one connection's error never ends a worker
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)
                self._free.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that resets or vanishes mid-answer: one line, not a traceback on stderr.
        exc = sys.exc_info()[1]
        log.warning("connection from %s ended: %s", client_address[0], escape(repr(exc)))


# --- process --------------------------------------------------------------------------------


def serve(settings: Settings, stop: threading.Event) -> int:
    """Serve until `stop` is set, then drain; the return value is the exit code."""
    server = ModelServer(settings, settings.port, SERVICE_ROUTES, settings.workers)
    host, port = server.server_address[:2]
    log.info("listening on %s:%s (%d workers)", host, port, settings.workers)
    servers = [server]
    try:
        servers.append(ModelServer(settings, settings.metrics_port, METRICS_ROUTES, 2, shared=server))
        log.info("metrics on %s:%s/metrics", host, servers[1].server_address[1])
    except OSError as exc:  # e.g. two tasks on one host network: serving matters more than metrics
        log.warning("no /metrics: cannot listen on %s:%s: %s", host, settings.metrics_port, exc)
    for each in servers:
        threading.Thread(target=each.serve_forever, kwargs={"poll_interval": 0.1}, name="accept", daemon=True).start()
    threading.Thread(target=server.slot.load, args=(settings,), name="model-loader", daemon=True).start()

    while not stop.wait(1.0):  # a timeout keeps the main thread responsive to signals
        pass
    log.info("stopping: no new connections, draining in-flight requests for up to %.1fs", settings.drain_seconds)
    server.draining.set()
    for each in servers:
        each.shutdown()  # the accept loop ends...
        each.server_close()  # ...and the listening socket closes: new connections are refused
    left = server.metrics.wait_idle(settings.drain_seconds)
    if left:
        log.warning("drain timeout: %d requests still in flight are cut off", left)
    else:
        log.info("drained; exiting")
    return 0


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as exc:
        log.error("bad setting: %s", exc)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda signum, _frame: stop.set())
    try:
        return serve(settings, stop)
    except OSError as exc:  # e.g. the port is taken
        log.error("cannot listen on %s:%s: %s", settings.host, settings.port, exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
