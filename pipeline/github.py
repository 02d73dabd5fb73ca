"""The pipeline's only PyGithub boundary: deployments and their statuses, releases, PR comments.

Plain data in and out; every PyGithub or network failure becomes one `GitHubError` with a hint.
Built from the variables GitHub Actions provides (`GITHUB_TOKEN`, `GITHUB_REPOSITORY`,
`GITHUB_API_URL`); without a token or repository there is nothing to record to and
`GitHubRecorder.from_environ` returns None so the caller can say so and skip.

What counts as "ours": a deployment whose payload carries `version` and `digest`. GitHub Actions
creates deployments of its own for jobs that declare an `environment:`; those are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from ipaddress import ip_address
from types import TracebackType
from typing import Any, Literal
from urllib.parse import urlsplit

from github import Auth, Github
from github.Deployment import Deployment
from github.GithubException import (
    BadAttributeException,
    BadCredentialsException,
    GithubException,
    RateLimitExceededException,
    UnknownObjectException,
)
from github.GithubObject import NotSet
from github.Repository import Repository
from urllib3.util.retry import Retry

from pipeline.errors import GitHubConfigError, GitHubError
from pipeline.urls import is_http_url

DEFAULT_API_URL = "https://api.github.com"
ACTIONS_BOT = "github-actions[bot]"  # who GITHUB_TOKEN writes as
DEFAULT_SERVER_URL = "https://github.com"
DEPLOY_TASK = "deploy"
FinishState = Literal["success", "failure", "error"]
_FINISH_STATES: frozenset[str] = frozenset({"success", "failure", "error"})
_SCAN_LIMIT = 200  # deployments looked at when searching history; older ones do not matter
_DESCRIPTION_MAX = 140  # GitHub rejects longer deployment status descriptions
_UNFINISHED_STATES = frozenset({"pending", "queued", "in_progress"})
_UNFINISHED_SCAN = 10  # a killed run's deployment is among the newest


@dataclass(frozen=True)
class DeploymentRecord:
    """One of the pipeline's deployments as GitHub holds it."""

    id: int
    environment: str
    version: str
    digest: str
    ref: str
    sha: str
    created_at: datetime
    state: str | None  # the newest status ("inactive" once a later success replaced it)
    succeeded: bool  # the newest status other than "inactive" is "success"
    url: str | None  # the environment URL from the newest status that has one
    log_url: str | None = None  # the run that wrote its newest status (target_url): which run made it


