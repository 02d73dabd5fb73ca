"""`pipeline bootstrap` in an account that already has GitHub's OIDC provider."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
GITHUB = "https://token.actions.githubusercontent.com"


@pytest.fixture(scope="module")
def ground() -> Iterator[Any]:
    from local_ground.ground import LocalGround

    with LocalGround(run_tasks=False, github_repository="acme/iris-classifier", enforce_identity=True) as local:
        with mock.patch.dict(os.environ, local.environ()):
            yield local


def test_bootstrap_reuses_the_accounts_github_provider(ground: Any) -> None:
    iam = boto3.client("iam", region_name=REGION)
    existing = iam.create_open_id_connect_provider(
        Url=GITHUB, ClientIDList=["sts.amazonaws.com"], ThumbprintList=["6938fd4d98bab03faadb97b34396831e3780aea1"]
    )["OpenIDConnectProviderArn"]

    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "bootstrap", "--config", str(ROOT / "pipeline.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **ground.environ()},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"using the account's GitHub OIDC provider {existing}" in done.stdout
    assert "iris-classifier-ci-access: created" in done.stdout

    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName="iris-classifier-ci-access")
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Stacks"][0]["Parameters"]}
    assert parameters["ExistingOidcProviderArn"] == existing
    assert [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]] == [existing]

    # The roles trust the existing provider: a staging job's token is accepted.
    token = ground.github.id_token(event_name="push", ref="refs/tags/v1.0.0", environment="staging")
    assumed = boto3.client("sts", region_name=REGION).assume_role_with_web_identity(
        RoleArn="arn:aws:iam::123456789012:role/iris-classifier-ci-deploy-staging",
        RoleSessionName="github",
        WebIdentityToken=token,
    )
    assert assumed["AssumedRoleUser"]["Arn"].endswith(":assumed-role/iris-classifier-ci-deploy-staging/github")
