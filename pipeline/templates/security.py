"""Keys, roles and scanner annotations shared by the stacks."""

from __future__ import annotations

from typing import Any

from awacs import ecr, kms, logs
from awacs.aws import Allow, ArnLike, Condition, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import Sub, Template
from troposphere.iam import Policy, Role
from troposphere.kms import Key

from pipeline.config import Settings
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


def add_task_roles(t: Template, repository_arn: Any, log_group_arn: Any, boundary: Any) -> tuple[Role, Role]:
    """The execution role pulls this repository's images and writes this log group; the task role has no rights.
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
                )
            ],
        )
    )
    task = t.add_resource(Role("TaskRole", AssumeRolePolicyDocument=ecs_tasks_trust(), PermissionsBoundary=boundary))
    return execution, task
