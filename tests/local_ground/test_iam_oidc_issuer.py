"""The local GitHub as GitHub Actions' OIDC issuer: public discovery and JWKS, RS256 tokens with GitHub's claims."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator

import jwt
import pytest

from local_ground.github_server import LocalGitHub
from local_ground.iam.oidc import GITHUB_ISSUER


@pytest.fixture(scope="module")
def github() -> Iterator[LocalGitHub]:
    with LocalGitHub(owner_repo="acme/iris-classifier") as server:
        yield server


def get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=5) as answer:  # no token: the issuer's documents are public
        document: dict[str, object] = json.loads(answer.read())
    return document


def test_discovery_and_jwks_verify_a_token(github: LocalGitHub) -> None:
    discovery = get(f"{github.base_url}/.well-known/openid-configuration")
    assert discovery["issuer"] == GITHUB_ISSUER
    assert discovery["jwks_uri"] == f"{GITHUB_ISSUER}/.well-known/jwks"
    [key] = get(f"{github.base_url}/.well-known/jwks")["keys"]  # type: ignore[misc]
    token = github.id_token(event_name="push", ref="refs/tags/v1.4.0", environment="production")
    assert jwt.get_unverified_header(token)["kid"] == key["kid"]
    claims = jwt.decode(token, jwt.PyJWK(key).key, algorithms=["RS256"], audience="sts.amazonaws.com")
    assert claims["iss"] == GITHUB_ISSUER
    assert claims["sub"] == "repo:acme/iris-classifier:environment:production"
    assert (claims["repository"], claims["ref"], claims["environment"], claims["event_name"]) == (
        "acme/iris-classifier",
        "refs/tags/v1.4.0",
        "production",
        "push",
    )
    assert claims["job_workflow_ref"] == "acme/iris-classifier/.github/workflows/release.yml@refs/tags/v1.4.0"
    assert claims["exp"] > claims["iat"]


@pytest.mark.parametrize(
    ("claims", "subject"),
    [
        ({"event_name": "push", "ref": "refs/tags/v1.4.0"}, "repo:acme/iris-classifier:ref:refs/tags/v1.4.0"),
        ({"event_name": "pull_request", "ref": "refs/pull/7/merge"}, "repo:acme/iris-classifier:pull_request"),
        (
            {"event_name": "workflow_dispatch", "ref": "refs/heads/main", "environment": "staging"},
            "repo:acme/iris-classifier:environment:staging",
        ),
    ],
)
def test_subject_follows_githubs_rule(github: LocalGitHub, claims: dict[str, str], subject: str) -> None:
    token = github.id_token(**claims)
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == subject


def test_a_job_requests_its_token_as_actions_core_does(github: LocalGitHub) -> None:
    url, request_token = github.id_token_request(event_name="push", ref="refs/tags/v1.4.0", environment="staging")

    def request(query: str, bearer: str) -> dict[str, object]:
        sent = urllib.request.Request(f"{url}{query}", headers={"Authorization": f"Bearer {bearer}"})
        with urllib.request.urlopen(sent, timeout=5) as answer:
            document: dict[str, object] = json.loads(answer.read())
        return document

    token = str(request("&audience=sts.amazonaws.com", request_token)["value"])
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["aud"]) == ("repo:acme/iris-classifier:environment:staging", "sts.amazonaws.com")
    assert github.issued_id_tokens()[-1] == claims
    default = jwt.decode(str(request("", request_token)["value"]), options={"verify_signature": False})
    assert default["aud"] == "https://github.com/acme", "GitHub's default audience is the owner's URL"
    with pytest.raises(urllib.error.HTTPError) as refused:
        request("&audience=sts.amazonaws.com", github.token)  # GITHUB_TOKEN is not a job's ID token request token
    assert refused.value.code == 401
