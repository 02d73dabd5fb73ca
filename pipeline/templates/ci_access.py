"""The `ci-access` stack: the roles GitHub Actions assumes through OIDC, and the role CloudFormation deploys with.

Workflows never hold AWS keys. The deploy role is trusted only for this repository's release tags and
named environments; the diff role only for pull requests, and it cannot execute a change set.
Creating resources is CloudFormation's job, under its own execution role, so the deploy role needs
no IAM or EC2 rights of its own: only change sets on this app's stacks, ECR pushes to this app's
repository, and the read calls the rollout check makes.
"""

from __future__ import annotations

from awacs import cloudformation as cfn
from awacs import ecr, ecs, iam, logs
from awacs import elasticloadbalancing as elb
from awacs.aws import (
    Action,
    Allow,
    Condition,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
    StringLike,
)
from awacs.sts import AssumeRole, AssumeRoleWithWebIdentity
from troposphere import Equals, GetAtt, If, ImportValue, Output, Parameter, Ref, Sub, Template
from troposphere.iam import OIDCProvider, Policy, Role

from pipeline.config import Settings
from pipeline.templates import names
from pipeline.templates.security import checkov_skip

OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"

# What CloudFormation itself may create for the service stacks, service by service.
EXECUTION_SERVICES = (
    "ec2",
    "ecs",
    "elasticloadbalancing",
    "application-autoscaling",
    "cloudwatch",
    "logs",
    "kms",
)


def deploy_subjects(settings: Settings) -> list[str]:
    repo = settings.app.github_repository
    return [f"repo:{repo}:ref:refs/tags/v*"] + [
        f"repo:{repo}:environment:{name}" for name in settings.environment_names
    ]


def diff_subjects(settings: Settings) -> list[str]:
    return [f"repo:{settings.app.github_repository}:pull_request"]


