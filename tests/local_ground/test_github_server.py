"""The local GitHub server over raw HTTP: auth, errors, pagination, lifecycle, as GitHub does."""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from local_ground.github_server import LocalGitHub


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(token="s3cret", owner_repo="acme/model") as server:
        yield server


def call(
    server: LocalGitHub,
    method: str,
    path: str,
    body: Any = None,
    *,
    auth: str | None = "token s3cret",
    raw: bytes | None = None,
) -> tuple[int, Any, dict[str, str]]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(server.base_url + path, data=data, method=method)
    if auth is not None:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def links(headers: dict[str, str]) -> dict[str, str]:
    return {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', headers.get("Link", ""))}


@pytest.mark.parametrize("auth", [None, "token wrong", "Bearer wrong", "Basic s3cret"])
def test_missing_or_wrong_token_is_401_bad_credentials(github: LocalGitHub, auth: str | None) -> None:
    status, body, _ = call(github, "GET", "/repos/acme/model", auth=auth)
    assert status == 401
    assert body["message"] == "Bad credentials"
    assert "documentation_url" in body


@pytest.mark.parametrize("auth", ["token s3cret", "Bearer s3cret"])
def test_token_and_bearer_schemes_both_work(github: LocalGitHub, auth: str) -> None:
    status, body, _ = call(github, "GET", "/repos/acme/model", auth=auth)
    assert status == 200
    assert body["full_name"] == "acme/model"
    assert body["url"] == f"{github.base_url}/repos/acme/model"


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/repos/acme/other"),
        ("GET", "/repos/acme/model/nothing-here"),
        ("GET", "/repos/acme/model/deployments/999"),
        ("GET", "/repos/acme/model/releases/tags/v9.9.9"),
        ("GET", "/repos/acme/model/releases/latest"),
        ("GET", "/repos/acme/model/pulls/1"),
        ("DELETE", "/repos/acme/model"),
    ],
)
def test_unknown_things_are_404_not_found(github: LocalGitHub, method: str, path: str) -> None:
    status, body, _ = call(github, method, path)
    assert (status, body["message"]) == (404, "Not Found")


def test_deployment_status_with_a_bad_state_is_422(github: LocalGitHub) -> None:
    _, deployment, _ = call(github, "POST", "/repos/acme/model/deployments", {"ref": "main"})
    status, body, _ = call(
        github,
        "POST",
        f"{deployment['url'].removeprefix(github.base_url)}/statuses",
        {"state": "done"},
    )
    assert status == 422
    assert body["message"] == "Validation Failed"
    assert body["errors"] == [{"resource": "DeploymentStatus", "code": "invalid", "field": "state"}]


def test_deployment_needs_a_ref_that_resolves(github: LocalGitHub) -> None:
    status, body, _ = call(github, "POST", "/repos/acme/model/deployments", {"environment": "x"})
    assert status == 422 and '"ref"' in body["message"]
    status, body, _ = call(github, "POST", "/repos/acme/model/deployments", {"ref": "v404"})
    assert (status, body["message"]) == (422, "No ref found for: v404")


def test_invalid_json_is_400(github: LocalGitHub) -> None:
    status, body, _ = call(github, "POST", "/repos/acme/model/deployments", raw=b"{not json")
    assert (status, body["message"]) == (400, "Problems parsing JSON")


def test_release_for_a_tag_twice_is_422_already_exists(github: LocalGitHub) -> None:
    status, first, headers = call(github, "POST", "/repos/acme/model/releases", {"tag_name": "v1.0.0"})
    assert status == 201 and headers["Location"] == first["url"]
    status, body, _ = call(github, "POST", "/repos/acme/model/releases", {"tag_name": "v1.0.0"})
    assert status == 422
    assert body["errors"] == [{"resource": "Release", "code": "already_exists", "field": "tag_name"}]
    # a release for a new tag created the tag at the default branch, as GitHub does
    _, tags, _ = call(github, "GET", "/repos/acme/model/tags")
    assert [tag["name"] for tag in tags] == ["v1.0.0"]


def test_deployments_paginate_newest_first_with_link_headers(github: LocalGitHub) -> None:
    for _ in range(5):
        call(
            github,
            "POST",
            "/repos/acme/model/deployments",
            {"ref": "main", "environment": "staging"},
        )
    call(
        github,
        "POST",
        "/repos/acme/model/deployments",
        {"ref": "main", "environment": "production"},
    )

    status, page1, headers = call(github, "GET", "/repos/acme/model/deployments?environment=staging&per_page=2")
    assert status == 200
    assert [d["id"] for d in page1] == [5, 4]
    rels = links(headers)
    assert set(rels) == {"next", "last"}
    assert rels["next"].startswith(github.base_url)
    assert "environment=staging" in rels["next"] and "page=2" in rels["next"]
    assert "page=3" in rels["last"]

    _, page3, headers = call(github, "GET", rels["last"].removeprefix(github.base_url))
    assert [d["id"] for d in page3] == [1]
    assert set(links(headers)) == {"first", "prev"}

    _, everything, headers = call(github, "GET", "/repos/acme/model/deployments")
    assert [d["id"] for d in everything] == [6, 5, 4, 3, 2, 1]
    assert "Link" not in headers  # one page: GitHub sends no Link header


