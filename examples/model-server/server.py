"""The example model server: an iris classifier over HTTP, standard library only.

The image's Python is Debian's python3-minimal (no numpy, no pip), so prediction is
plain arithmetic over the numbers `train.py` wrote to model.json.

Endpoints: GET /health, POST /predict, GET /metrics (see README.md).
Settings come from the environment (see `Settings.from_env` and README.md).
On SIGTERM the server stops accepting connections, lets in-flight requests finish
(bounded by MODEL_DRAIN_SECONDS) and exits 0, as ECS expects before its SIGKILL.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("model-server")

ARTIFACT_FORMAT = 1
KNOWN_PATHS = ("/health", "/predict", "/metrics")
DISCARD_LIMIT = 8 * 1_048_576  # larger oversized bodies are left unread: the connection closes
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


# --- settings -------------------------------------------------------------------------------


class SettingsError(ValueError):
    """An environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class Settings:
    host: str = "0.0.0.0"
    port: int = 8080
    model_path: Path = Path(__file__).resolve().parent / "model.json"
    warmup_seconds: float = 0.0
    # The feature contract this environment's clients send, in order. Unset: accept the model's own.
    expected_features: tuple[str, ...] | None = None
    max_instances: int = 1000
    max_body_bytes: int = 1_048_576
    drain_seconds: float = 20.0
    keepalive_seconds: float = 75.0  # above the ALB's 60 s idle timeout, as AWS recommends for targets
    debug_delay_seconds: float = 0.0  # tests only: makes every /predict slow, to observe draining

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        expected = env.get("MODEL_EXPECTED_FEATURES", "").strip()
        return cls(
            host=env.get("HOST", cls.host),
            port=_number(env, "PORT", cls.port, int, low=0, high=65535),
            model_path=Path(env.get("MODEL_PATH", str(cls.model_path))),
            warmup_seconds=_number(env, "MODEL_WARMUP_SECONDS", cls.warmup_seconds, float),
            expected_features=tuple(f.strip() for f in expected.split(",") if f.strip()) or None,
            max_instances=_number(env, "MODEL_MAX_INSTANCES", cls.max_instances, int, low=1),
            max_body_bytes=_number(env, "MODEL_MAX_BODY_BYTES", cls.max_body_bytes, int, low=1),
            drain_seconds=_number(env, "MODEL_DRAIN_SECONDS", cls.drain_seconds, float),
            keepalive_seconds=_number(env, "MODEL_KEEPALIVE_SECONDS", cls.keepalive_seconds, float, low=1),
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
    """The artifact is malformed, or does not fit this environment's settings."""


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
            raise ModelError(f"cannot read {path}: {exc}") from None

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
        """Label and class probabilities for each row: standardize, linear, softmax."""
        out = []
        for row in rows:
            z = [(x - m) / s for x, m, s in zip(row, self.mean, self.scale, strict=False)]
            logits = [
                sum(c * v for c, v in zip(coefs, z, strict=False)) + b
                for coefs, b in zip(self.coef, self.intercept, strict=False)
            ]
            top = max(logits)
            exps = [math.exp(v - top) for v in logits]
            total = sum(exps)
            probs = [e / total for e in exps]
            out.append((self.class_names[probs.index(max(probs))], probs))
        return out


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
            self.error = str(exc)
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

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def parse_instances(body: bytes, model: Model, max_instances: int) -> list[list[float]]:
    """Validate a /predict body; every problem names the field and what was expected."""
    unprocessable = HTTPStatus.UNPROCESSABLE_ENTITY

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        payload = json.loads(body.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise RequestError(unprocessable, "invalid_json", f"body is not valid JSON: {exc}") from None
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
                    f"instances[{i}][{j}] ({model.feature_names[j]}) is {json.dumps(value)[:40]}; expected a finite number",
                )
    return [[float(v) for v in row] for row in rows]


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

    @classmethod
    def json(cls, status: int, payload: Mapping[str, Any], instances: int = 0) -> Reply:
        return cls(status, json.dumps(payload).encode() + b"\n", "application/json", instances)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the load balancer uses with targets
    server: ModelServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.settings.keepalive_seconds)  # idle keep-alive limit
        # Headers and body go out as two writes; without this, Nagle holds the body back until the
        # client's delayed ACK (~40 ms on Linux) on every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

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
            self._send(reply.status, reply.body, reply.content_type)
        finally:
            metrics.finished()

    def _answer(self, method: str, path: str) -> Reply:
        routes = {
            ("GET", "/health"): self._health,
            ("GET", "/metrics"): self._metrics,
            ("POST", "/predict"): self._predict,
        }
        try:
            handler = routes.get((method, path))
            if handler is None:
                allowed = [m for (m, p) in routes if p == path]
                if allowed:
                    raise RequestError(
                        HTTPStatus.METHOD_NOT_ALLOWED,
                        "method_not_allowed",
                        f"{path} accepts {', '.join(allowed)}",
                    )
                raise RequestError(
                    HTTPStatus.NOT_FOUND, "not_found", f"no such path {path}; try /health, /predict, /metrics"
                )
            return handler()
        except RequestError as exc:
            return Reply.json(exc.status, {"error": {"code": exc.code, "message": exc.message}})
        except Exception:  # a bug: answer 500 rather than drop the connection
            log.exception("error answering %s %s", method, path)
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
        results = model.predict(rows)
        payload = {
            "predictions": [label for label, _ in results],
            "probabilities": [[round(p, 6) for p in probs] for _, probs in results],
            "version": model.version,
        }
        return Reply.json(200, payload, instances=len(rows))

    def _read_body(self, limit: int) -> bytes:
        raw = self.headers.get("Content-Length")
        if raw is None:
            self.close_connection = True  # chunked or unframed: we cannot find the next request
            raise RequestError(HTTPStatus.LENGTH_REQUIRED, "length_required", "send a Content-Length header")
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise RequestError(
                HTTPStatus.BAD_REQUEST, "bad_content_length", f"Content-Length {raw!r} is not a size"
            ) from None
        if length > limit:
            self.close_connection = True
            if length <= DISCARD_LIMIT:
                # Read it away so closing does not reset the connection before the client reads our answer.
                for offset in range(0, length, 65536):
                    self.rfile.read(min(65536, length - offset))
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
        except TimeoutError:
            pass
        if len(body) != length:  # the client stopped sending: the connection is out of sync
            self.close_connection = True
            raise RequestError(HTTPStatus.REQUEST_TIMEOUT, "incomplete_body", f"got {len(body)} of {length} bytes")
        return bytes(body)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        if self.server.draining.is_set():
            self.close_connection = True  # clients reconnect to a task that is staying
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        log.info("%s %s", self.address_string(), format % args)


class ModelServer(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must not hold up exit; draining is explicit
    # The default backlog of 5 drops connections when a load balancer opens many at once
    # (benchmarks/model_server.py measured 1-2 s tails from SYN retries).
    request_queue_size = 128

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slot = ModelSlot()
        self.metrics = Metrics()
        self.draining = threading.Event()
        super().__init__((settings.host, settings.port), Handler)


# --- process --------------------------------------------------------------------------------


def serve(settings: Settings, stop: threading.Event) -> int:
    """Serve until `stop` is set, then drain; the return value is the exit code."""
    server = ModelServer(settings)
    host, port = server.server_address[:2]
    log.info("listening on %s:%s", host, port)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="accept", daemon=True).start()
    threading.Thread(target=server.slot.load, args=(settings,), name="model-loader", daemon=True).start()

    while not stop.wait(1.0):  # a timeout keeps the main thread responsive to signals
        pass
    log.info("stopping: no new connections, draining in-flight requests for up to %.1fs", settings.drain_seconds)
    server.draining.set()
    server.shutdown()  # the accept loop ends...
    server.server_close()  # ...and the listening socket closes: new connections are refused
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
