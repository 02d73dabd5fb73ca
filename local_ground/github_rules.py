"""What GitHub refuses, for the local GitHub server (github_server.py): each rule a named piece, as GitHub
documents it in its REST reference.

- CommitsMustExist: a deployment or ref names a commit GitHub has; any other 40-hex sha is "No ref found
  for" (422), as a branch or tag that does not exist. The repository's commits form a graph (parents), so
  a ref can be behind the default branch.
- DeploymentAutoMerge: `auto_merge` (default true) "is used to ensure that the requested ref is not behind
  the repository's default branch. If the ref is behind the default branch for the repository, we will
  attempt to merge it for you ... If merge conflicts prevent the merge from succeeding, the API will return
  a failure response" (REST reference, "Create a deployment"). Here a branch behind is merged (202
  "Auto-merged main into REF on deployment.", no deployment made); a tag or a sha cannot take a merge
  commit: 409 "Conflict merging main into REF.".
- DeploymentRequiredContexts: "By default, commit statuses for every submitted context must be in a
  success state. The required_contexts parameter allows you to specify a subset of contexts that must be
  success, or to specify contexts that have not yet been submitted" (same page): otherwise 409 "Conflict:
  Commit status checks failed for REF." with the contexts in `errors`.
- StatusDescriptionLimit: a deployment status's description: "The maximum description length is 140
  characters" (REST reference, "Create a deployment status"): 422 Validation Failed, code `custom`.
- RateLimits: every authenticated answer carries x-ratelimit-limit/-remaining/-used/-reset/-resource
  ("Rate limits for the REST API": GITHUB_TOKEN in Actions 1,000 requests per hour per repository, a
  personal token 5,000); over it: 403 "API rate limit exceeded for ..." with remaining 0. Secondary limit:
  "No more than 80 content-generating requests per minute": 403 "You have exceeded a secondary rate
  limit..." with retry-after.
- TokenPermissions: an integration token (GITHUB_TOKEN) has the permissions its job's `permissions:` grant
  (e.g. `deployments: write`, `contents: write`); an endpoint it lacks answers 403 "Resource not accessible
  by integration" ("Permissions required for GitHub Apps").
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

JSON = dict[str, Any]
RATE_LIMIT_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
DESCRIPTION_MAX = 140
GITHUB_TOKEN_LIMIT = 1000  # per hour, GITHUB_TOKEN in Actions (per repository)
PERSONAL_TOKEN_LIMIT = 5000  # per hour, a personal access token
WRITES_PER_MINUTE = 80  # secondary limit on content-generating requests
SECONDARY_RETRY_AFTER = 60
LEVELS = {"none": 0, "read": 1, "write": 2}
# Everything GITHUB_TOKEN may be granted (the workflow keys the server answers for), all write: a token
# made without a `permissions` map acts as the default permissive GITHUB_TOKEN.
ALL_WRITE = {
    key: "write"
    for key in ("actions", "contents", "deployments", "issues", "pull-requests", "statuses", "id-token", "checks")
}


# --- TokenPermissions ----------------------------------------------------------------------------

# (method, route under /repos/O/R) -> the permissions any one of which allows it, with the level.
_NEEDS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("GET", "deployments", ("deployments",), "read"),
    ("POST", "deployments", ("deployments",), "write"),
    ("GET", "releases", ("contents",), "read"),
    ("POST", "releases", ("contents",), "write"),
    ("PATCH", "releases", ("contents",), "write"),
    ("GET", "tags", ("contents",), "read"),
    ("GET", "git", ("contents",), "read"),
    ("POST", "git", ("contents",), "write"),
    ("GET", "issues", ("issues", "pull-requests"), "read"),
    ("POST", "issues", ("issues", "pull-requests"), "write"),
    ("PATCH", "issues", ("issues", "pull-requests"), "write"),
    ("GET", "pulls", ("pull-requests",), "read"),
    ("GET", "statuses", ("statuses",), "read"),
    ("POST", "statuses", ("statuses",), "write"),
    ("GET", "commits", ("statuses",), "read"),
)


def permitted(permissions: dict[str, str] | None, method: str, rest: str) -> bool:
    """Whether a token with `permissions` (None: a person's token, all it can see) may call `rest`."""
    if permissions is None:
        return True
    section = rest.strip("/").split("/", 1)[0]
    if not section:
        return True  # the repository itself: metadata, which every token reads
    for need_method, need_section, keys, level in _NEEDS:
        if need_method == method and need_section == section:
            return any(LEVELS.get(permissions.get(k, "none"), 0) >= LEVELS[level] for k in keys)
    return True


# --- CommitsMustExist, DeploymentAutoMerge, DeploymentRequiredContexts ---------------------------


@dataclass
class Commits:
    """The repository's commits (sha -> parents) and the commit statuses set on them."""

    parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    statuses: dict[str, list[JSON]] = field(default_factory=dict)  # sha -> statuses, oldest first

    def add(self, sha: str, *parents: str) -> None:
        self.parents.setdefault(sha, tuple(parents))

    def __contains__(self, sha: object) -> bool:
        return sha in self.parents

    def contains(self, descendant: str, ancestor: str) -> bool:
        """Whether `ancestor` is `descendant` or one of its ancestors."""
        seen, queue = set(), [descendant]
        while queue:
            sha = queue.pop()
            if sha == ancestor:
                return True
            if sha not in seen:
                seen.add(sha)
                queue.extend(self.parents.get(sha, ()))
        return False

    def combined(self, sha: str) -> dict[str, str]:
        """The newest state of each context on `sha` (GitHub's combined status)."""
        return {s["context"]: s["state"] for s in self.statuses.get(sha, [])}

    def failed_contexts(self, sha: str, required: list[str] | None) -> list[JSON] | None:
        """None when the statuses allow a deployment, else the contexts to report (GitHub's `contexts`)."""
        combined = self.combined(sha)
        names = list(combined) if required is None else required
        if all(combined.get(name) == "success" for name in names):
            return None
        return [{"context": name, "state": state} for name, state in combined.items()]


def merge_message(default_branch: str, ref: str) -> str:
    return f"Auto-merged {default_branch} into {ref} on deployment."


def conflict_message(default_branch: str, ref: str) -> str:
    return f"Conflict merging {default_branch} into {ref}."


def status_checks_message(ref: str) -> str:
    return f"Conflict: Commit status checks failed for {ref}."


# --- RateLimits ----------------------------------------------------------------------------------


@dataclass
class _Window:
    reset: datetime
    used: int = 0


@dataclass
class Refusal:
    status: int
    message: str
    headers: dict[str, str]


class RateLimits:
    """Primary (per token, per hour) and secondary (content-generating requests per minute) limits."""

    def __init__(self, clock: Callable[[], datetime], writes_per_minute: int = WRITES_PER_MINUTE) -> None:
        self._clock = clock
        self.writes_per_minute = writes_per_minute
        self._windows: dict[str, _Window] = {}
        self._writes: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def admit(self, token: str, limit: int, method: str, who: str) -> tuple[dict[str, str], Refusal | None]:
        """Count one request; its rate-limit headers, and a refusal when it is over a limit."""
        now = self._clock().astimezone(UTC)
        with self._lock:
            window = self._windows.get(token)
            if window is None or now >= window.reset:
                window = self._windows[token] = _Window(now + timedelta(hours=1))
            if window.used >= limit:
                headers = _headers(limit, window)
                return headers, Refusal(403, f"API rate limit exceeded for {who}.", headers)
            window.used += 1
            headers = _headers(limit, window)
            if method in ("POST", "PATCH", "PUT", "DELETE"):
                recent = self._writes.setdefault(token, deque())
                while recent and now - recent[0] >= timedelta(minutes=1):
                    recent.popleft()
                if len(recent) >= self.writes_per_minute:
                    return headers, Refusal(
                        403,
                        "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
                        "If you reach out to GitHub Support for help, please include the request ID local.",
                        {**headers, "retry-after": str(SECONDARY_RETRY_AFTER)},
                    )
                recent.append(now)
            return headers, None


def _headers(limit: int, window: _Window) -> dict[str, str]:
    return {
        "x-ratelimit-limit": str(limit),
        "x-ratelimit-remaining": str(max(0, limit - window.used)),
        "x-ratelimit-used": str(window.used),
        "x-ratelimit-reset": str(math.ceil(window.reset.timestamp())),
        "x-ratelimit-resource": "core",
    }
