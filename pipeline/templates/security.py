"""Keys, roles and scanner annotations shared by the stacks."""

from __future__ import annotations

from typing import Any

from awacs import ecr, kms, logs, secretsmanager, ssm
from awacs.aws import Action, Allow, ArnLike, Condition, Deny, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import Sub, Template
from troposphere.iam import Policy, Role
from troposphere.kms import Key

from pipeline.config import Environment, Settings
from pipeline.templates import names


def checkov_skip(*skips: tuple[str, str]) -> dict[str, Any] | None:
    """Resource metadata that suppresses a checkov check, always with the reason written down."""
    if not skips:
        return None
    return {"checkov": {"skip": [{"id": check, "comment": reason} for check, reason in skips]}}


def account_root() -> Principal:
    return Principal("AWS", Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root"))


def add_log_key(t: Template) -> Key:
    """A customer-managed key for the stack's log groups (CloudWatch Logs must be allowed to use it)."""
    policy = PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Sid="AccountAdministers",
                Effect=Allow,
                Principal=account_root(),
                Action=[kms.Action("*")],
                Resource=["*"],
            ),
            Statement(
                Sid="CloudWatchLogsEncrypts",
                Effect=Allow,
                Principal=Principal("Service", Sub("logs.${AWS::Region}.amazonaws.com")),
                Action=[
                    kms.Encrypt,
                    kms.Decrypt,
                    kms.ReEncryptFrom,
                    kms.ReEncryptTo,
                    kms.GenerateDataKey,
                    kms.GenerateDataKeyWithoutPlaintext,
                    kms.DescribeKey,
                ],
                Resource=["*"],
                Condition=Condition(
                    ArnLike(
                        "kms:EncryptionContext:aws:logs:arn",
                        Sub("arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"),
                    )
                ),
            ),
        ],
    )
    # The key goes with the stack: its log groups go too (KMS still waits its pending window).
    return t.add_resource(
        Key(
            "LogKey",
            Description=Sub("${AWS::StackName} log encryption"),
            EnableKeyRotation=True,
            KeyPolicy=policy,
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )


def ecs_tasks_trust() -> PolicyDocument:
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(Effect=Allow, Principal=Principal("Service", "ecs-tasks.amazonaws.com"), Action=[AssumeRole])
        ],
    )


def role_boundary(settings: Settings, environment: str) -> Sub:
    """The ARN of the permissions boundary (ci-access stack) every role of ENVIRONMENT's service stack
    carries: its CloudFormation execution role may create or change roles only with it."""
    name = names.role_boundary_name(settings, environment)
    return Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{name}")


def add_task_roles(
    t: Template, repository_arn: Any, log_group_arn: Any, env: Environment, boundary: Any
) -> tuple[Role, Role]:
    """The execution role pulls this repository's images, writes this log group and reads exactly the
    environment's secrets; the task role has only the settings' task_policy (and ECS Exec's channels).
    Both carry the stack's permissions boundary."""
    execution = t.add_resource(
        Role(
            "ExecutionRole",
            AssumeRolePolicyDocument=ecs_tasks_trust(),
            PermissionsBoundary=boundary,
            Policies=[
                Policy(
                    PolicyName="pull-image-and-write-logs",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            # GetAuthorizationToken is account-wide: it has no resource to scope to.
                            Statement(Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]),
                            Statement(
                                Effect=Allow,
                                Action=[ecr.BatchCheckLayerAvailability, ecr.GetDownloadUrlForLayer, ecr.BatchGetImage],
                                Resource=[repository_arn],
                            ),
                            Statement(
                                Effect=Allow,
                                Action=[logs.CreateLogStream, logs.PutLogEvents],
                                Resource=[Sub("${Arn}:*", Arn=log_group_arn)],
                            ),
                        ],
                    ),
                ),
                *_secret_reads(env),
            ],
        )
    )
    policies = _task_policies(env)
    task = t.add_resource(
        Role(
            "TaskRole",
            AssumeRolePolicyDocument=ecs_tasks_trust(),
            PermissionsBoundary=boundary,
            **({"Policies": policies} if policies else {}),
        )
    )
    return execution, task


