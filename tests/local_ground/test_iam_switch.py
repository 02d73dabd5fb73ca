"""Identity enforcement is a switch: on by default in LocalGround, off by argument or LOCAL_GROUND_IDENTITY=off."""

from __future__ import annotations

import os
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from local_ground.ground import IDENTITY_SWITCH, LocalGround, identity_enforced_by_default


@pytest.mark.parametrize(("value", "enforced"), [(None, True), ("on", True), ("off", False), ("0", False)])
def test_the_default_follows_the_environment(value: str | None, enforced: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != IDENTITY_SWITCH}
    if value is not None:
        env[IDENTITY_SWITCH] = value
    with mock.patch.dict(os.environ, env, clear=True):
        assert identity_enforced_by_default() is enforced


@pytest.mark.parametrize("enforce", [True, False])
def test_an_unknown_key_is_refused_only_when_enforcing(enforce: bool) -> None:
    with LocalGround(run_tasks=False, enforce_identity=enforce) as ground:
        assert (ground.identity is not None) is enforce
        assert ground.aws is not None
        cf = boto3.session.Session("AKIAUNKNOWNKEY000000", "secret", region_name="us-east-1").client(
            "cloudformation", endpoint_url=ground.aws.endpoint_url
        )
        if not enforce:
            assert cf.describe_stacks()["Stacks"] == []  # moto's own default: anyone may do anything
            return
        with pytest.raises(ClientError) as caught:
            cf.describe_stacks()
        assert caught.value.response["Error"]["Code"] == "InvalidClientTokenId"


@pytest.mark.parametrize("enforce", [True, False])
def test_the_task_execution_role_check_runs_only_when_enforcing(enforce: bool) -> None:
    """With the switch off no start check is installed: a task starts whatever its execution role may do."""
    from local_ground.tasks import runtime

    assert runtime._start_checks == []
    with LocalGround(run_tasks=False, enforce_identity=enforce):
        assert len(runtime._start_checks) == (1 if enforce else 0)
    assert runtime._start_checks == []
