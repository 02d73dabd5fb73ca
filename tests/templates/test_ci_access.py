"""The committed ci-access template against what the pipeline and CloudFormation actually need.

Needed actions are derived here from cfn-lint's resource provider schemas (not from the snapshot the
templates use) for every committed service template; the engine's calls come from one list in
pipeline/templates/permissions.py.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml

from pipeline import config
from pipeline.templates import names, permissions
from pipeline.templates.handler_permissions import HANDLER_PERMISSIONS

ROOT = Path(__file__).resolve().parents[2]
OIDC = "token.actions.githubusercontent.com"


def committed(name: str) -> dict[str, Any]:
    return dict(cfn_yaml.loads((ROOT / "cloudformation" / name).read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def ci() -> dict[str, Any]:
    return committed("ci-access.yaml")


def statements(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    props = template["Resources"][role]["Properties"]
    return [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]


def allowed(template: dict[str, Any], role: str) -> set[str]:
    return {a for s in statements(template, role) if s["Effect"] == "Allow" for a in s["Action"]}


def roles(template: dict[str, Any]) -> list[str]:
    return [k for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]


def sub_text(value: Any) -> str:
    """`!Sub 'arn:${AWS::Partition}:...'` -> a glob over this account's ARNs, for matching names."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    return (
        str(text)
        .replace("${AWS::Partition}", "aws")
        .replace("${AWS::AccountId}", "123456789012")
        .replace("${AWS::Region}", "us-east-1")
    )


def test_each_environment_has_its_own_roles(ci: dict[str, Any], settings: config.Settings) -> None:
    expected = {"PullRequestRole"} | {
        f"{kind}{names.logical_suffix(env)}"
        for env in settings.environment_names
        for kind in ("DeployRole", "ExecutionRole")
    }
    assert set(roles(ci)) == expected
    for env in settings.environment_names:
        props = ci["Resources"][f"DeployRole{names.logical_suffix(env)}"]["Properties"]
        assert props["RoleName"] == names.deploy_role_name(settings, env)
        execution = ci["Resources"][f"ExecutionRole{names.logical_suffix(env)}"]["Properties"]
        assert names.execution_role_arn(settings, env).endswith(f":role/{execution['RoleName']}")