def build_ci_access(settings: Settings) -> Template:
    app = settings.app.name
    t = Template(Description=f"{app}: roles GitHub Actions assumes (OIDC) and the role CloudFormation deploys with")
    existing = t.add_parameter(
        Parameter(
            "ExistingOidcProviderArn",
            Type="String",
            Default="",
            Description="ARN of the account's GitHub OIDC provider, if it already has one; empty creates it",
        )
    )
    t.add_condition("CreateOidcProvider", Equals(Ref(existing), ""))
    provider = t.add_resource(
        OIDCProvider(
            "GitHubOidcProvider", Condition="CreateOidcProvider", Url=f"https://{OIDC_HOST}", ClientIdList=[AUDIENCE]
        )
    )
    provider_arn = If("CreateOidcProvider", Ref(provider), Ref(existing))
    stacks = Sub(f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:stack/{app}-*/*")

    execution = t.add_resource(
        Role(
            "CloudFormationExecutionRole",
            AssumeRolePolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Effect=Allow,
                        Principal=Principal("Service", "cloudformation.amazonaws.com"),
                        Action=[AssumeRole],
                    )
                ],
            ),
            Policies=[
                Policy(
                    PolicyName="create-service-stacks",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            Statement(
                                Effect=Allow, Action=[Action(name, "*") for name in EXECUTION_SERVICES], Resource=["*"]
                            ),
                            Statement(
                                Effect=Allow,
                                Action=[
                                    iam.CreateRole,
                                    iam.DeleteRole,
                                    iam.GetRole,
                                    iam.PutRolePolicy,
                                    iam.DeleteRolePolicy,
                                    iam.GetRolePolicy,
                                    iam.TagRole,
                                    iam.UntagRole,
                                    iam.PassRole,
                                    iam.UpdateAssumeRolePolicy,
                                ],
                                Resource=[Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{app}-*")],
                            ),
                            Statement(Effect=Allow, Action=[iam.CreateServiceLinkedRole], Resource=["*"]),
                        ],
                    ),
                )
            ],
            Metadata=checkov_skip(
                (
                    "CKV_AWS_109",
                    "CloudFormation creates the service stack's resources; their ARNs do not exist before it does.",
                ),
                (
                    "CKV_AWS_111",
                    "CloudFormation creates the service stack's resources; their ARNs do not exist before it does.",
                ),
                ("CKV_AWS_107", "Only CloudFormation can assume this role."),
                ("CKV_AWS_108", "Only CloudFormation can assume this role."),
                (
                    "CKV_AWS_110",
                    "Only CloudFormation can assume this role; IAM rights are limited to this app's role names.",
                ),
            ),
        )
    )
    repository = ImportValue(names.export(settings, "RepositoryArn"))
    deploy = t.add_resource(
        Role(
            "DeployRole",
            AssumeRolePolicyDocument=_github_trust(provider_arn, deploy_subjects(settings)),
            # >= the release jobs' timeout-minutes (105): release.yml asks for role-duration-seconds 7200.
            MaxSessionDuration=7200,
            Policies=[
                Policy(
                    PolicyName="release-and-rollback",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            Statement(
                                Sid="ChangeSetsOnThisAppsStacks",
                                Effect=Allow,
                                Action=[
                                    cfn.CreateChangeSet,
                                    cfn.DescribeChangeSet,
                                    cfn.ExecuteChangeSet,
                                    cfn.DeleteChangeSet,
                                    cfn.ListChangeSets,
                                    cfn.DescribeStacks,
                                    cfn.DescribeStackEvents,
                                    cfn.DescribeStackResources,
                                    cfn.GetTemplate,
                                ],
                                Resource=[stacks],
                            ),
                            _pass_to_cloudformation(execution, sid="PassTheExecutionRoleToCloudFormation"),
                            Statement(
                                Sid="RegistryLogin", Effect=Allow, Action=[ecr.GetAuthorizationToken], Resource=["*"]
                            ),
                            Statement(
                                Sid="PushAndFindImages",
                                Effect=Allow,
                                Action=[
                                    ecr.BatchCheckLayerAvailability,
                                    ecr.InitiateLayerUpload,
                                    ecr.UploadLayerPart,
                                    ecr.CompleteLayerUpload,
                                    ecr.PutImage,
                                    ecr.BatchGetImage,
                                    ecr.GetDownloadUrlForLayer,
                                    ecr.DescribeImages,
                                    ecr.DescribeRepositories,
                                ],
                                Resource=[repository],
                            ),
                            Statement(
                                Sid="WatchTheRollout",
                                Effect=Allow,
                                Action=[
                                    ecs.DescribeServices,
                                    ecs.DescribeTasks,
                                    ecs.ListTasks,
                                    ecs.DescribeTaskDefinition,
                                    elb.DescribeTargetHealth,
                                    logs.GetLogEvents,
                                ],
                                Resource=["*"],
                                Condition=Condition(StringEquals("aws:RequestedRegion", Ref("AWS::Region"))),
                            ),
                        ],
                    ),
                )
            ],
        )
    )
    diff = t.add_resource(
        Role(
            "DiffRole",
            AssumeRolePolicyDocument=_github_trust(provider_arn, diff_subjects(settings)),
            MaxSessionDuration=3600,
            Policies=[
                Policy(
                    PolicyName="preview-changes",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            Statement(
                                Effect=Allow,
                                Action=[
                                    cfn.CreateChangeSet,
                                    cfn.DescribeChangeSet,
                                    cfn.DeleteChangeSet,
                                    cfn.DescribeStacks,
                                    cfn.GetTemplate,
                                ],
                                Resource=[stacks],
                            ),
                            _pass_to_cloudformation(execution),
                        ],
                    ),
                )
            ],
        )
    )
    t.add_output(
        [
            Output("DeployRoleArn", Value=GetAtt(deploy, "Arn")),
            Output("DiffRoleArn", Value=GetAtt(diff, "Arn")),
            Output("CloudFormationRoleArn", Value=GetAtt(execution, "Arn")),
            Output("OidcProviderArn", Value=provider_arn),
        ]
    )
    return t


def _pass_to_cloudformation(execution: Role, sid: str | None = None) -> Statement:
    """Hand CloudFormation's execution role to CloudFormation, and to nothing else."""
    extra = {"Sid": sid} if sid else {}
    return Statement(
        Effect=Allow,
        Action=[iam.PassRole],
        Resource=[GetAtt(execution, "Arn")],
        Condition=Condition(StringEquals("iam:PassedToService", "cloudformation.amazonaws.com")),
        **extra,
    )


def _github_trust(provider_arn: object, subjects: list[str]) -> PolicyDocument:
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Effect=Allow,
                Principal=Principal("Federated", provider_arn),
                Action=[AssumeRoleWithWebIdentity],
                Condition=Condition(
                    [StringEquals(f"{OIDC_HOST}:aud", AUDIENCE), StringLike(f"{OIDC_HOST}:sub", subjects)]
                ),
            )
        ],
    )
