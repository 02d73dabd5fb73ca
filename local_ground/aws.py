"""A local AWS: moto's HTTP server on a free loopback port, plus our moto extensions.

The pipeline reaches it only through ordinary boto3 configuration (``environ()``); no
pipeline code path knows it is local. Used by the CLI's local mode and by test fixtures::

    with LocalAWS() as aws:
        os.environ.update(aws.environ())
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, Self

from moto.moto_api import _internal as moto_api
from moto.server import ThreadedMotoServer

from .moto_extensions import Extension, all_extensions, complete_deployment, fail_deployment, inject_throttling
from .moto_extensions.deployments import Deployment
from .moto_extensions.timescale import set_time_scale

ACCESS_KEY = "testing"


def _stop_quickly(server: ThreadedMotoServer) -> None:
    """Stop without waiting out serve_forever's 0.5 s poll: poke the socket until it notices."""
    address = server.get_host_and_port()
    stopper = threading.Thread(target=server.stop, name="local-aws-stop")
    stopper.start()
    while stopper.is_alive():
        try:
            socket.create_connection(address, timeout=0.1).close()
        except OSError:
            pass
        stopper.join(0.005)
    inner = server._server  # ThreadedMotoServer.stop() shuts down but leaves the socket open
    if inner is not None:
        inner.server_close()


def _join_new_threads(threads_before: set[threading.Thread]) -> None:
    """Request threads are daemons that server_close() does not wait for; the last ones (often our
    pokes) finish at once, so wait for them to leave no thread behind."""
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and thread not in threads_before:
            thread.join(timeout=1)


class LocalAWS:
    """Start on enter, stop on exit: extensions removed, moto state reset, no thread or port left."""

    def __init__(
        self,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        extensions: Iterable[Extension] | None = None,
        time_scale: float = 1.0,
    ) -> None:
        if account_id != "123456789012":
            # moto's server answers for the account of the credentials; "testing" keys map to
            # its default account, and other accounts need moto's account-id header support.
            raise ValueError("LocalAWS serves moto's default account 123456789012 only")
        self.region = region
        self.account_id = account_id
        self.time_scale = time_scale  # every AWS duration lasts this factor times as long here
        self.extensions = list(all_extensions() if extensions is None else extensions)
        self._server: ThreadedMotoServer | None = None
        self._installed: list[Extension] = []
        self._threads_before: set[threading.Thread] = set()

    @property
    def endpoint_url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalAWS is not running")
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def environ(self) -> dict[str, str]:
        """What boto3 needs to find this AWS, as environment variables."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": ACCESS_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    def client(self, service: str) -> Any:
        """A boto3 client of `service` on this AWS, with its test credentials."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=ACCESS_KEY,
        )

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("LocalAWS is already running")
        self._threads_before = set(threading.enumerate())
        # moto's backends are process-wide: start from an empty account, not from what a plain moto
        # server of an earlier test left (e.g. a stack of the same name), as a fresh AWS account would.
        moto_api.moto_api_backend.reset()
        set_time_scale(self.time_scale)
        for extension in self.extensions:
            extension.install()
            self._installed.append(extension)
        # werkzeug logs every request at INFO; keep test and CLI output clean.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        self._server = server

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            _stop_quickly(server)
        # Extensions first: their own threads (task schedulers, proxies) end with them.
        while self._installed:
            self._installed.pop().uninstall()
        _join_new_threads(self._threads_before)
        moto_api.moto_api_backend.reset()
        set_time_scale(1.0)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Conveniences for tests and local runs, in this AWS's account and region.

    def complete_deployment(self, cluster: str, service: str) -> Deployment:
        return complete_deployment(cluster, service, account_id=self.account_id, region=self.region)

    def fail_deployment(self, cluster: str, service: str, reason: str = "tasks failed to start.") -> Deployment:
        return fail_deployment(cluster, service, account_id=self.account_id, region=self.region, reason=reason)

    def inject_throttling(self, service: str, operation: str, count: int = 1) -> None:
        inject_throttling(service, operation, count)
