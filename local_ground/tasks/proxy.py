"""An Application Load Balancer's data plane: a reverse proxy on a loopback port.

AWS behaviour reproduced: the listener's rules and default action decide (routing.py: weighted
forwards, redirects, fixed responses); a forwarded request goes round-robin to the *healthy*
targets of the chosen target group; with no healthy target the ALB answers 503 Service Temporarily
Unavailable, a target that cannot be reached gives 502 Bad Gateway, and one that does not answer
within the idle timeout 504 Gateway Time-out ("Troubleshoot your Application Load Balancers",
HTTP 502/503/504); invalid header fields are dropped when the attribute says so.
When every registered target is unhealthy the ALB fails open and routes to all of them (targets.py).
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from local_ground.hop_by_hop import HOP_BY_HOP

from .routing import Action, Routing, kept_headers
from .targets import TargetGroups

_HOP_BY_HOP = HOP_BY_HOP | {"host"}
# The scaled idle timeout is a bound on a loaded machine too: never below this (seconds).
MIN_IDLE_TIMEOUT = 1.0


class _Handler(BaseHTTPRequestHandler):
    proxy: ClassVar[LoadBalancerProxy]
    protocol_version = "HTTP/1.0"  # one request per connection: each picks its own target

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._forward()

    do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_GET

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        routing = self.proxy.routing()
        action = routing.action_for(self.command, self.headers.get("Host", ""), self.path)
        if action.kind != "forward":
            self._act(action)
            return
        group = action.pick_group()
        target = self.proxy.targets.pick(group) if group else None
        if target is None:
            self._answer(503, "Service Temporarily Unavailable")
            return
        try:
            incoming = kept_headers(list(self.headers.items()), routing)
            headers = {k: v for k, v in incoming if k.lower() not in _HOP_BY_HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
            timeout = max(MIN_IDLE_TIMEOUT, routing.idle_timeout)
            upstream = http.client.HTTPConnection("127.0.0.1", target.host_port, timeout=timeout)
            started = time.monotonic()
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            finally:
                upstream.close()
            if group is not None:
                self.proxy.observe(group, response.status, time.monotonic() - started)
        except TimeoutError:
            self._answer(504, "Gateway Time-out")
            return
        except OSError:
            self._answer(502, "Bad Gateway")
            return
        finally:
            target.end_request()
        self.send_response(response.status, response.reason)
        for key, value in kept:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _act(self, action: Action) -> None:
        """A redirect or fixed response, answered by the load balancer itself."""
        if action.kind == "redirect":
            host = self.headers.get("Host", "")
            name, _, port = host.partition(":")
            path, _, query = self.path.partition("?")
            location = (
                action.location.replace("#{protocol}", "http")
                .replace("#{host}", name)
                .replace("#{port}", port or "80")
                .replace("/#{path}", path)
                .replace("#{query}", query)
            )
            self.send_response(action.status)
            self.send_header("Server", "awselb/2.0")
            self.send_header("Location", location.rstrip("?"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        payload = action.body.encode()
        self.send_response(action.status)
        self.send_header("Server", "awselb/2.0")
        self.send_header("Content-Type", action.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _answer(self, status: int, reason: str) -> None:
        payload = f"<html><body><h1>{status} {reason}</h1></body></html>\n".encode()
        self.send_response(status, reason)
        self.send_header("Server", "awselb/2.0")
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


class LoadBalancerProxy:
    """One ALB: `host` is what its DNSName says; `routing()` is looked up per request, so a
    listener created after the load balancer (as in a template) is found."""

    def __init__(
        self,
        targets: TargetGroups,
        routing: Callable[[], Routing],
        observe: Callable[[str, int, float], None] = lambda _group, _status, _seconds: None,
        *,
        address: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.targets = targets
        self.routing = routing
        self.observe = observe  # (target group, target's status, seconds): the ALB's CloudWatch metrics
        handler = type("_BoundHandler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer((address, port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="alb-proxy", daemon=True
        )
        self._thread.start()

    @property
    def host(self) -> str:
        address, port = self._server.server_address[:2]
        return f"{address}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
