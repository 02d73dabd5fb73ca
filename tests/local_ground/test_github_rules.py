"""The local GitHub refuses what GitHub refuses (local_ground/github_rules.py), each rule over raw HTTP
with and without the condition that triggers it, in GitHub's status and message."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from local_ground import github_rules
from local_ground.github_server import LocalGitHub
from tests.local_ground.test_github_server import call

DEPLOYMENTS = "/repos/acme/model/deployments"


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(token="s3cret", owner_repo="acme/model") as server:
        yield server


def deploy(github: LocalGitHub, **body: object) -> tuple[int, dict[str, object]]:
    status, answer, _ = call(github, "POST", DEPLOYMENTS, body)
    return status, answer


# --- CommitsMustExist -------------------------------------------------------------------------------


def test_a_deployment_of_a_sha_the_repository_does_not_have_is_422(github: LocalGitHub) -> None:
    unknown = "0123456789" * 4
    assert deploy(github, ref=unknown, auto_merge=False) == (
        422,
        {
            "message": f"No ref found for: {unknown}",
            "documentation_url": "https://docs.github.com/rest",
            "status": "422",
        },
    )
    known = github.state()["refs"]["refs/heads/main"]
    assert deploy(github, ref=known)[0] == 201


# --- DeploymentAutoMerge --------------------------------------------------------------------------


def test_a_tag_behind_the_default_branch_is_409_unless_auto_merge_is_false(github: LocalGitHub) -> None:
    github.create_tag("v1.0.0")
    assert deploy(github, ref="v1.0.0")[0] == 201  # not behind: nothing to merge
    github.push_commit("main")
    status, body = deploy(github, ref="v1.0.0")
    assert (status, body["message"]) == (409, "Conflict merging main into v1.0.0.")
    assert deploy(github, ref="v1.0.0", auto_merge=False)[0] == 201
    assert len(github.state()["deployments"]) == 2


def test_a_branch_behind_the_default_branch_is_merged_instead_of_deployed(github: LocalGitHub) -> None:
    base = github.state()["refs"]["refs/heads/main"]
    call(github, "POST", "/repos/acme/model/git/refs", {"ref": "refs/heads/feature", "sha": base})
    github.push_commit("main")
    status, body = deploy(github, ref="feature")
    assert (status, body) == (202, {"message": "Auto-merged main into feature on deployment."})
    assert github.state()["deployments"] == []  # GitHub merges and creates no deployment
    assert deploy(github, ref="feature")[0] == 201  # now up to date


# --- DeploymentRequiredContexts -------------------------------------------------------------------


def test_every_submitted_context_must_be_success_unless_required_contexts_says_otherwise(github: LocalGitHub) -> None:
    sha = github.create_tag("v1.0.0")
    assert (
        call(github, "POST", f"/repos/acme/model/statuses/{sha}", {"state": "success", "context": "ci/test"})[0] == 201
    )
    assert (
        call(github, "POST", f"/repos/acme/model/statuses/{sha}", {"state": "failure", "context": "ci/lint"})[0] == 201
    )
    status, body = deploy(github, ref="v1.0.0")
    assert (status, body["message"]) == (409, "Conflict: Commit status checks failed for v1.0.0.")
    assert body["errors"] == [
        {
            "resource": "Deployment",
            "field": "required_contexts",
            "code": "invalid",
            "contexts": [{"context": "ci/test", "state": "success"}, {"context": "ci/lint", "state": "failure"}],
        }
    ]
    assert deploy(github, ref="v1.0.0", required_contexts=["ci/test"])[0] == 201
    assert deploy(github, ref="v1.0.0", required_contexts=["ci/build"])[0] == 409  # not submitted yet
    assert deploy(github, ref="v1.0.0", required_contexts=[])[0] == 201


def test_a_commit_status_needs_a_commit_the_repository_has(github: LocalGitHub) -> None:
    unknown = "f" * 40
    status, body, _ = call(github, "POST", f"/repos/acme/model/statuses/{unknown}", {"state": "success"})
    assert (status, body["message"]) == (422, f"No commit found for SHA: {unknown}")


# --- StatusDescriptionLimit -----------------------------------------------------------------------


def test_a_deployment_status_description_over_140_characters_is_422(github: LocalGitHub) -> None:
    _, deployment = deploy(github, ref="main")
    statuses = f"{DEPLOYMENTS}/{deployment['id']}/statuses"
    status, body, _ = call(github, "POST", statuses, {"state": "success", "description": "x" * 141})
    assert (status, body["message"]) == (422, "Validation Failed")
    assert body["errors"] == [
        {
            "resource": "DeploymentStatus",
            "code": "custom",
            "field": "description",
            "message": "description is too long (maximum is 140 characters)",
        }
    ]
    assert call(github, "POST", statuses, {"state": "success", "description": "x" * 140})[0] == 201


# --- RateLimits -----------------------------------------------------------------------------------


def test_every_answer_carries_the_rate_limit_headers_of_its_token(github: LocalGitHub) -> None:
    _, _, first = call(github, "GET", "/repos/acme/model")
    _, _, second = call(github, "GET", "/repos/acme/model")
    assert (first["x-ratelimit-limit"], first["x-ratelimit-used"], first["x-ratelimit-remaining"]) == (
        "1000",
        "1",
        "999",
    )
    assert (second["x-ratelimit-used"], second["x-ratelimit-remaining"]) == ("2", "998")
    assert second["x-ratelimit-resource"] == "core" and int(second["x-ratelimit-reset"]) > datetime.now(UTC).timestamp()
    person = github.add_user("octocat")
    assert call(github, "GET", "/repos/acme/model", auth=f"token {person}")[2]["x-ratelimit-limit"] == "5000"


def test_a_token_over_its_hourly_limit_is_403_until_the_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github_rules, "GITHUB_TOKEN_LIMIT", 2)
    now = [datetime(2024, 5, 1, 12, 0, tzinfo=UTC)]
    with LocalGitHub(token="s3cret", owner_repo="acme/model", clock=lambda: now[0]) as github:
        assert [call(github, "GET", "/repos/acme/model")[0] for _ in range(2)] == [200, 200]
        status, body, headers = call(github, "GET", "/repos/acme/model")
        assert (status, body["message"]) == (403, "API rate limit exceeded for installation ID 41898282.")
        assert headers["x-ratelimit-remaining"] == "0"
        now[0] += timedelta(hours=1)
        assert call(github, "GET", "/repos/acme/model")[0] == 200


def test_more_than_80_writes_a_minute_hit_the_secondary_limit() -> None:
    now = [datetime(2024, 5, 1, 12, 0, tzinfo=UTC)]
    with LocalGitHub(token="s3cret", owner_repo="acme/model", clock=lambda: now[0]) as github:
        sha = github.state()["refs"]["refs/heads/main"]
        path = f"/repos/acme/model/statuses/{sha}"
        assert {call(github, "POST", path, {"state": "success"})[0] for _ in range(80)} == {201}
        assert call(github, "GET", "/repos/acme/model")[0] == 200  # reads do not count
        status, body, headers = call(github, "POST", path, {"state": "success"})
        assert status == 403 and body["message"].startswith("You have exceeded a secondary rate limit.")
        assert headers["retry-after"] == "60"
        now[0] += timedelta(minutes=1)
        assert call(github, "POST", path, {"state": "success"})[0] == 201


# --- TokenPermissions -----------------------------------------------------------------------------


def test_a_token_without_the_permission_is_403_resource_not_accessible(github: LocalGitHub) -> None:
    reader = github.add_token({"deployments": "read"})
    status, body, _ = call(github, "POST", DEPLOYMENTS, {"ref": "main"}, auth=f"token {reader}")
    assert (status, body["message"]) == (403, "Resource not accessible by integration")
    assert call(github, "GET", DEPLOYMENTS, auth=f"token {reader}")[0] == 200
    assert call(github, "POST", "/repos/acme/model/releases", {"tag_name": "v1"}, auth=f"token {reader}")[0] == 403
    writer = github.add_token({"deployments": "write", "contents": "write"})
    assert call(github, "POST", DEPLOYMENTS, {"ref": "main"}, auth=f"token {writer}")[0] == 201
    assert call(github, "POST", "/repos/acme/model/releases", {"tag_name": "v1"}, auth=f"token {writer}")[0] == 201
    assert call(github, "GET", "/repos/acme/model", auth=f"token {reader}")[0] == 200  # metadata: every token