@pytest.mark.parametrize(
    ("role", "subject"),
    [
        ("DeployRoleStaging", "repo:acme/iris-classifier:environment:staging"),
        ("DeployRoleProduction", "repo:acme/iris-classifier:environment:production"),
        ("PullRequestRole", "repo:acme/iris-classifier:pull_request"),
    ],
)
def test_github_roles_trust_one_exact_subject_and_the_sts_audience(ci: dict[str, Any], role: str, subject: str) -> None:
    [statement] = ci["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["Condition"] == {"StringEquals": {f"{OIDC}:aud": "sts.amazonaws.com", f"{OIDC}:sub": subject}}


def test_no_ref_subject_anywhere(ci: dict[str, Any]) -> None:
    text = (ROOT / "cloudformation" / "ci-access.yaml").read_text(encoding="utf-8")
    assert ":ref:" not in text


def test_no_role_grants_a_wildcard_action(ci: dict[str, Any]) -> None:
    for role in roles(ci):
        for action in allowed(ci, role):
            assert action != "*" and not action.endswith(":*") and "*" not in action, f"{role} allows {action}"


@pytest.mark.parametrize("env", ["staging", "production"])
def test_execution_role_holds_every_handler_permission_of_its_template(ci: dict[str, Any], env: str) -> None:
    service = committed(f"service-{env}.yaml")
    needed: set[str] = set()
    for resource_type in permissions.resource_types(service):
        schema = permissions.schema_handler_permissions(resource_type)  # cfn-lint's provider schema
        skip = permissions.NOT_NEEDED.get(resource_type, {})
        needed |= {a for op in permissions.HANDLER_OPERATIONS for a in schema[op] if a not in skip}
    assert needed, "no handler permissions derived"
    missing = needed - allowed(ci, f"ExecutionRole{names.logical_suffix(env)}")
    assert not missing, f"the {env} execution role lacks {sorted(missing)}"


def test_handler_permission_snapshot_matches_cfn_lint() -> None:
    """The snapshot the release job synthesizes with is what cfn-lint's schemas say today."""
    service_types = set().union(
        *(permissions.resource_types(committed(f"service-{e}.yaml")) for e in ("staging", "production"))
    )
    assert service_types <= set(HANDLER_PERMISSIONS), "run scripts/update-handler-permissions"
    for resource_type, handlers in HANDLER_PERMISSIONS.items():
        assert handlers == permissions.schema_handler_permissions(resource_type), (
            f"{resource_type} changed in cfn-lint: run scripts/update-handler-permissions"
        )


@pytest.mark.parametrize("env", ["staging", "production"])
def test_execution_role_never_touches_the_ci_roles(ci: dict[str, Any], settings: config.Settings, env: str) -> None:
    role = f"ExecutionRole{names.logical_suffix(env)}"
    ci_names = [r["Properties"]["RoleName"] for r in ci["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    for statement in statements(ci, role):
        iam_actions = [a for a in statement["Action"] if a.startswith("iam:") and a != "iam:CreateServiceLinkedRole"]
        if statement["Effect"] != "Allow" or not iam_actions:
            continue
        for pattern in map(sub_text, statement["Resource"]):
            hits = [n for n in ci_names if fnmatchcase(f"arn:aws:iam::123456789012:role/{n}", pattern)]
            assert not hits, f"{role} may {iam_actions} on {hits}"
    [deny] = [s for s in statements(ci, role) if s.get("Sid") == "NeverTheCiRoles" and s["Effect"] == "Deny"]
    assert {"iam:PutRolePolicy", "iam:UpdateAssumeRolePolicy", "iam:PassRole"} <= set(deny["Action"])
    for name in ci_names:
        assert any(fnmatchcase(f"arn:aws:iam::123456789012:role/{name}", sub_text(r)) for r in deny["Resource"])


@pytest.mark.parametrize("env", ["staging", "production"])
def test_deploy_role_holds_every_engine_action_on_its_own_stack_only(
    ci: dict[str, Any], settings: config.Settings, env: str
) -> None:
    role = f"DeployRole{names.logical_suffix(env)}"
    assert set(permissions.ENGINE_ACTIONS) <= allowed(ci, role)
    for statement in statements(ci, role):
        if any(a.startswith("cloudformation:") for a in statement["Action"]):
            assert [sub_text(r) for r in statement["Resource"]] == [
                f"arn:aws:cloudformation:us-east-1:123456789012:stack/{names.service_stack(settings, env)}/*"
            ]
        if "iam:PassRole" in statement["Action"]:
            assert statement["Resource"] == [{"Fn::GetAtt": [f"ExecutionRole{names.logical_suffix(env)}", "Arn"]}]
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}


@pytest.mark.parametrize("env", ["staging", "production"])
def test_execution_role_makes_roles_only_with_the_stacks_permissions_boundary(
    ci: dict[str, Any], settings: config.Settings, env: str
) -> None:
    """CreateRole, PutRolePolicy, AttachRolePolicy... hold only with iam:PermissionsBoundary = the boundary
    this stack defines; removing a boundary is denied; every role of the service template carries it."""
    suffix = names.logical_suffix(env)
    boundary = {"Ref": f"RoleBoundary{suffix}"}
    bounded = set(permissions.BOUNDARY_CONDITIONED_ACTIONS)
    for statement in statements(ci, f"ExecutionRole{suffix}"):
        if statement["Effect"] != "Allow" or not bounded & set(statement["Action"]):
            continue
        assert set(statement["Action"]) <= bounded, statement
        assert statement["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": boundary}}
    deny = [s for s in statements(ci, f"ExecutionRole{suffix}") if s["Effect"] == "Deny"]
    assert any(s["Action"] == ["iam:DeleteRolePermissionsBoundary"] and s["Resource"] == ["*"] for s in deny)
    policy = ci["Resources"][f"RoleBoundary{suffix}"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert policy["Properties"]["ManagedPolicyName"] == names.role_boundary_name(settings, env)
    granted = {a for s in policy["Properties"]["PolicyDocument"]["Statement"] for a in s["Action"]}
    assert not any(a.startswith("iam:") or "*" in a for a in granted), granted
    service = committed(f"service-{env}.yaml")
    service_roles = [r for r in service["Resources"].values() if r["Type"] == "AWS::IAM::Role"]
    assert service_roles
    for role in service_roles:
        assert sub_text(role["Properties"]["PermissionsBoundary"]) == (
            f"arn:aws:iam::123456789012:policy/{names.role_boundary_name(settings, env)}"
        )


def test_pull_request_role_previews_and_cannot_execute(ci: dict[str, Any]) -> None:
    actions = allowed(ci, "PullRequestRole")
    assert set(permissions.PREVIEW_ACTIONS) <= actions
    assert not actions & {"cloudformation:ExecuteChangeSet", "cloudformation:DeleteStack", "ecr:PutImage"}


def test_an_existing_oidc_provider_replaces_the_created_one(ci: dict[str, Any]) -> None:
    assert ci["Parameters"]["ExistingOidcProviderArn"]["Default"] == ""
    assert ci["Resources"]["GitHubOidcProvider"]["Condition"] == "CreateOidcProvider"
    assert ci["Conditions"]["CreateOidcProvider"] == {"Fn::Equals": [{"Ref": "ExistingOidcProviderArn"}, ""]}


PREFIX = {
    "cf": "cloudformation",
    "ecs": "ecs",
    "ecr": "ecr",
    "elbv2": "elasticloadbalancing",
    "sts": "sts",
    "cloudwatch": "cloudwatch",
}
BOOTSTRAP_ONLY = {"oidc.py"}  # the operator's bootstrap, not a GitHub job


def test_engine_actions_cover_every_call_in_aws_and_steps() -> None:
    """Read the boto3 calls pipeline/aws and pipeline/steps make; each must be in ENGINE_ACTIONS."""
    import re

    call = re.compile(r"\b(cf|ecs|ecr|elbv2|sts|cloudwatch)\.([a-z_]+)\(")
    paginated = re.compile(r"\b(cf|ecs|ecr|elbv2|sts|cloudwatch)\.get_paginator\(\"([a-z_]+)\"\)")
    found: set[str] = set()
    for folder in ("aws", "steps"):
        for path in sorted((ROOT / "pipeline" / folder).glob("*.py")):
            if path.name in BOOTSTRAP_ONLY:
                continue
            text = path.read_text(encoding="utf-8")
            for client, method in [*call.findall(text), *paginated.findall(text)]:
                if method in ("get_paginator", "meta"):
                    continue
                found.add(f"{PREFIX[client]}:{''.join(p.capitalize() for p in method.split('_'))}")
    assert "cloudformation:CreateChangeSet" in found and "sts:GetCallerIdentity" in found  # the scan works
    assert found <= set(permissions.ENGINE_ACTIONS), sorted(found - set(permissions.ENGINE_ACTIONS))


def test_the_boundary_lets_through_what_the_settings_grant_the_service_and_nothing_more(project_root: Path) -> None:
    """Effective rights are the role's policies AND its boundary: task_policy, secrets and ECS Exec would
    be cut off if the boundary held only the image pull and the logs."""
    from local_ground.iam.policy import Decision, Request, evaluate
    from pipeline.templates import render, stack_specs
    from tests.extension_settings import MODEL_PREFIX, PARAMETER, SECRET, extension_raw

    settings = config.parse(extension_raw(project_root), root=project_root)
    (ci_spec,) = [spec for spec in stack_specs(settings) if spec.environment is None and "ci" in spec.file_name]
    template = dict(cfn_yaml.loads(render(ci_spec.build())))

    def boundary_allows(env: str, action: str, resource: str) -> bool:
        document = template["Resources"][f"RoleBoundary{names.logical_suffix(env)}"]["Properties"]["PolicyDocument"]
        return evaluate([document], Request(action, resource, {})) is Decision.ALLOW

    model = MODEL_PREFIX.replace("*", "model.onnx")
    for env in ("staging", "production"):
        assert boundary_allows(env, "s3:GetObject", model)
        assert boundary_allows(env, "secretsmanager:GetSecretValue", SECRET)
        assert boundary_allows(env, "ssm:GetParameters", PARAMETER)
        assert not boundary_allows(env, "s3:PutObject", model), "only what the settings grant"
    assert boundary_allows("staging", "s3:ListBucket", "arn:aws:s3:::acme-models")
    assert not boundary_allows("production", "s3:ListBucket", "arn:aws:s3:::acme-models"), "staging's own statement"
    assert boundary_allows("staging", "ssmmessages:OpenDataChannel", "*"), "ECS Exec is on in staging"
    assert not boundary_allows("production", "ssmmessages:OpenDataChannel", "*")