def test_deployment_filters(github: LocalGitHub) -> None:
    github.create_tag("v1.0.0")
    call(github, "POST", "/repos/acme/model/deployments", {"ref": "v1.0.0", "environment": "staging"})
    call(
        github,
        "POST",
        "/repos/acme/model/deployments",
        {"ref": "main", "environment": "staging", "task": "deploy:migrations"},
    )
    for query, expected in [
        ("ref=v1.0.0", [1]),
        ("task=deploy:migrations", [2]),
        ("environment=production", []),
        ("environment=staging&task=deploy", [1]),
    ]:
        _, found, _ = call(github, "GET", f"/repos/acme/model/deployments?{query}")
        assert [d["id"] for d in found] == expected, query


def test_success_marks_earlier_successes_inactive_except_production(github: LocalGitHub) -> None:
    def deploy(environment: str) -> str:
        _, deployment, _ = call(
            github,
            "POST",
            "/repos/acme/model/deployments",
            {"ref": "main", "environment": environment},
        )
        path = f"{deployment['url'].removeprefix(github.base_url)}/statuses"
        call(github, "POST", path, {"state": "success"})
        return path

    first_staging, second_staging = deploy("staging"), deploy("staging")
    first_prod, _ = deploy("production"), deploy("production")
    assert [s["state"] for s in call(github, "GET", first_staging)[1]] == ["inactive", "success"]
    assert [s["state"] for s in call(github, "GET", second_staging)[1]] == ["success"]
    assert [s["state"] for s in call(github, "GET", first_prod)[1]] == ["success"]


def test_timestamps_come_from_the_injected_clock() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    with LocalGitHub(clock=lambda: now) as github:
        _, deployment, _ = call(
            github,
            "POST",
            "/repos/acme/model/deployments",
            {"ref": "main"},
            auth="token local-token",
        )
    assert deployment["created_at"] == "2024-05-01T12:00:00Z"


def test_git_refs_create_and_read_tags(github: LocalGitHub) -> None:
    status, body, _ = call(github, "POST", "/repos/acme/model/git/refs", {"ref": "refs/tags/v2", "sha": "a" * 40})
    assert (status, body["message"]) == (422, "Object does not exist")  # a sha the repository does not have
    sha = github.push_commit()
    status, ref, _ = call(github, "POST", "/repos/acme/model/git/refs", {"ref": "refs/tags/v2", "sha": sha})
    assert status == 201 and ref["object"]["sha"] == sha
    assert call(github, "POST", "/repos/acme/model/git/refs", {"ref": "refs/tags/v2", "sha": sha})[0] == 422
    assert call(github, "POST", "/repos/acme/model/git/refs", {"ref": "v3", "sha": sha})[0] == 422
    status, ref, _ = call(github, "GET", "/repos/acme/model/git/ref/tags/v2")
    assert (status, ref["ref"]) == (200, "refs/tags/v2")


def test_comments_need_an_existing_pull_request_and_a_body(github: LocalGitHub) -> None:
    assert call(github, "POST", "/repos/acme/model/issues/1/comments", {"body": "x"})[0] == 404
    number = github.open_pull_request()
    assert call(github, "POST", f"/repos/acme/model/issues/{number}/comments", {})[0] == 422
    status, comment, _ = call(github, "POST", f"/repos/acme/model/issues/{number}/comments", {"body": "x"})
    assert status == 201
    status, edited, _ = call(github, "PATCH", comment["url"].removeprefix(github.base_url), {"body": "y"})
    assert (status, edited["body"], edited["id"]) == (200, "y", comment["id"])


def test_injected_failure_answers_once(github: LocalGitHub) -> None:
    github.fail_next(502)
    assert call(github, "GET", "/repos/acme/model")[0] == 502
    assert call(github, "GET", "/repos/acme/model")[0] == 200


def test_state_is_a_copy_with_a_request_log(github: LocalGitHub) -> None:
    call(github, "GET", "/repos/acme/model")
    state = github.state()
    state["refs"].clear()
    assert github.state()["refs"]  # the copy did not touch the server
    assert state["requests"] == [("GET", "/repos/acme/model", 200)]


def test_exit_closes_the_port_and_leaves_no_thread() -> None:
    before = set(threading.enumerate())
    with LocalGitHub() as github:
        port = github.port
        # a client that connects and sends nothing must not hold the exit up
        idle = socket.create_connection(("127.0.0.1", port))
        assert call(github, "GET", "/repos/acme/model", auth="token local-token")[0] == 200
    idle.close()
    assert set(threading.enumerate()) <= before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_concurrent_writes_get_distinct_ids(github: LocalGitHub) -> None:
    number = github.open_pull_request()
    ids: list[int] = []

    def comment() -> None:
        for _ in range(5):
            _, body, _ = call(github, "POST", f"/repos/acme/model/issues/{number}/comments", {"body": "x"})
            ids.append(body["id"])

    workers = [threading.Thread(target=comment) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert sorted(ids) == list(range(1, 41))
