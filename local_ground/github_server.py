"""A local GitHub REST server: the few endpoints the pipeline uses, for tests and the local demo.

Standard library only. PyGithub is pointed at it with `Github(base_url=server.base_url, ...)`.
Responses follow GitHub's documented shapes closely enough that PyGithub's objects populate the
attributes the pipeline reads, and every `url` field points back at this server (PyGithub follows
them to complete objects and to paginate). Behaviours reproduced from GitHub, because the pipeline
depends on them:

- 401 "Bad credentials" for a missing or wrong token, 404 "Not Found" for anything unknown;
- several callers: the server's token acts as Actions' GITHUB_TOKEN (an integration: its writes are
  by `github-actions[bot]`, and GET /user answers 403 "Resource not accessible by integration");
  `add_user` adds people with tokens of their own (GET /user answers their login). Only a comment's
  author may edit it: anyone else gets 403 in GitHub's shape;
- deployments need a ref that resolves (branch, tag or the sha of a commit the repository has), else 422
  "No ref found for"; `auto_merge`, `required_contexts`, the status description limit, rate limits and
  per-token permissions as GitHub applies them (local_ground/github_rules.py, one named rule each);
- lists are paginated (`per_page` <= 100, `page`) with a `Link` header; deployments and statuses
  come newest first, comments oldest first;
- a `success` status marks earlier successful deployments of the same environment `inactive`
  (`auto_inactive`), except for production and transient environments;
- creating a release for a tag that has one gives 422 `already_exists`; a release for a missing
  tag creates the tag at `target_commitish`;
- Actions' ID token endpoint: `id_token_request(**claims)` gives a job's ACTIONS_ID_TOKEN_REQUEST_URL
  and bearer token; a GET with `audience=` answers `{"value": JWT}` signed by the local OIDC issuer.

All state is in memory behind one lock; `LocalGitHub.state()` hands tests a deep copy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from local_ground import github_rules as rules
from local_ground.iam.oidc import OidcIssuer
from pipeline.errors import LocalEnvironmentError

JSON = dict[str, Any]
DOCS = "https://docs.github.com/rest"
DEPLOYMENT_STATES = frozenset({"error", "failure", "inactive", "in_progress", "queued", "pending", "success"})
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
_SHA = re.compile(r"^[0-9a-f]{40}$")
# Where a job with `id-token: write` requests its ID token (ACTIONS_ID_TOKEN_REQUEST_URL).
JOB_OIDC_PATH = "/_actions/id-token"
_HANDLER_TIMEOUT_S = 5.0  # a client that connects and sends nothing cannot hold __exit__ forever


class HttpError(Exception):
    """An error response: GitHub's body shape, `{"message", "documentation_url", "status"}`."""

    def __init__(
        self, status: int, message: str, errors: list[JSON] | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}
        self.body: JSON = {"message": message, "documentation_url": DOCS, "status": str(status)}
        if errors is not None:
            self.body["errors"] = errors


def _not_found() -> HttpError:
    return HttpError(404, "Not Found")


def _invalid(resource: str, field_name: str, code: str = "invalid") -> HttpError:
    return HttpError(422, "Validation Failed", [{"resource": resource, "code": code, "field": field_name}])


def _missing(field_name: str) -> HttpError:
    return HttpError(422, f'Invalid request.\n\n"{field_name}" wasn\'t supplied.')


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: JSON
    caller: JSON = field(default_factory=dict)  # the user the token belongs to


