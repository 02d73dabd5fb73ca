"""The local ground refuses what AWS refuses, the way AWS does, with the committed ci-access roles.

One ground (no real tasks) bootstrapped by the operator; each test then acts as GitHub Actions would:
an ID token from the local GitHub, AssumeRoleWithWebIdentity, and only those credentials.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import boto3
import pytest
from botocore.exceptions import ClientError

from pipeline import config
from pipeline.aws.clients import Clients
from pipeline.aws.oidc import ci_access_parameters
from pipeline.clock import WallClock
from pipeline.errors import CredentialsError, DeployError
from pipeline.steps.context import Context
from pipeline.steps.deploy import Deployer
from pipeline.steps.release import release
from pipeline.templates import names, stack_specs

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"


@pytest.fixture(scope="module")
def ground() -> Iterator[Any]:
    from local_ground.ground import LocalGround

    with LocalGround(run_tasks=False, github_repository="acme/iris-classifier", enforce_identity=True) as local:
        with mock.patch.dict(os.environ, local.environ()):
            yield local


@pytest.fixture(scope="module")
def settings() -> config.Settings:
    return config.load(ROOT / "pipeline.toml")


@pytest.fixture(scope="module")
def bootstrapped(ground: Any, settings: config.Settings) -> Any:
    clients = Clients(REGION, account=settings.app.account)
    clients.check_credentials()
    deployer = Deployer(clients.cloudformation, WallClock(), lambda _line: None, poll=0.05)
    for spec in stack_specs(settings):
        if spec.environment is None:
            params = ci_access_parameters(clients, settings, lambda _l: None) if spec.kind == "ci-access" else {}
            deployer.deploy(spec.stack_name, (ROOT / "cloudformation" / spec.file_name).read_text(), params)
    return ground


def assume(ground: Any, role_arn: str, **claims: Any) -> boto3.session.Session:
    token = ground.github.id_token(**claims)
    sts = boto3.client("sts", region_name=REGION)
    creds = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="github", WebIdentityToken=token)[
        "Credentials"
    ]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def refused(call: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return {
        "code": caught.value.response["Error"]["Code"],
        "message": caught.value.response["Error"]["Message"],
        "status": str(caught.value.response["ResponseMetadata"]["HTTPStatusCode"]),
    }


def job(environment: str | None, event: str = "push") -> dict[str, Any]:
    return {"event_name": event, "ref": "refs/tags/v1.4.0", "environment": environment}


def service_body(env: str) -> str:
    return (ROOT / "cloudformation" / names.template_file("service", env)).read_text()


# --- OIDC and trust ------------------------------------------------------------------------------


def test_a_job_in_its_environment_gets_that_environments_role(bootstrapped: Any, settings: config.Settings) -> None:
    session = assume(bootstrapped, names.deploy_role_arn(settings, "staging"), **job("staging"))
    arn = session.client("sts").get_caller_identity()["Arn"]
    assert arn == "arn:aws:sts::123456789012:assumed-role/iris-classifier-ci-deploy-staging/github"


@pytest.mark.parametrize("role", ["deploy-staging", "deploy-production", "pull-request"])
def test_a_tag_push_job_without_environment_gets_no_role(
    bootstrapped: Any, settings: config.Settings, role: str
) -> None:
    arn = names.role_arn(settings, f"{names.ci_role_prefix(settings)}{role}")
    answer = refused(lambda: assume(bootstrapped, arn, **job(None)))
    assert answer == {
        "code": "AccessDenied",
        "message": "Not authorized to perform sts:AssumeRoleWithWebIdentity",
        "status": "403",
    }


def test_the_staging_job_cannot_take_the_production_role(bootstrapped: Any, settings: config.Settings) -> None:
    answer = refused(lambda: assume(bootstrapped, names.deploy_role_arn(settings, "production"), **job("staging")))
    assert answer["code"] == "AccessDenied"


def test_a_token_for_another_audience_is_refused(bootstrapped: Any, settings: config.Settings) -> None:
    answer = refused(
        lambda: assume(
            bootstrapped, names.deploy_role_arn(settings, "staging"), audience="api://other", **job("staging")
        )
    )
    assert answer == {"code": "InvalidIdentityToken", "message": "Incorrect token audience", "status": "400"}


def test_an_expired_token_is_refused(bootstrapped: Any, settings: config.Settings) -> None:
    import time

    answer = refused(
        lambda: assume(
            bootstrapped, names.deploy_role_arn(settings, "staging"), now=time.time() - 3600, **job("staging")
        )
    )
    assert answer["code"] == "ExpiredTokenException"
    assert answer["message"].startswith("Token expired: current date/time")


def test_a_token_signed_by_another_key_is_refused(bootstrapped: Any, settings: config.Settings) -> None:
    from local_ground.iam.oidc import OidcIssuer

    forger = OidcIssuer()  # same issuer name and claims, another key
    token = forger.token("acme/iris-classifier", **job("staging"))
    sts = boto3.client("sts", region_name=REGION)
    answer = refused(
        lambda: sts.assume_role_with_web_identity(
            RoleArn=names.deploy_role_arn(settings, "staging"), RoleSessionName="forged", WebIdentityToken=token
        )
    )
    assert answer["code"] == "InvalidIdentityToken"
    assert "verification key" in answer["message"]

    forger.kid = bootstrapped.github.oidc.kid  # claims the issuer's key id: the signature still fails
    token = forger.token("acme/iris-classifier", **job("staging"))
    answer = refused(
        lambda: sts.assume_role_with_web_identity(
            RoleArn=names.deploy_role_arn(settings, "staging"), RoleSessionName="forged", WebIdentityToken=token
        )
    )
    assert answer["code"] == "InvalidIdentityToken"
    assert "Signature verification failed" in answer["message"]


def test_not_even_the_operator_can_assume_a_github_role(bootstrapped: Any, settings: config.Settings) -> None:
    """Trust policies name GitHub's provider only: sts:AssumeRole from the account's admin is refused."""
    role = names.deploy_role_arn(settings, "production")
    answer = refused(
        lambda: boto3.client("sts", region_name=REGION).assume_role(RoleArn=role, RoleSessionName="operator")
    )
    assert answer["code"] == "AccessDenied"
    assert answer["message"] == (
        f"User: arn:aws:iam::123456789012:root is not authorized to perform: sts:AssumeRole on resource: {role}"
    )


def test_an_unknown_access_key_is_refused(bootstrapped: Any) -> None:
    session = boto3.session.Session("AKIAUNKNOWNKEY000000", "secret", region_name=REGION)
    answer = refused(lambda: session.client("cloudformation").describe_stacks())
    assert answer["code"] == "InvalidClientTokenId"


# --- what each role may do ---------------------------------------------------------------------


def test_the_staging_role_cannot_change_the_production_stack(bootstrapped: Any, settings: config.Settings) -> None:
    session = assume(bootstrapped, names.deploy_role_arn(settings, "staging"), **job("staging"))
    deployer = Deployer(
        session.client("cloudformation"),
        WallClock(),
        lambda _l: None,
        poll=0.05,
        role_arn=names.execution_role_arn(settings, "production"),
    )
    with pytest.raises(CredentialsError) as caught:
        deployer.deploy(names.service_stack(settings, "production"), service_body("production"), {})
    assert (
        "is not authorized to perform: cloudformation:DescribeStacks on resource: "
        "arn:aws:cloudformation:us-east-1:123456789012:stack/iris-classifier-service-production/*"
    ) in caught.value.message
    cf = session.client("cloudformation")
    answer = refused(
        lambda: cf.create_change_set(
            StackName=names.service_stack(settings, "production"),
            ChangeSetName="sneak",
            TemplateBody=service_body("production"),
            ChangeSetType="CREATE",
            RoleARN=names.execution_role_arn(settings, "production"),
        )
    )
    assert "cloudformation:CreateChangeSet on resource" in answer["message"]


def test_the_staging_role_cannot_pass_the_production_execution_role(
    bootstrapped: Any, settings: config.Settings
) -> None:
    cf = assume(bootstrapped, names.deploy_role_arn(settings, "staging"), **job("staging")).client("cloudformation")
    answer = refused(
        lambda: cf.create_change_set(
            StackName=names.service_stack(settings, "staging"),
            ChangeSetName="wrong-role",
            TemplateBody=service_body("staging"),
            ChangeSetType="CREATE",
            RoleARN=names.execution_role_arn(settings, "production"),
        )
    )
    assert answer["code"] == "AccessDenied"
    assert f"iam:PassRole on resource: {names.execution_role_arn(settings, 'production')}" in answer["message"]


def test_the_deploy_role_cannot_change_the_ci_access_stack(bootstrapped: Any, settings: config.Settings) -> None:
    cf = assume(bootstrapped, names.deploy_role_arn(settings, "staging"), **job("staging")).client("cloudformation")
    answer = refused(
        lambda: cf.create_change_set(
            StackName=names.ci_access_stack(settings),
            ChangeSetName="widen-my-rights",
            TemplateBody=(ROOT / "cloudformation" / "ci-access.yaml").read_text(),
            ChangeSetType="UPDATE",
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
    )
    assert answer["code"] == "AccessDenied"
    assert (
        "cloudformation:CreateChangeSet on resource: arn:aws:cloudformation:us-east-1:123456789012:stack/iris-classifier-ci-access/"
        in answer["message"]
    )


def test_the_pull_request_role_previews_but_cannot_execute(bootstrapped: Any, settings: config.Settings) -> None:
    session = assume(bootstrapped, names.pull_request_role_arn(settings), **job(None, event="pull_request"))
    cf = session.client("cloudformation")
    answer = refused(
        lambda: cf.execute_change_set(ChangeSetName="x", StackName=names.service_stack(settings, "staging"))
    )
    assert "cloudformation:ExecuteChangeSet" in answer["message"]


# --- CloudFormation acting as the execution role ----------------------------------------------

POLICY_ON_A_CI_ROLE = """
Resources:
  Widen:
    Type: AWS::IAM::Policy
    Properties:
      PolicyName: widen
      Roles: [iris-classifier-ci-deploy-staging]
      PolicyDocument:
        Version: '2012-10-17'
        Statement:
          - {Effect: Allow, Action: 'iam:PassRole', Resource: '*'}
