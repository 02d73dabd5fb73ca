"""Make a LocalRegistry act as ECR's data plane for a moto server running in this process.

moto 5.2.5 has ECR's control plane (repositories, put_image, describe_images) but no registry (v2)
endpoint, and its `get_authorization_token` points at a made-up https host. The bridge adds, for one
account and region, these AWS behaviours (each a named piece below, each with a test):

- AuthorizationTokenLogsIn: `get_authorization_token` returns `proxyEndpoint` = the bridge's
  `http://127.0.0.1:PORT` and a fresh token base64("AWS:<password>") that logs in to it.
- AuthorizationTokenExpires: each token is valid for 12 hours of the ground's (scaled) time, as ECR's
  ("The authorization token is valid for 12 hours", GetAuthorizationToken API reference); `expiresAt`
  says when. An expired token is refused as ECR refuses it: 403 with code DENIED and "Your
  authorization token has expired. Reauthenticate and try again." (docker prints `denied: ...`). The
  front checks the token and speaks to the registry with the registry's own login, which no client gets.
- PushedImageAppearsInEcr: a manifest pushed to `127.0.0.1:PORT/<repo>:<tag>` becomes an ECR image of
  that repository with the registry's own digest (Docker-Content-Digest = sha256 of the manifest bytes,
  as on ECR; moto alone would hash the layer digests instead).
- PushToMissingRepositoryRefused: pushing to a repository ECR does not have fails with NAME_UNKNOWN.
- MovedTagLeavesOldImageUntagged: in a MUTABLE repository a pushed tag moves to the new image and
  the old one stays, untagged (moto's put_image would delete it).
- ImmutableTagRefusesPush: pushing a tag that already exists in an IMMUTABLE repository fails with
  TAG_INVALID, even when the digest is the same (ECR does this too), and nothing is overwritten.

Why a front rather than registry webhooks: distribution's notifications are queued and sent after the
manifest is stored, so a push would return before ECR knows the image (tests would race), and a push to
an immutable tag would already have moved the tag in the registry when ECR refuses it. A small
synchronous front (reverse proxy) on its own loopback port sees the manifest PUT, checks ECR's rules
first, forwards to the registry, and records the image in moto before the client gets its 201. Blobs
stream through unchanged; the registry still does authentication, the front only reads the header to
decide whether ECR rules apply (requests without one get the registry's own 401). The front reads
requests as the registry does, so no spelling slips past ECR's rules: the auth scheme is
case-insensitive (`basic`, `BASIC`, as Go's net/http), a header the front does not accept is refused
here rather than handed to a registry that might, and paths are percent-decoded before the rules
(`/manifests/1%2E0%2E0` is tag 1.0.0, as the registry's router sees it).

moto must run in this process (ThreadedMotoServer or mock_aws): the bridge writes its in-process
backends, `moto.ecr.models.ecr_backends[account][region]`.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import unquote

from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.ecr.exceptions import ImageAlreadyExistsException
from moto.ecr.models import ECRBackend, Repository, ecr_backends
from moto.ecr.responses import ECRResponse

from local_ground.hop_by_hop import HOP_BY_HOP
from local_ground.moto_extensions.timescale import scaled
from local_ground.registry import LocalRegistry
from pipeline.errors import LocalEnvironmentError

_MANIFEST_LIMIT = 4 * 1024 * 1024  # ECR's manifest size limit
_CHUNK = 64 * 1024
_PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|tags)/(?P<rest>.*)$")


# --- AuthorizationTokenLogsIn: a patch of moto's ECR response, installed while a bridge is open ----

_bridges: dict[tuple[str, str], EcrRegistryBridge] = {}
_bridges_lock = threading.Lock()
_original_get_authorization_token: Callable[[ECRResponse], ActionResult] | None = None


def _get_authorization_token(self: ECRResponse) -> ActionResult:
    bridge = _bridges.get((self.current_account, self.region))
    if bridge is None:
        assert _original_get_authorization_token is not None  # nosec B101 # installed with the patch, so never None here
        return _original_get_authorization_token(self)
    registry_ids = self._get_param("registryIds") or [self.current_account]
    data = []
    for _ in registry_ids:
        token, expires = bridge.issue_token()
        data.append({"authorizationToken": token, "expiresAt": expires, "proxyEndpoint": bridge.url})
    return ActionResult({"authorizationData": data})


def _register(bridge: EcrRegistryBridge) -> None:
    global _original_get_authorization_token
    key = (bridge.account_id, bridge.region)
    with _bridges_lock:
        if key in _bridges:
            raise LocalEnvironmentError(f"an ECR registry bridge is already open for account {key[0]} in {key[1]}")
        if not _bridges:
            _original_get_authorization_token = ECRResponse.get_authorization_token
            ECRResponse.get_authorization_token = _get_authorization_token  # type: ignore[method-assign]
        _bridges[key] = bridge


def _unregister(bridge: EcrRegistryBridge) -> None:
    global _original_get_authorization_token
    with _bridges_lock:
        if _bridges.get((bridge.account_id, bridge.region)) is not bridge:
            return
        del _bridges[(bridge.account_id, bridge.region)]
        if not _bridges and _original_get_authorization_token is not None:
            ECRResponse.get_authorization_token = _original_get_authorization_token  # type: ignore[method-assign,assignment]
            _original_get_authorization_token = None


# --- The bridge ------------------------------------------------------------------------------------

TOKEN_LIFETIME_SECONDS = 12 * 3600  # ECR: "The authorization token is valid for 12 hours."
TOKEN_EXPIRED = "Your authorization token has expired. Reauthenticate and try again."  # nosec B105 # ECR's refusal text, no secret


class Login:
    """What an Authorization header is to the front: a live ECR token, an expired one, or no login."""

    VALID, EXPIRED, REFUSED = "valid", "expired", "refused"


class EcrRegistryBridge:
    """`with EcrRegistryBridge(registry) as ecr_registry:` push to `ecr_registry.host`, see it in ECR.

    Shaped like a LocalAWS extension (name, install, uninstall, installed, reset), so it can be
    handed to `LocalAWS(extensions=[...])` as well as used on its own.
    """

    name: ClassVar[str] = "EcrRegistryDataPlane"

    def __init__(
        self,
        registry: LocalRegistry,
        *,
        account_id: str = DEFAULT_ACCOUNT_ID,
        region: str = "us-east-1",
    ) -> None:
        self.registry = registry
        self.account_id = account_id
        self.region = region
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        # Serialises check-forward-record of manifests, so two pushes of one tag cannot both pass.
        self.manifest_lock = threading.Lock()
        self.clock: Callable[[], float] = time.monotonic  # tests move it to expire tokens
        self._tokens: dict[str, float] = {}  # token password -> when it expires (self.clock)
        self._tokens_lock = threading.Lock()

    @property
    def host(self) -> str:
        if self._server is None:
            raise LocalEnvironmentError("the ECR registry bridge is not open")
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def username(self) -> str:
        return self.registry.username

    @property
    def password(self) -> str:
        """The registry's own password: the front uses it upstream; clients log in with ECR tokens."""
        return self.registry.password

    def issue_token(self) -> tuple[str, datetime]:
        """A new ECR authorization token (base64 of `AWS:<password>`) and when it expires."""
        lifetime = scaled(TOKEN_LIFETIME_SECONDS)
        password = secrets.token_urlsafe(32)
        with self._tokens_lock:
            now = self.clock()
            self._tokens = {p: end for p, end in self._tokens.items() if end > now - lifetime}  # forget old ones
            self._tokens[password] = now + lifetime
        token = base64.b64encode(f"AWS:{password}".encode()).decode()
        return token, datetime.now(UTC) + timedelta(seconds=lifetime)

    def issued_passwords(self) -> list[str]:
        """The passwords of every token issued and not yet forgotten (tests look for them where no secret may be)."""
        with self._tokens_lock:
            return list(self._tokens)

    def login(self) -> tuple[str, str]:
        """A fresh (username, password) for one pull or push, as ECS gets for its task's image pull."""
        username, _, password = base64.b64decode(self.issue_token()[0]).decode().partition(":")
        return username, password

    @property
    def backend(self) -> ECRBackend:
        return ecr_backends[self.account_id][self.region]

    @property
    def installed(self) -> bool:
        return self._server is not None

    def reset(self) -> None:
        """Nothing kept outside moto's backends and the registry's own storage."""

    def install(self) -> None:
        if self.installed:
            raise LocalEnvironmentError("the ECR registry bridge is already installed")
        handler = type("_BoundFront", (_Front,), {"bridge": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.02},  # shutdown() waits up to one interval
            name="ecr-registry-front",
            daemon=True,
        )
        self._thread.start()
        try:
            _register(self)
        except BaseException:
            self.uninstall()
            raise

    def uninstall(self) -> None:
        _unregister(self)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()

    def login_state(self, authorization: str | None) -> str:
        """The scheme in any case, as Go's net/http BasicAuth (the registry's) reads it, then the
        canonical base64 of `AWS:<token password>` of a token this bridge issued, live or expired.
        Stricter than Go on the encoding is safe: a header refused here never reaches the registry."""
        if authorization is None or authorization[:6].lower() != "basic ":
            return Login.REFUSED
        try:
            decoded = base64.b64decode(authorization[6:], validate=True).decode()
        except ValueError:
            return Login.REFUSED
        username, _, password = decoded.partition(":")
        if username != "AWS" or base64.b64encode(decoded.encode()).decode() != authorization[6:]:
            return Login.REFUSED
        with self._tokens_lock:
            expires = self._tokens.get(password)
        if expires is None:
            return Login.REFUSED
        return Login.VALID if self.clock() < expires else Login.EXPIRED

    def is_logged_in(self, authorization: str | None) -> bool:
        return self.login_state(authorization) == Login.VALID

    @property
    def upstream_authorization(self) -> str:
        """The registry's own login, which the front sends on for a client with a live ECR token."""
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


