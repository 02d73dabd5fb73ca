"""throttling_injection: the next N calls of an operation answer as AWS does when throttled.

The error is produced where HTTP requests enter moto (``DomainDispatcherApplication``, the
WSGI app ThreadedMotoServer serves), so clients see it over the wire: HTTP 400 with the
service protocol's error body and code (``Throttling`` for query services such as
CloudFormation, ``ThrottlingException`` for JSON services such as ECS,
``RequestLimitExceeded`` for EC2), which botocore's retry handler treats as throttling.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

import botocore.session
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from ._base import Extension, Patch

_lock = threading.Lock()
_pending: dict[tuple[str, str], int] = {}  # (signing name, operation) -> calls left to throttle
_protocols: dict[str, tuple[str, str]] = {}  # signing name -> (protocol, xml namespace)
_session = botocore.session.get_session()


def _model(service: str) -> Any:
    return _session.get_service_model(service)


def inject_throttling(service: str, operation: str, count: int = 1) -> None:
    """Throttle the next ``count`` calls of ``operation`` (e.g. "DescribeStacks") of
    ``service`` (a boto3 client name, e.g. "cloudformation")."""
    model = _model(service)
    if model.protocol not in ("query", "json", "ec2"):
        raise ValueError(f"throttling injection supports query/json/ec2 services, not {model.protocol}")
    if operation not in model.operation_names:
        raise ValueError(f"{service} has no operation {operation}")
    key = (model.signing_name, operation)
    with _lock:
        _pending[key] = _pending.get(key, 0) + count
        _protocols[model.signing_name] = (model.protocol, model.metadata.get("xmlNamespace", ""))


def clear_throttling() -> None:
    with _lock:
        _pending.clear()


def _signing_name(environ: dict[str, Any]) -> str | None:
    # Authorization: AWS4-HMAC-SHA256 Credential=KEY/20240101/us-east-1/cloudformation/aws4_request, ...
    try:
        return environ["HTTP_AUTHORIZATION"].split("Credential=")[1].split(",")[0].split("/")[3]
    except (KeyError, IndexError):
        return None


def _operation(environ: dict[str, Any]) -> str | None:
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:  # JSON protocol: "AmazonEC2ContainerServiceV20141113.DescribeServices"
        return target.rsplit(".", 1)[-1]
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    if action:
        return action[0]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)  # leave the body for moto
    action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return action[0] if action else None


def _take(environ: dict[str, Any]) -> tuple[str, str] | None:
    """If this request is one to throttle, use up one injection and say which."""
    if not _pending:
        return None
    name = _signing_name(environ)
    if name is None or not any(key[0] == name for key in _pending):
        return None
    operation = _operation(environ)
    key = (name, operation or "")
    with _lock:
        if _pending.get(key, 0) <= 0:
            return None
        _pending[key] -= 1
        if not _pending[key]:
            del _pending[key]
    return key


def throttled_response(signing_name: str) -> tuple[str, list[tuple[str, str]], bytes]:
    protocol, namespace = _protocols.get(signing_name, ("json", ""))
    request_id = "00000000-0000-0000-0000-000000000000"
    if protocol == "json":
        body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", request_id)]
    elif protocol == "ec2":
        body = (
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
            f"</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        body = (
            f'<ErrorResponse xmlns="{namespace}"><Error><Type>Sender</Type><Code>Throttling</Code>'
            f"<Message>Rate exceeded</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml"), ("x-amzn-RequestId", request_id)]
    headers.append(("Content-Length", str(len(body))))
    return "400 Bad Request", headers, body


class ThrottlingInjection(Extension):
    name = "throttling_injection"

    def patches(self) -> Iterable[Patch]:
        clear_throttling()  # injections made while it was not installed never happened
        original: Callable[..., Any] = DomainDispatcherApplication.__call__

        def __call__(app: DomainDispatcherApplication, environ: dict[str, Any], start_response: Any) -> Any:
            hit = _take(environ)
            if hit is None:
                return original(app, environ, start_response)
            status, headers, body = throttled_response(hit[0])
            start_response(status, headers)
            return [body]

        yield DomainDispatcherApplication, "__call__", __call__

    def reset(self) -> None:
        clear_throttling()
