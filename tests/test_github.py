"""GitHubRecorder through real PyGithub against the local GitHub server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from github import Auth, Github, GithubException
from github.Repository import Repository

from local_ground.github_server import LocalGitHub
from pipeline.errors import GitHubConfigError, GitHubError
from pipeline.github import DeploymentRecord, FinishState, GitHubRecorder

MARKER = "<!-- pipeline:template-diff -->"


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(token="s3cret", owner_repo="acme/model") as server:
        for tag in ("v1.0.0", "v1.1.0", "v1.2.0"):
            server.create_tag(tag)
        yield server


@pytest.fixture
def recorder(github: LocalGitHub) -> Iterator[GitHubRecorder]:
    with GitHubRecorder(github.token, github.repository, github.base_url, retries=0) as made:
        yield made


def someone_else(github: LocalGitHub) -> Repository:
    """The repository through plain PyGithub: another tool writing to the same repository."""
    client = Github(
        base_url=github.base_url,
        auth=Auth.Token(github.token),
        retry=None,
        seconds_between_requests=None,
        seconds_between_writes=None,
    )
    return client.get_repo(github.repository)


def release(recorder: GitHubRecorder, environment: str, version: str, state: FinishState) -> int:
    """One pipeline run: start, then finish with `state`."""
    deployment_id = recorder.start_deployment(
        environment, version, ref=version, digest=f"sha256:{version}", description=version
    )
    recorder.finish_deployment(deployment_id, state, f"http://{environment}.example", f"{version} {state}")
    return deployment_id


def test_from_environ_needs_token_and_repository(github: LocalGitHub) -> None:
    assert GitHubRecorder.from_environ({}) is None
    assert GitHubRecorder.from_environ({"GITHUB_TOKEN": "x"}) is None
    assert GitHubRecorder.from_environ({"GITHUB_REPOSITORY": "acme/model"}) is None
    made = GitHubRecorder.from_environ(
        {
            "GITHUB_TOKEN": github.token,
            "GITHUB_REPOSITORY": "acme/model",
            "GITHUB_API_URL": github.base_url,
            "GITHUB_SERVER_URL": "https://github.example",
            "GITHUB_RUN_ID": "42",
        }
    )
    assert made is not None
    assert made.api_url == github.base_url
    assert made.log_url == "https://github.example/acme/model/actions/runs/42"
    made.close()


def test_from_environ_defaults_to_github_dot_com() -> None:
    made = GitHubRecorder.from_environ({"GITHUB_TOKEN": "x", "GITHUB_REPOSITORY": "acme/model"})
    assert made is not None and made.api_url == "https://api.github.com"
    made.close()  # lazy: nothing was sent


def test_a_malformed_repository_is_a_github_error() -> None:
    with pytest.raises(GitHubError, match="owner/name"):
        GitHubRecorder("x", "just-a-name")


def pipeline_status(cwd: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """`pipeline status` with GitHub's variables set (and AWS aimed at nothing: it must not get that far)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GITHUB_"))}
    env.update(AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_ENDPOINT_URL="http://127.0.0.1:9")
    env.update({"GITHUB_TOKEN": "x", "GITHUB_REPOSITORY": "o/r", **variables})
    command = [sys.executable, "-m", "pipeline", "status", "--env", "staging"]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("variables", "line"),
    [
        (
            {"GITHUB_REPOSITORY": "bad"},
            "error: GITHUB_REPOSITORY must be owner/name, got 'bad'. "
            "Set GITHUB_REPOSITORY like acme/model (GitHub Actions sets it).",
        ),
        *(
            (
                {"GITHUB_API_URL": url},
                f"error: GITHUB_API_URL {url!r} is not an http(s) URL. Unset it for https://api.github.com, "
                "or set your server's API (GitHub Enterprise: https://HOST/api/v3).",
            )
            for url in ("notaurl", "ftp://x", "http://[::1", "http://x:abc")
        ),
    ],
)
def test_a_malformed_github_variable_is_one_line_and_exit_2(
    project_root: Path, variables: dict[str, str], line: str
) -> None:
    result = pipeline_status(project_root, **variables)
    assert "Traceback" not in result.stderr
    assert [text for text in result.stderr.splitlines() if text.startswith("error:")] == [line]
    assert result.returncode == 2


def test_malformed_github_variables_are_refused_before_any_request() -> None:
    with pytest.raises(GitHubConfigError) as raised:
        GitHubRecorder("x", "acme/model", "notaurl")
    assert raised.value.exit_code == 2
    assert GitHubRecorder("x", "acme/model", "http://[::1]:8080/api/v3").api_url == "http://[::1]:8080/api/v3"


