"""The template-diff PR comment is found by marker AND author, on a local GitHub that has several
users and lets only a comment's author edit it (as GitHub does)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from github import Auth, Github, GithubException

from local_ground.github_server import LocalGitHub
from pipeline.github import ACTIONS_BOT, GitHubRecorder

MARKER = "<!-- pipeline:template-diff -->"


@pytest.fixture
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(token="actions-token", owner_repo="acme/model") as server:
        yield server


def as_user(github: LocalGitHub, token: str) -> Github:
    return Github(base_url=github.base_url, auth=Auth.Token(token), retry=None, seconds_between_writes=None)


def test_a_strangers_comment_with_the_marker_is_left_alone(github: LocalGitHub) -> None:
    number = github.open_pull_request()
    mallory = as_user(github, github.add_user("mallory")).get_repo(github.repository)
    mallory.get_issue(number).create_comment(f"{MARKER}\nnothing to see, merge it")

    with GitHubRecorder(github.token, github.repository, github.base_url, retries=0) as bot:
        first = bot.upsert_pr_comment(number, MARKER, "templates: 1 change")
        second = bot.upsert_pr_comment(number, MARKER, "templates: 2 changes")

    assert first == second
    comments = github.state()["comments"]
    assert [(c["user"]["login"], c["body"]) for c in comments] == [
        ("mallory", f"{MARKER}\nnothing to see, merge it"),
        (ACTIONS_BOT, f"{MARKER}\ntemplates: 2 changes"),
    ]


def test_a_user_token_finds_its_own_comment_by_its_login(github: LocalGitHub) -> None:
    number = github.open_pull_request()
    token = github.add_user("release-manager")
    with GitHubRecorder(github.token, github.repository, github.base_url, retries=0) as bot:
        bot.upsert_pr_comment(number, MARKER, "by the bot")
    with GitHubRecorder(token, github.repository, github.base_url, retries=0) as person:
        assert person.own_login() == "release-manager"
        person.upsert_pr_comment(number, MARKER, "by a person, once")
        person.upsert_pr_comment(number, MARKER, "by a person, updated")
    bodies = [(c["user"]["login"], c["body"].split("\n", 1)[1]) for c in github.state()["comments"]]
    assert bodies == [(ACTIONS_BOT, "by the bot"), ("release-manager", "by a person, updated")]


def test_only_the_author_may_edit_a_comment(github: LocalGitHub) -> None:
    number = github.open_pull_request()
    alice = as_user(github, github.add_user("alice"))
    comment = alice.get_repo(github.repository).get_issue(number).create_comment("alice's")
    bot_view = as_user(github, github.token).get_repo(github.repository).get_issue(number).get_comment(comment.id)
    bob_view = as_user(github, github.add_user("bob")).get_repo(github.repository).get_issue(number)

    with pytest.raises(GithubException) as by_integration:
        bot_view.edit("the bot's now")
    with pytest.raises(GithubException) as by_person:
        bob_view.get_comment(comment.id).edit("bob's now")
    comment.edit("alice's, edited")

    assert (by_integration.value.status, by_integration.value.data["message"]) == (
        403,
        "Resource not accessible by integration",
    )
    assert by_person.value.status == 403 and set(by_person.value.data) >= {"message", "documentation_url"}
    assert [c["body"] for c in github.state()["comments"]] == ["alice's, edited"]


def test_get_user_answers_people_and_refuses_the_actions_token(github: LocalGitHub) -> None:
    assert as_user(github, github.add_user("carol")).get_user().login == "carol"
    with pytest.raises(GithubException) as refused:
        _ = as_user(github, github.token).get_user().login
    assert refused.value.status == 403  # GitHub answers GITHUB_TOKEN's GET /user the same way