def _is_loopback(api_url: str) -> bool:
    host = urlsplit(api_url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_api_url(api_url: str) -> None:
    """Refuse a GITHUB_API_URL that PyGithub would trip over with a traceback (no scheme, ftp://, an
    unclosed IPv6 host, a port that is not a number) before anything is called."""
    if not is_http_url(api_url):
        raise GitHubConfigError(
            f"GITHUB_API_URL {api_url!r} is not an http(s) URL",
            hint=f"Unset it for {DEFAULT_API_URL}, or set your server's API (GitHub Enterprise: https://HOST/api/v3).",
        )


def _reason(error: BaseException, timeout: float) -> str:
    """Why a connection failed, in the socket's words ("Connection refused", "Name or service not
    known"), instead of the urllib3 reprs that requests nests around them."""
    seen: set[int] = set()
    pending = [error]
    innermost = error
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        innermost = current
        if isinstance(current, TimeoutError) or "Timeout" in type(current).__name__:
            return f"no answer within {timeout:g} s"
        if isinstance(current, OSError) and isinstance(current.strerror, str) and current.strerror:
            return _one_line(current.strerror)
        reason = getattr(current, "reason", None)
        pending += [
            e for e in (*current.args, reason, current.__cause__, current.__context__) if isinstance(e, BaseException)
        ]
    # No socket error inside (e.g. "Remote end closed connection without response"): the innermost words.
    return _one_line(str(innermost)) or type(innermost).__name__


def _detail(error: GithubException) -> str:
    """GitHub's message plus the validation errors, on one line."""
    data = error.data if isinstance(error.data, dict) else {}
    message = str(data.get("message") or error.message or "no message")
    problems = [
        _one_line(str(item.get("message") or f"{item.get('field')} {item.get('code')}"))
        for item in data.get("errors") or []
        if isinstance(item, dict)
    ]
    return _one_line(f"{message} ({'; '.join(problems)})" if problems else message)


def _payload(deployment: Deployment) -> dict[str, Any]:
    try:
        payload = deployment.payload
    except BadAttributeException:  # a payload stored as a string by some other tool
        return {}
    return payload if isinstance(payload, dict) else {}


class GitHubRecorder:
    """Records deployments, releases and PR comments for one repository."""

    def __init__(
        self,
        token: str,
        repository: str,
        api_url: str = DEFAULT_API_URL,
        *,
        log_url: str | None = None,
        timeout: int = 10,
        retries: int = 2,
        pace_writes: bool | None = None,
    ) -> None:
        """`log_url` goes on every deployment status (the Actions run). `retries` applies to
        connection failures and to 5xx answers to GETs only: a retried POST could record twice.
        `pace_writes` keeps PyGithub's 1 s between writes (GitHub's secondary rate limits); by
        default it is on except for a server on loopback, which has no such limits."""
        owner, _, name = repository.partition("/")
        if not owner or not name or "/" in name:
            raise GitHubConfigError(
                f"GITHUB_REPOSITORY must be owner/name, got {repository!r}",
                hint="Set GITHUB_REPOSITORY like acme/model (GitHub Actions sets it).",
            )
        _check_api_url(api_url)
        self.repository = repository
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.log_url = log_url
        pace = not _is_loopback(self.api_url) if pace_writes is None else pace_writes
        retry = Retry(
            total=retries,
            backoff_factor=0.5,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            raise_on_status=False,  # hand the last answer to PyGithub, which raises on it
            respect_retry_after_header=False,  # never wait minutes on a Retry-After
        )
        self._github = Github(
            auth=Auth.Token(token),
            base_url=self.api_url,
            timeout=timeout,
            retry=retry,
            per_page=100,
            # lazy (PyGithub >= 2.9.1): no GET for objects only addressed (repo, issue, deployment)
            lazy=True,
            seconds_between_requests=0.25 if pace else None,
            seconds_between_writes=1.0 if pace else None,
        )
        self._repo: Repository = self._github.get_repo(repository)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], **options: Any) -> GitHubRecorder | None:
        """A recorder from GitHub Actions' variables, or None without a token or repository."""
        token = environ.get("GITHUB_TOKEN", "").strip()
        repository = environ.get("GITHUB_REPOSITORY", "").strip()
        if not token or not repository:
            return None
        run_id = environ.get("GITHUB_RUN_ID", "").strip()
        if run_id and "log_url" not in options:
            server = environ.get("GITHUB_SERVER_URL", "").strip() or DEFAULT_SERVER_URL
            options["log_url"] = f"{server.rstrip('/')}/{repository}/actions/runs/{run_id}"
        api_url = environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL
        return cls(token, repository, api_url, **options)

    def close(self) -> None:
        self._github.close()

    def __enter__(self) -> GitHubRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _calling(self, action: str, permission: str) -> Iterator[None]:
        """Turn whatever PyGithub or the network raises during `action` into one GitHubError."""
        try:
            yield
        except BadCredentialsException as error:
            raise GitHubError(
                f"GitHub rejected the token while {action} (401 Bad credentials)",
                hint="check GITHUB_TOKEN: it is missing, mistyped or expired",
            ) from error
        except UnknownObjectException as error:
            raise GitHubError(
                f"GitHub answered 404 Not Found while {action} in {self.repository}",
                hint=f"check GITHUB_REPOSITORY and that the token can see it ({permission})",
            ) from error
        except RateLimitExceededException as error:
            raise GitHubError(
                f"GitHub rate limit hit while {action}: {_detail(error)}",
                hint="wait for the limit to reset, then re-run the step",
            ) from error
        except GithubException as error:
            hint = {
                403: f"the token lacks a permission: grant `permissions: {permission}` to the workflow job",
                422: "GitHub refused the request as invalid; see the message",
            }.get(error.status, "GitHub may be having trouble; re-run the step")
            raise GitHubError(f"GitHub answered {error.status} while {action}: {_detail(error)}", hint=hint) from error
        except OSError as error:  # requests' ConnectionError and Timeout are OSErrors
            raise GitHubError(
                f"could not reach GitHub at {self.api_url} while {action}: {_reason(error, self.timeout)}",
                hint="Check GITHUB_API_URL and that the network reaches it.",
            ) from error

    # -- deployments ----------------------------------------------------------------------------

    def start_deployment(
        self, environment: str, version: str, ref: str, digest: str, description: str, *, production: bool = False
    ) -> int:
        """Create a deployment of `ref` to `environment` and mark it in progress; returns its id.
        `production` is the environment's `delivery.github_release` (the one users are served from)."""
        with self._calling(f"creating a deployment of {version} to {environment}", "deployments: write"):
            deployment = self._repo.create_deployment(
                ref=ref,
                task=DEPLOY_TASK,
                auto_merge=False,  # the tag is what ships; never merge the default branch into it
                required_contexts=[],  # the pipeline's own checks gate the release, not statuses
                payload={"version": version, "digest": digest},
                environment=environment,
                description=description[:_DESCRIPTION_MAX],
                transient_environment=False,
                production_environment=production,
            )
            self._status(deployment, "in_progress", description, environment_url="")
            return int(deployment.id)

    def finish_deployment(self, deployment_id: int, state: FinishState, environment_url: str, description: str) -> None:
        """Mark a deployment as succeeded or failed, with the URL it serves at."""
        if state not in _FINISH_STATES:
            raise ValueError(f"state must be one of {sorted(_FINISH_STATES)}, got {state!r}")
        with self._calling(f"setting deployment {deployment_id} to {state}", "deployments: write"):
            deployment = self._repo.get_deployment(deployment_id)
            self._status(deployment, state, description, environment_url=environment_url)

    def progress(self, deployment_id: int, description: str) -> None:
        """One more `in_progress` status: a step of the rollout and its figures (e.g. the model gate's)."""
        with self._calling(f"reporting progress of deployment {deployment_id}", "deployments: write"):
            self._status(self._repo.get_deployment(deployment_id), "in_progress", description, environment_url="")

    def _status(self, deployment: Deployment, state: str, description: str, environment_url: str) -> None:
        deployment.create_status(
            state,
            description=description[:_DESCRIPTION_MAX],
            # NotSet leaves a field out of the request; GitHub treats absent and "" alike
            environment_url=environment_url or NotSet,
            target_url=self.log_url or NotSet,  # GitHub shows it as the deployment's log
        )

    def _records(self, environment: str, version: str | None = None) -> Iterator[DeploymentRecord]:
        """The pipeline's deployments to `environment` (of `version` only, when given), newest first
        (lazily paginated; statuses are read only for the deployments yielded)."""
        listing = self._repo.get_deployments(environment=environment, task=DEPLOY_TASK)
        for scanned, deployment in enumerate(listing):
            if scanned >= _SCAN_LIMIT:
                return
            payload = _payload(deployment)
            if "version" not in payload or "digest" not in payload:
                continue  # not the pipeline's (e.g. created by an Actions job's environment)
            if version is not None and str(payload["version"]) != version:
                continue
            statuses = list(deployment.get_statuses().get_page(0))  # newest first
            active = next((s.state for s in statuses if s.state != "inactive"), None)
            yield DeploymentRecord(
                id=int(deployment.id),
                environment=deployment.environment,
                version=str(payload["version"]),
                digest=str(payload["digest"]),
                ref=deployment.ref,
                sha=deployment.sha,
                created_at=deployment.created_at,
                state=statuses[0].state if statuses else None,
                succeeded=active == "success",
                url=next((s.environment_url for s in statuses if s.environment_url), None),
                log_url=next((s.target_url for s in statuses if s.target_url), None),
            )

    def deployments(self, environment: str, limit: int = 10) -> list[DeploymentRecord]:
        """The newest `limit` pipeline deployments to `environment`, newest first."""
        found: list[DeploymentRecord] = []
        if limit <= 0:
            return found
        with self._calling(f"listing deployments to {environment}", "deployments: read"):
            for record in self._records(environment):
                found.append(record)
                if len(found) >= limit:
                    break
        return found

    def unfinished(self, environment: str, limit: int = _UNFINISHED_SCAN) -> list[DeploymentRecord]:
        """Among the newest `limit` pipeline deployments to `environment`, those whose newest status is
        still pending, queued or in_progress (or that have none): deploys of one environment never
        overlap, so at the start of a run these were left by a run that was killed or timed out."""
        found: list[DeploymentRecord] = []
        with self._calling(f"looking up unfinished deployments to {environment}", "deployments: read"):
            for scanned, record in enumerate(self._records(environment)):
                if scanned >= limit:
                    break
                if record.state is None or record.state in _UNFINISHED_STATES:
                    found.append(record)
        return found

    def deployments_of(self, environment: str, version: str) -> list[DeploymentRecord]:
        """Every pipeline deployment of `version` to `environment` (among the newest scanned), newest first."""
        with self._calling(f"listing deployments of {version} to {environment}", "deployments: read"):
            return list(self._records(environment, version))

    def made_by_this_run(self, record: DeploymentRecord) -> bool:
        """Whether this workflow run (an earlier attempt of it: "Re-run jobs" keeps the run id) wrote
        the record's statuses."""
        return bool(self.log_url) and record.log_url == self.log_url

    def succeeded(self, environment: str, version: str) -> DeploymentRecord | None:
        """The newest deployment of `version` to `environment` that succeeded (even if a later one
        replaced it), or None: whether that version ever released there."""
        with self._calling(f"looking up deployments of {version} to {environment}", "deployments: read"):
            return next((r for r in self._records(environment, version) if r.succeeded), None)

    def previous_successful(self, environment: str) -> DeploymentRecord | None:
        """The successful deployment before the current one (the newest successful), skipping
        redeploys of the current digest: what "roll back to previous" means."""
        current: DeploymentRecord | None = None
        with self._calling(f"looking up deployments to {environment}", "deployments: read"):
            for record in self._records(environment):
                if not record.succeeded:
                    continue
                if current is None:
                    current = record
                elif record.digest != current.digest:
                    return record
        return None

    # -- releases and comments ------------------------------------------------------------------

    def create_release(self, tag: str, name: str, body: str, *, prerelease: bool = False) -> str:
        """Create the release for `tag`, or update its name and body if it exists; returns its
        web URL. Create-then-update rather than look-up-then-create: two runs cannot race."""
        with self._calling(f"recording release {tag}", "contents: write"):
            try:
                release = self._repo.create_git_release(tag=tag, name=name, message=body, prerelease=prerelease)
            except GithubException as error:
                if error.status != 422 or "already_exists" not in str(error.data):
                    raise
                existing = self._repo.get_release(tag)
                release = existing.update_release(name=name, message=body, prerelease=prerelease)
            return str(release.html_url)

    def own_login(self) -> str:
        """The login this token writes as: GET /user, or for Actions' GITHUB_TOKEN (an integration,
        which GitHub refuses /user with 403) the Actions bot's."""
        try:
            return str(self._github.get_user().login)
        except GithubException as error:
            if error.status == 403:
                return ACTIONS_BOT
            raise

    def upsert_pr_comment(self, pr_number: int, marker: str, body: str) -> str:
        """Edit this token's own PR comment that carries `marker` (e.g. `<!-- pipeline:template-diff -->`),
        or create one; returns its web URL. The marker is prepended to `body` when missing.

        Found by marker AND author: anyone can post a comment with the marker, and editing theirs
        fails with 403, so the diff would never be posted."""
        text = body if marker in body else f"{marker}\n{body}"
        with self._calling(f"commenting on pull request #{pr_number}", "pull-requests: write"):
            me = self.own_login()
            issue = self._repo.get_issue(pr_number)
            for comment in issue.get_comments():
                if marker in (comment.body or "") and comment.user is not None and comment.user.login == me:
                    if comment.body != text:
                        comment.edit(text)
                    return str(comment.html_url)
            return str(issue.create_comment(text).html_url)