def _fake_sha(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()  # a git-shaped id, not a secret


class GitHubApp:
    """The in-memory repository and the REST routes over it. Not HTTP-aware beyond status codes."""

    def __init__(self, token: str, owner_repo: str, base_url: str, clock: Callable[[], datetime]) -> None:
        owner, _, name = owner_repo.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"owner_repo must be 'owner/name', got {owner_repo!r}")
        self.token = token
        self.owner, self.name = owner, name
        self.base_url = base_url
        self._clock = clock
        self._lock = threading.Lock()
        self._ids: dict[str, int] = {}
        self.repo_url = f"{base_url}/repos/{owner}/{name}"
        self.html_url = f"{base_url}/{owner}/{name}"
        # GITHUB_TOKEN acts as the Actions app's bot user (GitHub's own login and id for it).
        self.user: JSON = self._user("github-actions[bot]", user_id=41898282, kind="Bot")
        self.callers: dict[str, tuple[JSON, bool]] = {token: (self.user, True)}  # token -> (user, integration)
        # An integration token's permissions (TokenPermissions); the server's own token has them all.
        self.permissions: dict[str, dict[str, str]] = {token: dict(rules.ALL_WRITE)}
        self.rate_limits = rules.RateLimits(clock)
        self._rate_headers: dict[str, str] = {}  # the current request's x-ratelimit-* headers
        head = _fake_sha(f"{owner_repo}:initial")
        self.commits = rules.Commits()
        self.commits.add(head)
        self.refs: dict[str, str] = {"refs/heads/main": head}  # full ref -> commit sha
        self.deployments: dict[int, JSON] = {}
        self.statuses: dict[int, list[JSON]] = {}  # deployment id -> statuses, oldest first
        self.releases: dict[int, JSON] = {}
        self.latest_release: int | None = None
        self.pulls: dict[int, JSON] = {}
        self.comments: dict[int, JSON] = {}
        self.request_log: list[tuple[str, str, int]] = []
        self.oidc = OidcIssuer()  # GitHub Actions' ID token issuer (local_ground/iam/oidc.py)
        # ACTIONS_ID_TOKEN_REQUEST_TOKEN -> the job's claims (OidcIssuer.claims keywords, audience aside)
        self.id_token_jobs: dict[str, dict[str, Any]] = {}
        self.issued_id_tokens: list[dict[str, Any]] = []  # the claims of every token handed to a job
        self.failures: list[tuple[int, str | None]] = []  # (status, method) to answer next
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Response]]] = []
        for method, pattern, handler in (
            ("GET", r"", self._get_repo),
            ("GET", r"/deployments", self._list_deployments),
            ("POST", r"/deployments", self._create_deployment),
            ("GET", r"/deployments/(\d+)", self._get_deployment),
            ("GET", r"/deployments/(\d+)/statuses", self._list_statuses),
            ("POST", r"/deployments/(\d+)/statuses", self._create_status),
            ("GET", r"/deployments/(\d+)/statuses/(\d+)", self._get_status),
            ("GET", r"/releases", self._list_releases),
            ("POST", r"/releases", self._create_release),
            ("GET", r"/releases/latest", self._get_latest_release),
            ("GET", r"/releases/tags/(.+)", self._get_release_by_tag),
            ("GET", r"/releases/(\d+)", self._get_release),
            ("PATCH", r"/releases/(\d+)", self._update_release),
            ("GET", r"/tags", self._list_tags),
            ("POST", r"/git/refs", self._create_ref),
            ("GET", r"/git/refs?/(.+)", self._get_ref),
            ("GET", r"/issues/(\d+)", self._get_issue),
            ("GET", r"/issues/(\d+)/comments", self._list_comments),
            ("POST", r"/issues/(\d+)/comments", self._create_comment),
            ("GET", r"/issues/comments/(\d+)", self._get_comment),
            ("PATCH", r"/issues/comments/(\d+)", self._update_comment),
            ("GET", r"/pulls/(\d+)", self._get_pull),
            ("POST", r"/statuses/([0-9a-f]{40})", self._create_commit_status),
        ):
            self._routes.append((method, re.compile(f"^{pattern}$"), handler))

    # -- entry point ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, authorization: str, raw_body: bytes) -> Response:
        parts = urlsplit(target)
        path = parts.path.rstrip("/") or "/"
        with self._lock:
            self._rate_headers = {}
            try:
                response = self._route(method, path, parts.query, authorization, raw_body)
            except HttpError as error:
                response = Response(error.status, error.body, dict(error.headers))
            response.headers = {**self._rate_headers, **response.headers}
            self.request_log.append((method, path, response.status))
            # serialise under the lock: the body may be a live state dict
            response.body = json.dumps(response.body).encode()
            return response

    def _route(self, method: str, path: str, query: str, authorization: str, raw_body: bytes) -> Response:
        # The OIDC issuer's documents are public, as token.actions.githubusercontent.com serves them.
        if method == "GET" and path == "/.well-known/openid-configuration":
            return Response(200, self.oidc.discovery())
        if method == "GET" and path == "/.well-known/jwks":
            return Response(200, self.oidc.jwks())
        if method == "GET" and path == JOB_OIDC_PATH:
            return self._job_id_token(query, authorization)
        scheme, _, presented = authorization.partition(" ")
        caller = self.callers.get(presented.strip()) if scheme.lower() in ("token", "bearer") else None
        if caller is None:
            raise HttpError(401, "Bad credentials")
        user, integration = caller
        token = presented.strip()
        limit = rules.GITHUB_TOKEN_LIMIT if integration else rules.PERSONAL_TOKEN_LIMIT
        who = f"installation ID {user['id']}" if integration else f"user ID {user['id']}"
        self._rate_headers, refused = self.rate_limits.admit(token, limit, method, who)
        if refused is not None:
            raise HttpError(refused.status, refused.message, headers=refused.headers)
        for index, (status, only_method) in enumerate(self.failures):
            if only_method in (None, method):
                del self.failures[index]
                raise HttpError(status, "Server Error" if status >= 500 else "Injected failure")
        if path == "/user" and method == "GET":
            if integration:  # an installation token is no user: GitHub refuses, as it does for GITHUB_TOKEN
                raise HttpError(403, "Resource not accessible by integration")
            return Response(200, user)
        prefix = f"/repos/{self.owner}/{self.name}".lower()
        if not path.lower().startswith(prefix):
            raise _not_found()
        rest = path[len(prefix) :]
        if integration and not rules.permitted(self.permissions.get(token, {}), method, rest):
            raise HttpError(403, "Resource not accessible by integration")
        for route_method, pattern, handler in self._routes:
            match = pattern.match(rest)
            if match and route_method == method:
                request = Request(method, path, dict(parse_qsl(query)), self._json_body(raw_body), user)
                args = [unquote(group) for group in match.groups()]
                return handler(request, *args)
        raise _not_found()

    def _job_id_token(self, query: str, authorization: str) -> Response:
        """ACTIONS_ID_TOKEN_REQUEST_URL: a job's ID token, for the bearer of its request token; the
        audience is the `audience` parameter, else GitHub's default (the owner's URL)."""
        scheme, _, presented = authorization.partition(" ")
        job = self.id_token_jobs.get(presented.strip()) if scheme.lower() == "bearer" else None
        if job is None:
            raise HttpError(401, "Bad credentials")
        audience = dict(parse_qsl(query)).get("audience") or f"https://github.com/{self.owner}"
        claims = self.oidc.claims(f"{self.owner}/{self.name}", audience=audience, **job)
        self.issued_id_tokens.append(claims)
        return Response(200, {"count": 2000, "value": self.oidc.sign(claims)})

    @staticmethod
    def _json_body(raw: bytes) -> JSON:
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise HttpError(400, "Problems parsing JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "Problems parsing JSON")
        return body

    # -- shared pieces --------------------------------------------------------------------------

    def _next_id(self, kind: str) -> int:
        self._ids[kind] = self._ids.get(kind, 0) + 1
        return self._ids[kind]

    def _now(self) -> str:
        return self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _user(self, login: str, user_id: int = 1, kind: str = "User") -> JSON:
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_local{user_id}",
            "type": kind,
            "site_admin": False,
            "url": f"{self.base_url}/users/{login}",
            "html_url": f"{self.base_url}/{login}",
            "avatar_url": f"{self.base_url}/avatars/{login}",
        }

    def repository(self) -> JSON:
        return {
            "id": 1,
            "node_id": "R_local1",
            "name": self.name,
            "full_name": f"{self.owner}/{self.name}",
            "owner": {**self._user(self.owner), "id": 2},
            "private": True,
            "visibility": "private",
            "fork": False,
            "archived": False,
            "disabled": False,
            "default_branch": "main",
            "description": "",
            "url": self.repo_url,
            "html_url": self.html_url,
            "deployments_url": f"{self.repo_url}/deployments",
            "releases_url": f"{self.repo_url}/releases{{/id}}",
            "tags_url": f"{self.repo_url}/tags",
            "issues_url": f"{self.repo_url}/issues{{/number}}",
            "pulls_url": f"{self.repo_url}/pulls{{/number}}",
            "git_refs_url": f"{self.repo_url}/git/refs{{/sha}}",
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "pushed_at": "2024-01-01T00:00:00Z",
            "permissions": {"admin": True, "push": True, "pull": True},
        }

    def _page(self, request: Request, items: list[Any]) -> Response:
        """One page of `items` with GitHub's Link header (next/last, first/prev)."""
        try:
            per_page = min(max(int(request.query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
        except ValueError:
            per_page = DEFAULT_PER_PAGE
        try:
            page = max(int(request.query.get("page", 1)), 1)
        except ValueError:
            page = 1
        last = max((len(items) + per_page - 1) // per_page, 1)
        links = []

        def link(number: int, rel: str) -> str:
            query = {**request.query, "per_page": str(per_page), "page": str(number)}
            return f'<{self.base_url}{request.path}?{urlencode(query)}>; rel="{rel}"'

        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        if page > 1:
            links += [link(1, "first"), link(min(page - 1, last), "prev")]
        headers = {"Link": ", ".join(links)} if links else {}
        return Response(200, items[(page - 1) * per_page : page * per_page], headers)

    def _created(self, body: JSON) -> Response:
        return Response(201, body, {"Location": body["url"]})

    def resolve_ref(self, ref: str) -> str | None:
        """A commit sha for a sha, full ref, branch or tag name, as GitHub resolves `ref`."""
        if _SHA.match(ref):
            return ref if ref in self.commits else None  # CommitsMustExist
        for candidate in (ref, f"refs/heads/{ref}", f"refs/tags/{ref}"):
            if candidate in self.refs:
                return self.refs[candidate]
        return None

    @staticmethod
    def _text(body: JSON, key: str, resource: str, default: str | None = None) -> str | None:
        value = body.get(key, default)
        if value is not None and not isinstance(value, str):
            raise _invalid(resource, key)
        return value

    @staticmethod
    def _flag(body: JSON, key: str, resource: str, default: bool) -> bool:
        value = body.get(key, default)
        if not isinstance(value, bool):
            raise _invalid(resource, key)
        return value

    # -- repository -----------------------------------------------------------------------------

    def _get_repo(self, request: Request) -> Response:
        return Response(200, self.repository())

    # -- deployments ----------------------------------------------------------------------------

    def _deployment(self, deployment_id: str) -> JSON:
        found = self.deployments.get(int(deployment_id))
        if found is None:
            raise _not_found()
        return found

    def _list_deployments(self, request: Request) -> Response:
        filters = {k: v for k, v in request.query.items() if k in ("environment", "ref", "sha", "task")}
        newest_first = sorted(self.deployments.values(), key=lambda d: (d["created_at"], d["id"]), reverse=True)
        selected = [d for d in newest_first if all(d[k] == v for k, v in filters.items())]
        return self._page(request, selected)

    def _create_deployment(self, request: Request) -> Response:
        body = request.body
        ref = self._text(body, "ref", "Deployment")
        if not ref:
            raise _missing("ref")
        sha = self.resolve_ref(ref)
        if sha is None:
            raise HttpError(422, f"No ref found for: {ref}")
        payload = body.get("payload", {})
        if isinstance(payload, str):  # GitHub accepts a JSON string and stores the object
            try:
                payload = json.loads(payload) if payload else {}
            except ValueError:
                raise _invalid("Deployment", "payload") from None
        if not isinstance(payload, dict):
            raise _invalid("Deployment", "payload")
        contexts = body.get("required_contexts")  # absent: every context submitted must be success
        if contexts is not None and not (isinstance(contexts, list) and all(isinstance(c, str) for c in contexts)):
            raise _invalid("Deployment", "required_contexts")
        if self._flag(body, "auto_merge", "Deployment", True):
            merged = self._auto_merge(ref, sha)
            if merged is not None:
                return merged
        failed = self.commits.failed_contexts(sha, contexts)  # DeploymentRequiredContexts
        if failed is not None:
            error = {"resource": "Deployment", "field": "required_contexts", "code": "invalid", "contexts": failed}
            raise HttpError(409, rules.status_checks_message(ref), [error])
        environment = self._text(body, "environment", "Deployment", "production") or "production"
        deployment_id = self._next_id("deployment")
        url = f"{self.repo_url}/deployments/{deployment_id}"
        now = self._now()
        deployment = {
            "url": url,
            "id": deployment_id,
            "node_id": f"DE_local{deployment_id}",
            "sha": sha,
            "ref": ref,
            "task": self._text(body, "task", "Deployment", "deploy"),
            "payload": payload,
            "original_environment": environment,
            "environment": environment,
            "description": self._text(body, "description", "Deployment", ""),
            "creator": self.user,
            "created_at": now,
            "updated_at": now,
            "statuses_url": f"{url}/statuses",
            "repository_url": self.repo_url,
            "transient_environment": self._flag(body, "transient_environment", "Deployment", False),
            "production_environment": self._flag(
                body, "production_environment", "Deployment", environment == "production"
            ),
            "performed_via_github_app": None,
        }
        self.deployments[deployment_id] = deployment
        self.statuses[deployment_id] = []
        return self._created(deployment)

    def _auto_merge(self, ref: str, sha: str) -> Response | None:
        """DeploymentAutoMerge: a ref behind the default branch is merged (a branch) or refused (else)."""
        default_head = self.refs["refs/heads/main"]
        if self.commits.contains(sha, default_head):
            return None  # up to date: nothing to merge
        branch = next((r for r in (ref, f"refs/heads/{ref}") if r.startswith("refs/heads/") and r in self.refs), None)
        if branch is None:  # a tag or a sha takes no merge commit
            raise HttpError(409, rules.conflict_message("main", ref))
        merge = _fake_sha(f"merge:{sha}:{default_head}")
        self.commits.add(merge, sha, default_head)
        self.refs[branch] = merge
        return Response(202, {"message": rules.merge_message("main", ref)})

    def _get_deployment(self, request: Request, deployment_id: str) -> Response:
        return Response(200, self._deployment(deployment_id))

    def _list_statuses(self, request: Request, deployment_id: str) -> Response:
        self._deployment(deployment_id)
        newest_first = list(reversed(self.statuses[int(deployment_id)]))
        return self._page(request, newest_first)

    def _get_status(self, request: Request, deployment_id: str, status_id: str) -> Response:
        self._deployment(deployment_id)
        for status in self.statuses[int(deployment_id)]:
            if status["id"] == int(status_id):
                return Response(200, status)
        raise _not_found()

    def _create_status(self, request: Request, deployment_id: str) -> Response:
        deployment = self._deployment(deployment_id)
        body = request.body
        state = body.get("state")
        if state is None:
            raise _missing("state")
        if state not in DEPLOYMENT_STATES:
            raise _invalid("DeploymentStatus", "state")
        environment = self._text(body, "environment", "DeploymentStatus") or deployment["environment"]
        log_url = self._text(body, "log_url", "DeploymentStatus") or self._text(
            body, "target_url", "DeploymentStatus", ""
        )
        auto_inactive = self._flag(body, "auto_inactive", "DeploymentStatus", True)
        description = self._text(body, "description", "DeploymentStatus", "") or ""
        if len(description) > rules.DESCRIPTION_MAX:  # StatusDescriptionLimit
            message = f"description is too long (maximum is {rules.DESCRIPTION_MAX} characters)"
            error = {"resource": "DeploymentStatus", "code": "custom", "field": "description", "message": message}
            raise HttpError(422, "Validation Failed", [error])
        status = self._append_status(
            deployment,
            state=state,
            description=description,
            environment=environment,
            environment_url=self._text(body, "environment_url", "DeploymentStatus", "") or "",
            log_url=log_url or "",
        )
        if state == "success" and auto_inactive:
            self._deactivate_others(deployment)
        return self._created(status)

    def _append_status(self, deployment: JSON, **fields: str) -> JSON:
        status_id = self._next_id("status")
        now = self._now()
        status = {
            "url": f"{deployment['url']}/statuses/{status_id}",
            "id": status_id,
            "node_id": f"DES_local{status_id}",
            "state": fields["state"],
            "creator": self.user,
            "description": fields.get("description", ""),
            "environment": fields["environment"],
            "target_url": fields.get("log_url", ""),
            "log_url": fields.get("log_url", ""),
            "environment_url": fields.get("environment_url", ""),
            "created_at": now,
            "updated_at": now,
            "deployment_url": deployment["url"],
            "repository_url": self.repo_url,
            "performed_via_github_app": None,
        }
        deployment["environment"] = fields["environment"]
        deployment["updated_at"] = now
        self.statuses[deployment["id"]].append(status)
        return status

    def _deactivate_others(self, current: JSON) -> None:
        """GitHub's `auto_inactive`: earlier successes in this environment become inactive."""
        for other in self.deployments.values():
            history = self.statuses[other["id"]]
            if (
                other["id"] != current["id"]
                and other["environment"] == current["environment"]
                and not other["transient_environment"]
                and not other["production_environment"]
                and history
                and history[-1]["state"] == "success"
            ):
                self._append_status(other, state="inactive", environment=other["environment"])

    # -- releases and tags ----------------------------------------------------------------------

    def _release(self, release_id: str) -> JSON:
        found = self.releases.get(int(release_id))
        if found is None:
            raise _not_found()
        return found

    def _list_releases(self, request: Request) -> Response:
        newest_first = sorted(self.releases.values(), key=lambda r: r["id"], reverse=True)
        return self._page(request, newest_first)

    def _get_release(self, request: Request, release_id: str) -> Response:
        return Response(200, self._release(release_id))

    def _get_release_by_tag(self, request: Request, tag: str) -> Response:
        for release in self.releases.values():
            if release["tag_name"] == tag:
                return Response(200, release)
        raise _not_found()

    def _get_latest_release(self, request: Request) -> Response:
        if self.latest_release is None:
            raise _not_found()
        return Response(200, self.releases[self.latest_release])

    def _release_fields(self, body: JSON, current: JSON | None) -> JSON:
        """Validated release fields from a POST or PATCH body, over `current` for a PATCH."""
        base = current or {"name": None, "body": None, "draft": False, "prerelease": False}
        fields = {
            "name": self._text(body, "name", "Release", base["name"]),
            "body": self._text(body, "body", "Release", base["body"]),
            "draft": self._flag(body, "draft", "Release", base["draft"]),
            "prerelease": self._flag(body, "prerelease", "Release", base["prerelease"]),
        }
        tag = self._text(body, "tag_name", "Release", current["tag_name"] if current else None)
        if not tag:
            raise _missing("tag_name")
        if any(r["tag_name"] == tag and r is not current for r in self.releases.values()):
            raise _invalid("Release", "tag_name", "already_exists")
        fields["tag_name"] = tag
        default_target = current["target_commitish"] if current else "main"
        target = self._text(body, "target_commitish", "Release", default_target) or "main"
        if f"refs/tags/{tag}" not in self.refs:
            sha = self.resolve_ref(target)
            if sha is None:
                raise _invalid("Release", "target_commitish")
            self.refs[f"refs/tags/{tag}"] = sha  # GitHub tags target_commitish for a new tag
        fields["target_commitish"] = target
        make_latest = body.get("make_latest", "true" if current is None else None)
        if make_latest not in (None, "true", "false", "legacy"):
            raise _invalid("Release", "make_latest")
        fields["make_latest"] = make_latest
        return fields

    def _apply_latest(self, release: JSON, make_latest: str | None) -> None:
        eligible = not release["draft"] and not release["prerelease"]
        if make_latest == "true" and eligible:
            self.latest_release = release["id"]
        elif make_latest == "legacy" or (self.latest_release == release["id"] and not eligible):
            candidates = [r for r in self.releases.values() if not r["draft"] and not r["prerelease"]]
            newest = max(candidates, key=lambda r: (r["created_at"], r["id"]), default=None)
            self.latest_release = newest["id"] if newest else None

    def _create_release(self, request: Request) -> Response:
        fields = self._release_fields(request.body, None)
        make_latest = fields.pop("make_latest")
        release_id = self._next_id("release")
        url = f"{self.repo_url}/releases/{release_id}"
        now = self._now()
        tag = fields["tag_name"]
        release = {
            "url": url,
            "html_url": f"{self.html_url}/releases/tag/{quote(tag)}",
            "assets_url": f"{url}/assets",
            "upload_url": f"{self.base_url}/uploads/repos/{self.owner}/{self.name}/releases/"
            f"{release_id}/assets{{?name,label}}",
            "tarball_url": f"{self.repo_url}/tarball/{quote(tag)}",
            "zipball_url": f"{self.repo_url}/zipball/{quote(tag)}",
            "id": release_id,
            "node_id": f"RE_local{release_id}",
            "author": self.user,
            "created_at": now,
            "updated_at": now,
            "published_at": None if fields["draft"] else now,
            "assets": [],
            **fields,
        }
        self.releases[release_id] = release
        self._apply_latest(release, make_latest)
        return self._created(release)

    def _update_release(self, request: Request, release_id: str) -> Response:
        release = self._release(release_id)
        fields = self._release_fields(request.body, release)
        make_latest = fields.pop("make_latest")
        tag = fields["tag_name"]
        was_draft = release["draft"]
        release.update(fields, updated_at=self._now())
        release["html_url"] = f"{self.html_url}/releases/tag/{quote(tag)}"
        if was_draft and not release["draft"]:
            release["published_at"] = release["updated_at"]
        self._apply_latest(release, make_latest)
        return Response(200, release)

    def _list_tags(self, request: Request) -> Response:
        tags = [
            {
                "name": ref.removeprefix("refs/tags/"),
                "commit": {"sha": sha, "url": f"{self.repo_url}/commits/{sha}"},
                "zipball_url": f"{self.repo_url}/zipball/{ref.removeprefix('refs/tags/')}",
                "tarball_url": f"{self.repo_url}/tarball/{ref.removeprefix('refs/tags/')}",
                "node_id": f"REF_{_fake_sha(ref)[:12]}",
            }
            for ref, sha in reversed(self.refs.items())  # newest first
            if ref.startswith("refs/tags/")
        ]
        return self._page(request, tags)

    def _ref_body(self, ref: str) -> JSON:
        sha = self.refs[ref]
        return {
            "ref": ref,
            "node_id": f"REF_{_fake_sha(ref)[:12]}",
            "url": f"{self.repo_url}/git/{ref}",
            "object": {"type": "commit", "sha": sha, "url": f"{self.repo_url}/git/commits/{sha}"},
        }

    def _create_ref(self, request: Request) -> Response:
        ref = self._text(request.body, "ref", "Reference")
        sha = self._text(request.body, "sha", "Reference")
        if not ref:
            raise _missing("ref")
        if not sha:
            raise _missing("sha")
        if not ref.startswith("refs/") or ref.count("/") < 2:
            raise HttpError(422, "Reference name must start with 'refs/' and have at least two slashes.")
        if not _SHA.match(sha) or sha not in self.commits:
            raise HttpError(422, "Object does not exist")
        if ref in self.refs:
            raise HttpError(422, "Reference already exists")
        self.refs[ref] = sha
        return self._created(self._ref_body(ref))

    def _get_ref(self, request: Request, ref: str) -> Response:
        full = ref if ref.startswith("refs/") else f"refs/{ref}"
        if full not in self.refs:
            raise _not_found()
        return Response(200, self._ref_body(full))

    # -- commit statuses ------------------------------------------------------------------------

    def _create_commit_status(self, request: Request, sha: str) -> Response:
        if sha not in self.commits:
            raise HttpError(422, f"No commit found for SHA: {sha}")
        state = request.body.get("state")
        if state not in ("error", "failure", "pending", "success"):
            raise _invalid("Status", "state")
        context = self._text(request.body, "context", "Status", "default") or "default"
        status_id = self._next_id("commit-status")
        now = self._now()
        status = {
            "url": f"{self.repo_url}/statuses/{sha}",
            "id": status_id,
            "state": state,
            "context": context,
            "description": self._text(request.body, "description", "Status", None),
            "target_url": self._text(request.body, "target_url", "Status", None),
            "creator": request.caller,
            "created_at": now,
            "updated_at": now,
        }
        self.commits.statuses.setdefault(sha, []).append(status)
        return Response(201, status, {"Location": status["url"]})

    # -- pull requests and comments -------------------------------------------------------------

    def _pull(self, number: str) -> JSON:
        found = self.pulls.get(int(number))
        if found is None:
            raise _not_found()
        return found

    def _get_pull(self, request: Request, number: str) -> Response:
        return Response(200, self._pull(number))

    def _get_issue(self, request: Request, number: str) -> Response:
        pull = self._pull(number)
        issue_url = pull["issue_url"]
        return Response(
            200,
            {
                "url": issue_url,
                "id": pull["id"],
                "node_id": f"I_local{pull['number']}",
                "number": pull["number"],
                "title": pull["title"],
                "body": pull["body"],
                "state": pull["state"],
                "user": pull["user"],
                "html_url": pull["html_url"],
                "comments_url": pull["comments_url"],
                "comments": sum(1 for c in self.comments.values() if c["issue_url"] == issue_url),
                "labels": [],
                "assignees": [],
                "locked": False,
                "created_at": pull["created_at"],
                "updated_at": pull["updated_at"],
                "closed_at": None,
                "pull_request": {"url": pull["url"], "html_url": pull["html_url"]},
            },
        )

    def open_pull_request(self, title: str, head: str, base: str) -> int:
        with self._lock:
            number = self._next_id("issue")
            now = self._now()
            issue_url = f"{self.repo_url}/issues/{number}"

            def part(ref: str) -> JSON:
                sha = self.resolve_ref(ref) or _fake_sha(f"{ref}:{number}")
                return {"label": f"{self.owner}:{ref}", "ref": ref, "sha": sha, "user": self.user}

            self.pulls[number] = {
                "url": f"{self.repo_url}/pulls/{number}",
                "id": number,
                "node_id": f"PR_local{number}",
                "number": number,
                "state": "open",
                "title": title,
                "body": "",
                "user": self.user,
                "html_url": f"{self.html_url}/pull/{number}",
                "issue_url": issue_url,
                "comments_url": f"{issue_url}/comments",
                "head": part(head),
                "base": part(base),
                "draft": False,
                "merged": False,
                "created_at": now,
                "updated_at": now,
            }
            return number

    def _comment(self, comment_id: str) -> JSON:
        found = self.comments.get(int(comment_id))
        if found is None:
            raise _not_found()
        return found

    def _list_comments(self, request: Request, number: str) -> Response:
        issue_url = self._pull(number)["issue_url"]
        oldest_first = [c for c in self.comments.values() if c["issue_url"] == issue_url]
        return self._page(request, oldest_first)

    def _comment_body(self, request: Request) -> str:
        text = self._text(request.body, "body", "IssueComment")
        if not text:
            raise _missing("body")
        return text

    def _create_comment(self, request: Request, number: str) -> Response:
        pull = self._pull(number)
        text = self._comment_body(request)
        comment_id = self._next_id("comment")
        now = self._now()
        comment = {
            "url": f"{self.repo_url}/issues/comments/{comment_id}",
            "id": comment_id,
            "node_id": f"IC_local{comment_id}",
            "html_url": f"{pull['html_url']}#issuecomment-{comment_id}",
            "body": text,
            "user": request.caller,
            "created_at": now,
            "updated_at": now,
            "issue_url": pull["issue_url"],
            "author_association": "OWNER",
            "performed_via_github_app": None,
        }
        self.comments[comment_id] = comment
        return self._created(comment)

    def _get_comment(self, request: Request, comment_id: str) -> Response:
        return Response(200, self._comment(comment_id))

    def _update_comment(self, request: Request, comment_id: str) -> Response:
        comment = self._comment(comment_id)
        if comment["user"]["id"] != request.caller["id"]:  # only its author edits a comment here
            by = "integration" if request.caller["type"] == "Bot" else "personal access token"
            raise HttpError(403, f"Resource not accessible by {by}")
        comment.update(body=self._comment_body(request), updated_at=self._now())
        return Response(200, comment)

    def snapshot(self) -> JSON:
        with self._lock:
            deployments = [{**d, "statuses": list(self.statuses[d["id"]])} for d in self.deployments.values()]
            return copy.deepcopy(
                {
                    "refs": self.refs,
                    "deployments": deployments,
                    "releases": list(self.releases.values()),
                    "latest_release": self.latest_release,
                    "pulls": list(self.pulls.values()),
                    "comments": list(self.comments.values()),
                    "requests": self.request_log,
                }
            )


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads at exit
    timeout = _HANDLER_TIMEOUT_S

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        response = self.server.app.handle(self.command, self.path, self.headers.get("Authorization", ""), raw)
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("X-GitHub-Media-Type", "github.v3; format=json")
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the app keeps a request log; stderr noise would clutter test output


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins every handler thread
    request_queue_size = 64  # the default 5 drops bursts of connects into a 1 s SYN retry

    def __init__(self, app_factory: Callable[[str], GitHubApp]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.app = app_factory(f"http://127.0.0.1:{self.server_address[1]}")
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """Unblock handlers still reading from a client so server_close() can join them."""
        with self._open_lock:
            for sock in list(self._open):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class LocalGitHub:
    """A GitHub REST server on 127.0.0.1 for one `owner/repo`, alive inside a `with` block."""

    def __init__(  # nosec B107 # the local GitHub's own token, valid only on 127.0.0.1
        self,
        token: str = "local-token",
        owner_repo: str = "acme/model",
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.token = token
        self.repository = owner_repo
        self._clock = clock
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return self._app.base_url

    @property
    def port(self) -> int:
        if self._server is None:
            raise LocalEnvironmentError("the local GitHub server is not running")
        return int(self._server.server_address[1])

    @property
    def _app(self) -> GitHubApp:
        if self._server is None:
            raise LocalEnvironmentError("the local GitHub server is not running")
        return self._server.app

    def __enter__(self) -> LocalGitHub:
        try:
            self._server = _Server(lambda base_url: GitHubApp(self.token, self.repository, base_url, self._clock))
        except OSError as error:
            raise LocalEnvironmentError(f"local GitHub server could not bind: {error}") from error
        # a short poll interval keeps shutdown() fast; the loop is idle otherwise
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"local-github-{self.port}",
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    # -- seeding and inspection for tests and the demo -------------------------------------------

    def create_tag(self, name: str, sha: str | None = None) -> str:
        """Point refs/tags/<name> at `sha` (default: main's head), as a pushed tag would."""
        app = self._app
        with app._lock:
            commit = sha or app.refs["refs/heads/main"]
            app.commits.add(commit)  # a pushed tag brings its commit
            app.refs[f"refs/tags/{name}"] = commit
            return commit

    def push_commit(self, branch: str = "main") -> str:
        """A new commit on `branch` (its head the parent), as a push would add; returns its sha."""
        app = self._app
        with app._lock:
            parent = app.refs[f"refs/heads/{branch}"]
            sha = _fake_sha(f"{branch}:{parent}:{len(app.commits.parents)}")
            app.commits.add(sha, parent)
            app.refs[f"refs/heads/{branch}"] = sha
            return sha

    def set_commit_status(self, ref: str, state: str, context: str) -> None:
        """A commit status on `ref`'s commit, as CI would post it (POST /repos/O/R/statuses/SHA)."""
        app = self._app
        with app._lock:
            sha = app.resolve_ref(ref)
            if sha is None:
                raise ValueError(f"no commit for {ref!r}")
            app.commits.statuses.setdefault(sha, []).append({"context": context, "state": state})

    def add_token(self, permissions: dict[str, str]) -> str:
        """An integration token (a job's GITHUB_TOKEN) with only these permissions, e.g.
        {"deployments": "write", "contents": "read"}; returns it."""
        app = self._app
        with app._lock:
            token = f"ghs_local_{len(app.callers)}_{secrets.token_hex(8)}"
            app.callers[token] = (app.user, True)
            app.permissions[token] = dict(permissions)
            return token

    def open_pull_request(self, title: str = "Change", head: str = "feature", base: str = "main") -> int:
        """A new open pull request; returns its number (issues and pulls share numbers)."""
        return self._app.open_pull_request(title, head, base)

    def id_token(self, **claims: Any) -> str:
        """A workflow job's OIDC ID token for this repository (see OidcIssuer.claims for the knobs)."""
        return self._app.oidc.token(self.repository, **claims)

    @property
    def oidc(self) -> OidcIssuer:
        return self._app.oidc

    def id_token_request(self, **claims: Any) -> tuple[str, str]:
        """What a job with `id-token: write` gets: (ACTIONS_ID_TOKEN_REQUEST_URL,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN); a GET of the URL (plus `&audience=AUD`) with
        `Authorization: Bearer TOKEN` answers `{"value": ID_TOKEN}` with these claims."""
        app = self._app
        app.oidc.claims(self.repository, **claims)  # unknown keywords fail here, not at the request
        request_token = secrets.token_urlsafe(24)
        with app._lock:
            app.id_token_jobs[request_token] = dict(claims)
        return f"{app.base_url}{JOB_OIDC_PATH}?api-version=2.0", request_token

    def issued_id_tokens(self) -> list[dict[str, Any]]:
        """The claims of every ID token jobs requested, oldest first."""
        app = self._app
        with app._lock:
            return copy.deepcopy(app.issued_id_tokens)

    def add_user(self, login: str) -> str:
        """A person with a token of their own (a PAT: GET /user answers `login`); returns the token."""
        app = self._app
        with app._lock:
            token = f"ghp_local_{login}_{len(app.callers)}"
            app.callers[token] = (app._user(login, user_id=1000 + len(app.callers)), False)
            return token

    def fail_next(self, status: int, method: str | None = None, times: int = 1) -> None:
        """Answer the next `times` authenticated requests (of `method`, if given) with `status`."""
        app = self._app
        with app._lock:
            app.failures.extend([(status, method)] * times)

    def state(self) -> JSON:
        """A deep copy of all state, plus the request log as (method, path, status)."""
        return self._app.snapshot()
