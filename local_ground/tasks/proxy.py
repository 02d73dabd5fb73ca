"""An Application Load Balancer's data plane: a reverse proxy on a loopback port.

AWS behaviour reproduced: requests to the listener go round-robin to the *healthy* targets of the
target group its default action forwards to; with no healthy target the ALB answers
503 Service Temporarily Unavailable, and a target that cannot be reached gives 502 Bad Gateway.
Not reproduced: ALB "fails open" (routes to all targets) when every registered target is unhealthy.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from .targets import TargetGroups

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
REQUEST_TIMEOUT = 60.0  # the ALB idle timeout bounds a request; tests never come near it


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
        group = self.proxy.target_group()
        target = self.proxy.targets.pick(group) if group else None
        if target is None:
            self._answer(503, "Service Temporarily Unavailable")
            return
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["X-Forwarded-For"] = self.client_address[0]
            upstream = http.client.HTTPConnection("127.0.0.1", target.host_port, timeout=REQUEST_TIMEOUT)
            try:
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
            finally:
                upstream.close()
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
    """One ALB: `host` is what its DNSName says; `target_group()` is looked up per request, so a
    listener created after the load balancer (as in a template) is found."""

    def __init__(self, targets: TargetGroups, target_group: Callable[[], str | None]) -> None:
        self.targets = targets
        self.target_group = target_group
        handler = type("_BoundHandler", (_Handler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="alb-proxy", daemon=True
        )
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