def _secret_reads(env: Environment) -> list[Policy]:
    """ECS reads the container's secrets as the execution role at task start: exactly those ARNs."""
    statements = secret_read_statements(env)
    if not statements:
        return []
    return [
        Policy(PolicyName="read-secrets", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements))
    ]


def secret_read_statements(env: Environment) -> list[Statement]:
    """The reads of exactly the environment's secrets (and its customer-managed key, if any)."""
    if not env.secrets:
        return []
    statements = []
    by_store: dict[str, list[str]] = {}
    for secret in env.secrets:
        by_store.setdefault(secret.store, [])
        if secret.resource not in by_store[secret.store]:
            by_store[secret.store].append(secret.resource)
    if "secretsmanager" in by_store:
        statements.append(
            Statement(Effect=Allow, Action=[secretsmanager.GetSecretValue], Resource=by_store["secretsmanager"])
        )
    if "ssm" in by_store:
        statements.append(Statement(Effect=Allow, Action=[ssm.GetParameters], Resource=by_store["ssm"]))
    if env.service.secrets_kms_key:  # a customer-managed key: the aws/ssm and aws/secretsmanager keys need none
        statements.append(Statement(Effect=Allow, Action=[kms.Decrypt], Resource=[env.service.secrets_kms_key]))
    return statements


# What the task's SSM agent needs for ECS Exec: the session channels (ssmmessages has no resource types).
EXEC_ACTIONS = ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel")


def task_policy_statements(env: Environment, *, allows_only: bool = False) -> list[Statement]:
    """The settings' task_policy as IAM statements (only its Allows, for the permissions boundary)."""
    return [
        Statement(
            Effect=Allow if s.effect == "Allow" else Deny,
            Action=[Action(*a.split(":", 1)) if a != "*" else Action("*") for a in s.actions],
            Resource=list(s.resources),
        )
        for s in env.task_policy
        if s.effect == "Allow" or not allows_only
    ]


def traffic_shift_statements(env: Environment) -> list[Statement]:
    """What ECS's infrastructure role may do in a traffic-shifting environment (the service template's
    TrafficShiftRole scopes each to the stack's own groups, listeners and rules; the boundary, written
    before those exist, to this account and region's load balancing resources)."""
    if not env.shifts_traffic:
        return []
    elb = "arn:${AWS::Partition}:elasticloadbalancing:${AWS::Region}:${AWS::AccountId}"
    return [
        Statement(
            Effect=Allow,
            Action=[Action("elasticloadbalancing", a) for a in ("DescribeListeners", "DescribeRules")]
            + [Action("elasticloadbalancing", a) for a in ("DescribeTargetGroups", "DescribeTargetHealth")],
            Resource=["*"],
        ),
        Statement(
            Effect=Allow,
            Action=[Action("elasticloadbalancing", a) for a in ("RegisterTargets", "DeregisterTargets")],
            Resource=[Sub(f"{elb}:targetgroup/*")],
        ),
        Statement(
            Effect=Allow,
            Action=[Action("elasticloadbalancing", "ModifyListener")],
            Resource=[Sub(f"{elb}:listener/app/*")],
        ),
        Statement(
            Effect=Allow,
            Action=[Action("elasticloadbalancing", "ModifyRule")],
            Resource=[Sub(f"{elb}:listener-rule/app/*")],
        ),
    ]


def exec_channel_statements(env: Environment) -> list[Statement]:
    """ECS Exec's SSM session channels, when the environment turns ECS Exec on."""
    if not env.service.execute_command:
        return []
    return [Statement(Effect=Allow, Action=[Action("ssmmessages", name) for name in EXEC_ACTIONS], Resource=["*"])]


def _task_policies(env: Environment) -> list[Policy]:
    policies = []
    if env.task_policy:
        statements = task_policy_statements(env)
        policies.append(
            Policy(PolicyName="task-policy", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements))
        )
    for exec_statement in exec_channel_statements(env):
        policies.append(
            Policy(
                PolicyName="ecs-exec", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[exec_statement])
            )
        )
    return policies