"""

LOG_GROUP = """
Resources:
  Logs:
    Type: AWS::Logs::LogGroup
    Properties: {RetentionInDays: 7}
"""

WITH_A_QUEUE = (
    LOG_GROUP
    + """
  Queue:
    Type: AWS::SQS::Queue
"""
)


def execution_role_deployer(settings: config.Settings) -> Deployer:
    """The operator creates the change sets (so any stack name), CloudFormation acts as the staging execution role."""
    return Deployer(
        boto3.client("cloudformation", region_name=REGION),
        WallClock(),
        lambda _l: None,
        poll=0.05,
        role_arn=names.execution_role_arn(settings, "staging"),
    )


def test_the_execution_role_cannot_edit_a_ci_roles_policy(bootstrapped: Any, settings: config.Settings) -> None:
    with pytest.raises(DeployError) as caught:
        execution_role_deployer(settings).deploy("probe-ci-role-policy", POLICY_ON_A_CI_ROLE, {})
    assert "create failed, stack is ROLLBACK_COMPLETE" in caught.value.message
    assert (
        "assumed-role/iris-classifier-ci-cfn-staging/AWSCloudFormation is not authorized to perform: "
        "iam:PutRolePolicy on resource: arn:aws:iam::123456789012:role/iris-classifier-ci-deploy-staging "
        "with an explicit deny in an identity-based policy"
    ) in caught.value.message
    iam = boto3.client("iam", region_name=REGION)
    assert iam.list_role_policies(RoleName="iris-classifier-ci-deploy-staging")["PolicyNames"] == [
        "release-and-rollback"
    ]


def test_a_new_resource_type_the_execution_role_lacks_rolls_the_update_back(
    bootstrapped: Any, settings: config.Settings
) -> None:
    stack = "probe-new-resource-type"
    deployer = execution_role_deployer(settings)
    deployer.deploy(stack, LOG_GROUP, {})
    with pytest.raises(DeployError) as caught:
        deployer.deploy(stack, WITH_A_QUEUE, {})
    assert "update failed, stack is UPDATE_ROLLBACK_COMPLETE" in caught.value.message
    assert "is not authorized to perform: sqs:CreateQueue on resource: *" in caught.value.message
    cf = boto3.client("cloudformation", region_name=REGION)
    resources = cf.describe_stack_resources(StackName=stack)["StackResources"]
    assert [r["LogicalResourceId"] for r in resources] == ["Logs"]


def role_template(boundary: str | None) -> str:
    line = f"\n      PermissionsBoundary: {boundary}" if boundary else ""
    return f"""