# --- The front: a reverse proxy to the registry that applies ECR's rules -------------------------


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Front(BaseHTTPRequestHandler):
    bridge: EcrRegistryBridge
    _body_read = False
    protocol_version = "HTTP/1.1"  # keep-alive; every response below carries a Content-Length

    def parse_request(self) -> bool:
        # A TLS ClientHello (first byte 0x16) on this plain-HTTP port gets the answer distribution's Go
        # server gives: an HTTP status line. Clients (containerd's resolver, BuildKit's cache exporter)
        # read it as "this registry speaks HTTP" and retry without TLS; http.server would answer an
        # HTTP/0.9 body without a status line, which they take for a broken TLS server instead.
        if self.raw_requestline.startswith(b"\x16"):
            self.close_connection = True
            self.wfile.write(b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
            return False
        return super().parse_request()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the registry keeps its own log

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        self._body_read = False
        # Decoded as the registry's router decodes it, so `1%2E0%2E0` is the tag the rules check.
        match = _PATH.match(unquote(self.path.split("?", 1)[0]))
        authorization = self.headers.get("Authorization")
        if authorization is not None:
            # Credentials the front does not accept never reach the registry; a live token goes on as
            # the registry's own login (the registry knows no ECR token).
            state = self.bridge.login_state(authorization)
            if state != Login.VALID:
                self._drain_request_body()
                expired = state == Login.EXPIRED
                refusal = (
                    _Refusal(403, "DENIED", TOKEN_EXPIRED)
                    if expired
                    else _Refusal(401, "UNAUTHORIZED", "authentication required")
                )
                self._send_error(refusal)
                return
        if match is None or authorization is None:
            self._reply(*self._exchange(self._request_body()))
            return
        name, kind, reference = match["name"], match["kind"], match["rest"]
        try:
            self._push_to_missing_repository_refused(name)
            if self.command == "PUT" and kind == "manifests":
                self._pushed_image_appears_in_ecr(name, reference)
            else:
                self._reply(*self._exchange(self._request_body()))
        except _Refusal as refusal:
            self._drain_request_body()
            self._send_error(refusal)

    # PushToMissingRepositoryRefused
    def _push_to_missing_repository_refused(self, name: str) -> None:
        if name not in self.bridge.backend.repositories:
            raise _Refusal(
                404,
                "NAME_UNKNOWN",
                f"The repository with name '{name}' does not exist in the registry with id '{self.bridge.account_id}'",
            )

    # PushedImageAppearsInEcr (ImmutableTagRefusesPush is checked first, so nothing is stored)
    def _pushed_image_appears_in_ecr(self, name: str, reference: str) -> None:
        manifest = b"".join(self._request_body() or ())
        if len(manifest) > _MANIFEST_LIMIT:
            raise _Refusal(400, "MANIFEST_INVALID", "manifest is larger than 4 MiB")
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        tag = None if reference.startswith("sha256:") else reference
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        backend = self.bridge.backend
        with self.bridge.manifest_lock:
            if tag is not None:
                self._immutable_tag_refuses_push(backend, name, tag)
            status, reason, headers, payload = self._exchange(manifest)
            if status == 201:
                self._record(backend, name, manifest, tag, content_type, digest, headers)
            self._reply(status, reason, headers, payload)

    def _record(
        self,
        backend: ECRBackend,
        name: str,
        manifest: bytes,
        tag: str | None,
        content_type: str,
        digest: str,
        headers: list[tuple[str, str]],
    ) -> None:
        registry_digest = {k.lower(): v for k, v in headers}.get("docker-content-digest")
        if registry_digest != digest:  # ECR's digest is the manifest's sha256; never record a guess
            raise _Refusal(500, "UNKNOWN", f"registry digest {registry_digest} is not the manifest's {digest}")
        repository = backend.repositories[name]
        same = next((i for i in repository.images if i.image_digest == digest), None)
        if same is not None and (tag is None or tag in same.image_tags):
            return  # the same image again (mutable tag, or by digest): a no-op push, as on ECR
        if tag is not None:
            self._moved_tag_leaves_old_image_untagged(repository, tag)
        media_type = content_type or json.loads(manifest).get("mediaType")
        try:
            backend.put_image(name, manifest.decode(), tag, media_type, digest)  # type: ignore[arg-type]
        except Exception as error:  # answer the client instead of dropping its connection
            raise _Refusal(500, "UNKNOWN", f"ECR did not record the image: {error}") from error

    # MovedTagLeavesOldImageUntagged
    @staticmethod
    def _moved_tag_leaves_old_image_untagged(repository: Repository, tag: str) -> None:
        """ECR keeps the image a mutable tag moved away from (untagged); moto would delete it."""
        for image in repository.images:
            if tag in image.image_tags:
                image.remove_tag(tag)
                if not image.image_tags:
                    image.image_tag = None  # type: ignore[assignment]  # moto types it str

    # ImmutableTagRefusesPush
    def _immutable_tag_refuses_push(self, backend: ECRBackend, name: str, tag: str) -> None:
        try:
            # moto's own rule for IMMUTABLE (and exclusion filters): raises if the tag may not move.
            backend._resolve_image_tag_mutability(backend.repositories[name], tag)
        except ImageAlreadyExistsException:
            raise _Refusal(
                400,
                "TAG_INVALID",
                f"The image tag '{tag}' already exists in the '{name}' repository and cannot be "
                "overwritten because the tag is immutable.",
            ) from None

    # -- plumbing ------------------------------------------------------------------------------
    def _exchange(self, body: bytes | Iterator[bytes] | None) -> tuple[int, str, list[tuple[str, str]], bytes]:
        """Send this request on to the registry; returns its status, reason, headers and body."""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | {"authorization"}}
        headers.pop("Host", None)
        if self.headers.get("Authorization") is not None:  # checked by _handle: a live ECR token
            headers["Authorization"] = self.bridge.upstream_authorization
        if isinstance(body, Iterator) and "Content-Length" in self.headers:
            headers["Content-Length"] = self.headers["Content-Length"]  # else http.client chunks
        upstream = http.client.HTTPConnection(self.bridge.registry.host, timeout=300)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            kept = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
            if self.command == "HEAD" and response.getheader("Content-Length"):
                kept.append(("Content-Length", response.getheader("Content-Length", "0")))
            return response.status, response.reason, kept, payload
        finally:
            upstream.close()

    def _reply(self, status: int, reason: str, headers: list[tuple[str, str]], payload: bytes) -> None:
        self.send_response_only(status, reason)
        for key, value in headers:
            self.send_header(key, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def _request_body(self) -> Iterator[bytes] | None:
        if self._body_read:
            return None
        self._body_read = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._chunked_body()
        length = int(self.headers.get("Content-Length") or 0)
        return self._sized_body(length) if length else None

    def _sized_body(self, length: int) -> Iterator[bytes]:
        while length > 0:
            piece = self.rfile.read(min(_CHUNK, length))
            if not piece:
                return
            length -= len(piece)
            yield piece

    def _chunked_body(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return
            yield self.rfile.read(size)
            self.rfile.readline()  # CRLF after each chunk

    def _drain_request_body(self) -> None:
        body = self._request_body()
        for _ in body or ():
            pass

    def _send_error(self, refusal: _Refusal) -> None:
        payload = json.dumps({"errors": [{"code": refusal.code, "message": refusal.message, "detail": None}]}).encode()
        self.send_response_only(refusal.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if refusal.status == 401:  # the registry's own challenge, so clients know to log in
            self.send_header("WWW-Authenticate", 'Basic realm="local-registry"')
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