def test_start_creates_a_deployment_in_progress(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    deployment_id = recorder.start_deployment(
        "production", "v1.0.0", ref="v1.0.0", digest="sha256:abc", description="release v1.0.0", production=True
    )
    [deployment] = github.state()["deployments"]
    assert deployment["id"] == deployment_id
    assert deployment["payload"] == {"version": "v1.0.0", "digest": "sha256:abc"}
    assert deployment["environment"] == "production"
    assert deployment["production_environment"] is True
    assert deployment["transient_environment"] is False
    assert [s["state"] for s in deployment["statuses"]] == ["in_progress"]


def test_statuses_and_listing_round_trip(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    first = release(recorder, "staging", "v1.0.0", "success")
    second = release(recorder, "staging", "v1.1.0", "failure")
    release(recorder, "production", "v1.0.0", "success")

    records = recorder.deployments("staging", limit=10)
    assert [r.id for r in records] == [second, first]
    newest = records[0]
    assert isinstance(newest, DeploymentRecord)
    assert (newest.version, newest.digest, newest.ref) == ("v1.1.0", "sha256:v1.1.0", "v1.1.0")
    assert (newest.state, newest.succeeded) == ("failure", False)
    assert newest.url == "http://staging.example"
    assert newest.created_at.tzinfo is not None
    assert (records[1].state, records[1].succeeded) == ("success", True)
    assert [r.id for r in recorder.deployments("staging", limit=1)] == [second]
    statuses = github.state()["deployments"][0]["statuses"]
    assert [s["state"] for s in statuses] == ["in_progress", "success"]


def test_listing_skips_deployments_that_are_not_the_pipelines(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    ours = release(recorder, "production", "v1.0.0", "success")
    # what an Actions job with `environment: production` creates: no version or digest
    someone_else(github).create_deployment(
        ref="v1.1.0", environment="production", required_contexts=[], auto_merge=False
    )
    assert [r.id for r in recorder.deployments("production")] == [ours]


def test_previous_successful_is_the_success_before_the_current_one(
    recorder: GitHubRecorder,
) -> None:
    assert recorder.previous_successful("production") is None
    release(recorder, "production", "v1.0.0", "success")
    assert recorder.previous_successful("production") is None  # only a current one
    release(recorder, "production", "v1.1.0", "success")
    release(recorder, "production", "v1.2.0", "failure")
    previous = recorder.previous_successful("production")
    assert previous is not None and previous.version == "v1.0.0"


def test_previous_successful_survives_auto_inactive_and_redeploys(
    recorder: GitHubRecorder,
) -> None:
    # staging is not a production environment: GitHub marks older successes inactive
    release(recorder, "staging", "v1.0.0", "success")
    release(recorder, "staging", "v1.1.0", "success")
    release(recorder, "staging", "v1.1.0", "success")  # a redeploy of the current version
    assert recorder.deployments("staging")[-1].state == "inactive"
    previous = recorder.previous_successful("staging")
    assert previous is not None and previous.version == "v1.0.0"


def test_finish_rejects_a_state_that_is_not_an_outcome(recorder: GitHubRecorder) -> None:
    deployment_id = recorder.start_deployment("staging", "v1.0.0", "v1.0.0", "sha256:a", "x")
    with pytest.raises(ValueError):
        recorder.finish_deployment(deployment_id, "in_progress", "", "x")  # type: ignore[arg-type]


def test_unknown_ref_is_a_github_error_with_the_message(recorder: GitHubRecorder) -> None:
    with pytest.raises(GitHubError) as raised:
        recorder.start_deployment("staging", "v9.9.9", "v9.9.9", "sha256:a", "x")
    assert "422" in raised.value.message and "No ref found for: v9.9.9" in raised.value.message
    assert "\n" not in raised.value.one_line()


def test_create_release_is_idempotent(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    url = recorder.create_release("v1.0.0", "v1.0.0", "first notes")
    assert url == f"{github.base_url}/acme/model/releases/tag/v1.0.0"
    again = recorder.create_release("v1.0.0", "v1.0.0 (again)", "second notes")
    assert again == url
    [only] = github.state()["releases"]
    assert (only["name"], only["body"]) == ("v1.0.0 (again)", "second notes")


def test_pr_comment_is_updated_in_place(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    number = github.open_pull_request()
    # someone else's comment first, so the search has to skip it
    someone_else(github).get_issue(number).create_comment("looks good")
    first = recorder.upsert_pr_comment(number, MARKER, "templates: 1 change")
    second = recorder.upsert_pr_comment(number, MARKER, f"{MARKER}\ntemplates: 2 changes")
    assert first == second
    comments = github.state()["comments"]
    assert [c["body"] for c in comments] == ["looks good", f"{MARKER}\ntemplates: 2 changes"]
    # an unchanged body is not rewritten
    writes = len([r for r in github.state()["requests"] if r[0] == "PATCH"])
    recorder.upsert_pr_comment(number, MARKER, "templates: 2 changes")
    assert len([r for r in github.state()["requests"] if r[0] == "PATCH"]) == writes


def test_bad_token_is_a_github_error_with_a_hint(github: LocalGitHub) -> None:
    with GitHubRecorder("wrong", github.repository, github.base_url, retries=0) as recorder:
        with pytest.raises(GitHubError) as raised:
            recorder.deployments("production")
    assert "401 Bad credentials" in raised.value.message
    assert raised.value.hint and "GITHUB_TOKEN" in raised.value.hint


def test_unknown_repository_is_a_github_error(github: LocalGitHub) -> None:
    with GitHubRecorder(github.token, "acme/other", github.base_url, retries=0) as recorder:
        with pytest.raises(GitHubError, match="404 Not Found.*acme/other"):
            recorder.create_release("v1.0.0", "v1.0.0", "notes")


def test_server_errors_on_reads_are_retried(github: LocalGitHub) -> None:
    github.fail_next(502, method="GET")
    with GitHubRecorder(github.token, github.repository, github.base_url, retries=1) as recorder:
        assert recorder.deployments("production") == []
    statuses = [status for method, path, status in github.state()["requests"] if method == "GET"]
    assert statuses == [502, 200]


def test_server_errors_on_writes_are_not_retried(github: LocalGitHub) -> None:
    github.fail_next(502, method="POST")
    with GitHubRecorder(github.token, github.repository, github.base_url, retries=2) as recorder:
        with pytest.raises(GitHubError, match="502"):
            recorder.start_deployment("staging", "v1.0.0", "v1.0.0", "sha256:a", "x")
    assert github.state()["deployments"] == []


def test_unreachable_github_is_a_github_error() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with GitHubRecorder("x", "acme/model", f"http://127.0.0.1:{port}", retries=0) as recorder:
        with pytest.raises(GitHubError, match="could not reach GitHub") as raised:
            recorder.deployments("production")
    # The socket's words, not the urllib3 reprs requests wraps them in
    assert raised.value.one_line() == (
        f"could not reach GitHub at http://127.0.0.1:{port} while listing deployments to production: "
        "Connection refused. Check GITHUB_API_URL and that the network reaches it."
    )


def test_a_silent_github_is_a_timeout_in_words() -> None:
    with socket.socket() as sock:  # accepts connections, never answers
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with GitHubRecorder("x", "acme/model", url, retries=0, timeout=1) as recorder:
            with pytest.raises(GitHubError) as raised:
                recorder.deployments("production")
    assert raised.value.message == (
        f"could not reach GitHub at {url} while listing deployments to production: no answer within 1 s"
    )


def test_statuses_carry_the_run_log_url(github: LocalGitHub) -> None:
    log = "https://github.example/acme/model/actions/runs/42"
    with GitHubRecorder(github.token, github.repository, github.base_url, log_url=log) as recorder:
        release(recorder, "staging", "v1.0.0", "success")
    statuses = github.state()["deployments"][0]["statuses"]
    assert [s["log_url"] for s in statuses] == [log, log]
    assert statuses[-1]["environment_url"] == "http://staging.example"


def test_pygithub_follows_the_servers_link_headers(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    ids = [release(recorder, "staging", "v1.0.0", "failure") for _ in range(5)]
    client = Github(
        base_url=github.base_url,
        auth=Auth.Token(github.token),
        per_page=2,
        seconds_between_requests=None,
    )
    listing = client.get_repo(github.repository).get_deployments(environment="staging")
    assert [d.id for d in listing] == ids[::-1]
    assert listing.totalCount == 5
    pages = [p for m, p, s in github.state()["requests"] if m == "GET" and "deployments" in p]
    assert len(pages) >= 3


def test_writes_are_paced_except_on_loopback() -> None:
    from pipeline.github import _is_loopback

    assert _is_loopback("http://127.0.0.1:8080") and _is_loopback("http://localhost:1")
    assert not _is_loopback("https://api.github.com")
    assert not _is_loopback("https://ghe.example/api/v3")


def test_unfinished_deployments_are_the_ones_a_killed_run_left(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    release(recorder, "staging", "v1.0.0", "success")
    left = recorder.start_deployment("staging", "v1.1.0", ref="v1.1.0", digest="sha256:b", description="x")
    someone_else(github).create_deployment(  # created, killed before its first status
        ref="v1.2.0", environment="staging", payload={"version": "v1.2.0", "digest": "sha256:c"}, auto_merge=False
    )
    release(recorder, "production", "v1.1.0", "failure")
    unfinished = recorder.unfinished("staging")
    assert [(r.version, r.state) for r in unfinished] == [("v1.2.0", None), ("v1.1.0", "in_progress")]
    assert unfinished[1].id == left
    assert recorder.unfinished("production") == []


def test_succeeded_and_which_run_made_it(github: LocalGitHub) -> None:
    run = {"GITHUB_TOKEN": github.token, "GITHUB_REPOSITORY": github.repository, "GITHUB_API_URL": github.base_url}
    first = GitHubRecorder.from_environ({**run, "GITHUB_RUN_ID": "41"}, retries=0)
    other = GitHubRecorder.from_environ({**run, "GITHUB_RUN_ID": "42"}, retries=0)
    assert first is not None and other is not None
    release(first, "staging", "v1.0.0", "failure")
    assert first.succeeded("staging", "v1.0.0") is None
    done = release(first, "staging", "v1.0.0", "success")
    release(other, "staging", "v1.1.0", "success")  # marks v1.0.0's deployment inactive
    found = first.succeeded("staging", "v1.0.0")
    assert found is not None and found.id == done and found.log_url.endswith("/actions/runs/41")
    assert first.made_by_this_run(found) and not other.made_by_this_run(found)
    assert first.succeeded("production", "v1.0.0") is None
    assert [r.state for r in first.deployments_of("staging", "v1.0.0")] == ["inactive", "failure"]


# --- what GitHub refuses, and what the recorder passes so a tag deployment is never refused ---------


def test_a_tag_behind_main_with_failing_statuses_still_deploys(github: LocalGitHub, recorder: GitHubRecorder) -> None:
    """GitHub's defaults (auto_merge, every context success) refuse these with 409; the recorder turns both off."""
    github.push_commit("main")  # v1.0.0 is now behind the default branch
    github.set_commit_status("v1.0.0", "failure", "ci/lint")
    plain = someone_else(github)
    with pytest.raises(GithubException) as refused:
        plain.create_deployment(ref="v1.0.0", environment="staging")
    assert refused.value.status == 409 and refused.value.data["message"] == "Conflict merging main into v1.0.0."
    with pytest.raises(GithubException) as refused:
        plain.create_deployment(ref="v1.0.0", environment="staging", auto_merge=False)
    assert refused.value.data["message"] == "Conflict: Commit status checks failed for v1.0.0."
    deployment_id = recorder.start_deployment("staging", "v1.0.0", "v1.0.0", "sha256:a", "x" * 300)
    [deployment] = github.state()["deployments"]
    assert deployment["id"] == deployment_id
    assert [len(s["description"]) for s in deployment["statuses"]] == [140]  # GitHub's status limit


def test_a_token_without_deployments_write_is_a_github_error_naming_the_permission(github: LocalGitHub) -> None:
    token = github.add_token({"deployments": "read", "contents": "write"})
    with GitHubRecorder(token, github.repository, github.base_url, retries=0) as recorder:
        with pytest.raises(GitHubError) as raised:
            recorder.start_deployment("staging", "v1.0.0", "v1.0.0", "sha256:a", "x")
    assert "403" in raised.value.message and "Resource not accessible by integration" in raised.value.message
    assert raised.value.hint and "deployments: write" in raised.value.hint


def test_a_rate_limited_token_is_a_github_error_saying_so(github: LocalGitHub, monkeypatch: pytest.MonkeyPatch) -> None:
    from local_ground import github_rules

    monkeypatch.setattr(github_rules, "GITHUB_TOKEN_LIMIT", 1)
    with GitHubRecorder(github.token, github.repository, github.base_url, retries=0) as recorder:
        with pytest.raises(GitHubError) as raised:
            recorder.deployments("staging")
            recorder.deployments("production")
    assert "rate limit" in raised.value.message and "API rate limit exceeded" in raised.value.message
    assert raised.value.hint and "wait for the limit to reset" in raised.value.hint