Resources:
  Role:
    Type: AWS::IAM::Role
    Properties:{line}
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement:
          - {{Effect: Allow, Principal: {{Service: ecs-tasks.amazonaws.com}}, Action: 'sts:AssumeRole'}}
      Policies:
        - PolicyName: anything
          PolicyDocument:
            Version: '2012-10-17'
            Statement:
              - {{Effect: Allow, Action: 'sqs:SendMessage', Resource: '*'}}
"""


@pytest.mark.parametrize("boundary", [None, "production"])
def test_the_execution_role_creates_no_role_without_its_stacks_boundary(
    bootstrapped: Any, settings: config.Settings, boundary: str | None
) -> None:
    """The staging execution role may create a role (named like its stack's) only carrying the staging
    boundary: none, or production's, fails the resource naming iam:CreateRole and the stack rolls back."""
    arn = f"arn:aws:iam::123456789012:policy/{names.role_boundary_name(settings, boundary)}" if boundary else None
    stack = f"{names.service_stack(settings, 'staging')}-boundless-{boundary or 'none'}"
    with pytest.raises(DeployError) as caught:
        execution_role_deployer(settings).deploy(stack, role_template(arn), {})
    assert "create failed, stack is ROLLBACK_COMPLETE" in caught.value.message
    assert (
        "assumed-role/iris-classifier-ci-cfn-staging/AWSCloudFormation is not authorized to perform: "
        f"iam:CreateRole on resource: arn:aws:iam::123456789012:role/{stack}-Role-"
    ) in caught.value.message
    assert "because no identity-based policy allows the iam:CreateRole action" in caught.value.message


def test_a_role_the_execution_role_creates_carries_the_boundary_and_is_held_by_it(
    bootstrapped: Any, settings: config.Settings
) -> None:
    from local_ground.iam.identity import role_principal

    boundary = f"arn:aws:iam::123456789012:policy/{names.role_boundary_name(settings, 'staging')}"
    stack = f"{names.service_stack(settings, 'staging')}-bounded"
    execution_role_deployer(settings).deploy(stack, role_template(boundary), {})
    cf = boto3.client("cloudformation", region_name=REGION)
    name = cf.describe_stack_resource(StackName=stack, LogicalResourceId="Role")["StackResourceDetail"][
        "PhysicalResourceId"
    ]
    role = boto3.client("iam", region_name=REGION).get_role(RoleName=name)["Role"]
    assert role["PermissionsBoundary"]["PermissionsBoundaryArn"] == boundary
    # Its inline policy allows sqs:SendMessage; the boundary (pull the image, write the logs) does not.
    principal = role_principal(role["Arn"], "task", REGION)
    assert principal is not None
    decision = principal.decide("sqs:SendMessage", "*", {})
    assert decision.value == "implicit deny by a permissions boundary"


def test_iam_refuses_create_role_without_the_boundary_a_policy_requires(bootstrapped: Any) -> None:
    """The condition key on IAM's own API: a user allowed iam:CreateRole only with a given boundary."""
    import json

    iam = boto3.client("iam", region_name=REGION)
    boundary = "arn:aws:iam::123456789012:policy/iris-classifier-ci-boundary-staging"
    iam.create_user(UserName="role-maker")
    iam.put_user_policy(
        UserName="role-maker",
        PolicyName="bounded",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "iam:CreateRole",
                        "Resource": "*",
                        "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}},
                    }
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="role-maker")["AccessKey"]
    maker = boto3.client(
        "iam",
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    denied = refused(lambda: maker.create_role(RoleName="unbounded", AssumeRolePolicyDocument=trust))
    assert denied["code"] == "AccessDenied"
    assert denied["message"] == (
        "User: arn:aws:iam::123456789012:user/role-maker is not authorized to perform: iam:CreateRole on "
        "resource: arn:aws:iam::123456789012:role/unbounded because no identity-based policy allows the "
        "iam:CreateRole action"
    )
    maker.create_role(RoleName="bounded", AssumeRolePolicyDocument=trust, PermissionsBoundary=boundary)


# --- the right account -------------------------------------------------------------------------


def test_credentials_of_another_account_are_refused_before_anything_changes(
    bootstrapped: Any, settings: config.Settings
) -> None:
    other = "210987654321"
    iam = boto3.client("iam", region_name=REGION)
    iam.meta.events.register(
        "before-sign.iam.*", lambda request, **_: request.headers.add_header("x-moto-account-id", other)
    )
    iam.create_user(UserName="someone")
    key = iam.create_access_key(UserName="someone")["AccessKey"]
    session = boto3.session.Session(key["AccessKeyId"], key["SecretAccessKey"], region_name=REGION)
    cf = boto3.client("cloudformation", region_name=REGION)
    before = [(s["StackName"], s["StackStatus"]) for s in cf.describe_stacks()["Stacks"]]

    ctx = Context(
        settings,
        WallClock(),
        lambda _l: None,
        make_clients=lambda region: Clients(region, session=session, account=settings.app.account),
    )
    with pytest.raises(CredentialsError) as caught:
        release(ctx, "staging", "v9.9.9")
    assert caught.value.message == (
        "these AWS credentials are for account 210987654321 (arn:aws:iam::210987654321:user/someone), "
        "but app.account is 123456789012"
    )
    assert [(s["StackName"], s["StackStatus"]) for s in cf.describe_stacks()["Stacks"]] == before


# --- the CLI with only a GitHub job's credentials --------------------------------------------

MANIFEST = (
    '{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", '
    '"config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, '
    '"digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}, "layers": []}'
)


def pipeline_cli(args: list[str], session: boto3.session.Session) -> Any:
    import subprocess
    import sys

    creds = session.get_credentials().get_frozen_credentials()
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": creds.access_key,
        "AWS_SECRET_ACCESS_KEY": creds.secret_key,
        "AWS_SESSION_TOKEN": creds.token or "",
        "PIPELINE_POLL_SECONDS": "0.05",
    }
    env.pop("GITHUB_TOKEN", None)  # recording on GitHub is not what this checks
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args, "--config", str(ROOT / "pipeline.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_a_deploy_with_the_deploy_roles_credentials_passes_the_execution_role(
    bootstrapped: Any, settings: config.Settings
) -> None:
    """Without RoleARN CloudFormation would act as the deploy role, which may create nothing."""
    ecr = boto3.client("ecr", region_name=REGION)
    ecr.put_image(repositoryName=settings.app.name, imageManifest=MANIFEST, imageTag="7.0.0")
    ecr.put_image(repositoryName=settings.app.name, imageManifest=MANIFEST.replace("2,", "3,"), imageTag="7.1.0")
    stack = names.service_stack(settings, "staging")
    cf = boto3.client("cloudformation", region_name=REGION)

    session = assume(bootstrapped, names.deploy_role_arn(settings, "staging"), **job("staging"))
    # A failed first create leaves ROLLBACK_COMPLETE: the next deploy, with only these credentials, cleans it up.
    first = Deployer(
        session.client("cloudformation"),
        WallClock(),
        lambda _l: None,
        poll=0.05,
        role_arn=names.execution_role_arn(settings, "staging"),
    )
    with pytest.raises(DeployError):
        first.deploy(stack, POLICY_ON_A_CI_ROLE, {})
    done = pipeline_cli(["deploy", "7.0.0", "--env", "staging"], session)
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"{stack}: ROLLBACK_COMPLETE (its first create failed); deleting the empty stack" in done.stdout
    assert f"{stack}: runs 7.0.0" in done.stdout and f"{stack}: executing create" in done.stdout
    described = cf.describe_stacks(StackName=stack)["Stacks"][0]
    # Created unprotected, then updated once to turn the load balancer's deletion protection on.
    assert described["StackStatus"] == "UPDATE_COMPLETE"
    assert {"ParameterKey": "DeletionProtection", "ParameterValue": "true"} in described["Parameters"]
    assert described["RoleARN"] == names.execution_role_arn(settings, "staging")

    preview = assume(bootstrapped, names.pull_request_role_arn(settings), **job(None, event="pull_request"))
    shown = pipeline_cli(["diff", "--env", "staging", "--version", "7.1.0"], preview)
    assert shown.returncode == 0, shown.stderr + shown.stdout
    assert f"{stack}: 2 change(s)" in shown.stdout  # the preview ran, with the changes AWS lists
    assert "Modify  TaskDefinition [AWS::ECS::TaskDefinition] (replacement)" in shown.stdout

    refused_deploy = pipeline_cli(["deploy", "7.1.0", "--env", "staging"], preview)
    assert refused_deploy.returncode != 0
    # Refused before any change: reading the service's desired count (ecs:DescribeServices) comes first now.
    assert "assumed-role/iris-classifier-ci-pull-request/github is not authorized to perform: " in refused_deploy.stderr
