"""Keys, roles and scanner annotations shared by the stacks."""

from __future__ import annotations

from typing import Any

from awacs import ecr, kms, logs, secretsmanager, ssm
from awacs.aws import Action, Allow, ArnLike, Condition, Deny, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import Sub, Template
from troposphere.iam import Policy, Role
from troposphere.kms import Key

from pipeline.config import Environment


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


def add_task_roles(t: Template, repository_arn: Any, log_group_arn: Any, env: Environment) -> tuple[Role, Role]:
    """The execution role pulls this repository's images, writes this log group and reads exactly the
    environment's secrets; the task role has only the settings' task_policy (and ECS Exec's channels)."""
    execution = t.add_resource(
        Role(
            "ExecutionRole",
            AssumeRolePolicyDocument=ecs_tasks_trust(),
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
        Role("TaskRole", AssumeRolePolicyDocument=ecs_tasks_trust(), **({"Policies": policies} if policies else {}))
    )
    return execution, task


def _secret_reads(env: Environment) -> list[Policy]:
    """ECS reads the container's secrets as the execution role at task start: exactly those ARNs."""
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
    return [
        Policy(PolicyName="read-secrets", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements))
    ]


# What the task's SSM agent needs for ECS Exec: the session channels (ssmmessages has no resource types).
EXEC_ACTIONS = ("CreateControlChannel", "CreateDataChannel", "OpenControlChannel", "OpenDataChannel")


def _task_policies(env: Environment) -> list[Policy]:
    policies = []
    if env.task_policy:
        statements = [
            Statement(
                Effect=Allow if s.effect == "Allow" else Deny,
                Action=[Action(*a.split(":", 1)) if a != "*" else Action("*") for a in s.actions],
                Resource=list(s.resources),
            )
            for s in env.task_policy
        ]
        policies.append(
            Policy(PolicyName="task-policy", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements))
        )
    if env.service.execute_command:
        exec_statement = Statement(
            Effect=Allow, Action=[Action("ssmmessages", name) for name in EXEC_ACTIONS], Resource=["*"]
        )
        policies.append(
            Policy(
                PolicyName="ecs-exec", PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=[exec_statement])
            )
        )
    return policies
