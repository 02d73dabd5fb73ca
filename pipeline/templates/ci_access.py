"""The `ci-access` stack: the roles GitHub Actions assumes through OIDC, and the roles CloudFormation deploys with.

Workflows never hold AWS keys. Per environment:
- a deploy role, trusted only by jobs that run in that GitHub environment (`repo:O/R:environment:NAME`,
  so production's protection rules always apply), operating only that environment's service stack;
- a CloudFormation execution role, passed as RoleARN on that stack's change sets, holding what the
  resource provider schemas' handlers need for that template (permissions.py), IAM rights only on
  that stack's own roles and never on these CI roles.
A pull-request role previews change sets on the service stacks and cannot execute them.
Every role a service stack makes carries that environment's permissions boundary (a managed policy
here: pulling the one repository, writing the stack's log groups): the execution role may create a
role, or write or attach a role's policies, only with that boundary on it (`iam:PermissionsBoundary`),
and may never remove it, so nothing the service template declares can reach beyond the boundary.
All roles here are named `APP-ci-*` so the engine knows their ARNs (names.py) and the execution
roles can be denied them.
"""

from __future__ import annotations

from collections.abc import Iterable

from awacs.aws import (
    Action,
    Allow,
    Condition,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
)
from awacs.sts import AssumeRole, AssumeRoleWithWebIdentity
from troposphere import Equals, GetAtt, If, ImportValue, Output, Parameter, Ref, Sub, Template
from troposphere.iam import ManagedPolicy, OIDCProvider, Policy, Role

from pipeline.config import Settings
from pipeline.templates import names, permissions
from pipeline.templates.security import (
    checkov_skip,
    exec_channel_statements,
    secret_read_statements,
    task_policy_statements,
    traffic_shift_statements,
)

OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
# Services the service stacks' roles are handed to (task and execution roles, the flow log role).
STACK_ROLE_SERVICES = ("ecs-tasks.amazonaws.com", "vpc-flow-logs.amazonaws.com")
SERVICE_LINKED = {"iam:CreateServiceLinkedRole"}

# The deploy roles' session outlasts the release job's timeout (tests/test_workflow_policy.py checks both).
DEPLOY_SESSION_SECONDS = 7200


def deploy_subject(settings: Settings, environment: str) -> str:
    return f"repo:{settings.app.github_repository}:environment:{environment}"


def pull_request_subject(settings: Settings) -> str:
    return f"repo:{settings.app.github_repository}:pull_request"


def build_ci_access(settings: Settings) -> Template:
    app = settings.app.name
    t = Template(Description=f"{app}: roles GitHub Actions assumes (OIDC) and the roles CloudFormation deploys with")
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
    repository = ImportValue(names.export(settings, "RepositoryArn"))
    executions: list[Role] = []
    for env in settings.environment_names:
        suffix = names.logical_suffix(env)
        boundary = t.add_resource(_role_boundary(settings, env, repository))
        execution = t.add_resource(_execution_role(settings, env, boundary))
        executions.append(execution)
        deploy = t.add_resource(_deploy_role(settings, env, provider_arn, execution, repository))
        t.add_output(
            [
                Output(f"DeployRoleArn{suffix}", Value=GetAtt(deploy, "Arn")),
                Output(f"ExecutionRoleArn{suffix}", Value=GetAtt(execution, "Arn")),
                Output(f"RoleBoundaryArn{suffix}", Value=Ref(boundary)),
            ]
        )
    pull_request = t.add_resource(_pull_request_role(settings, provider_arn, executions, repository))
    t.add_output(
        [
            Output("PullRequestRoleArn", Value=GetAtt(pull_request, "Arn")),
            Output("OidcProviderArn", Value=provider_arn),
        ]
    )
    return t


def _role_boundary(settings: Settings, env: str, repository: object) -> ManagedPolicy:
    """The most any role of ENV's service stack may do: pull the repository's images, write the stack's logs,
    and what the settings grant the service (its task_policy Allows, its secrets, ECS Exec's channels)."""
    stack = names.service_stack(settings, env)
    environment = settings.environment(env)
    log_groups = [
        Sub(
            f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:/ecs/{settings.app.name}-{env}:*"
        ),
        Sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{stack}-*"),  # flow logs
    ]
    return ManagedPolicy(
        f"RoleBoundary{names.logical_suffix(env)}",
        ManagedPolicyName=names.role_boundary_name(settings, env),
        Description=f"Permissions boundary of every role {stack} creates",
        PolicyDocument=PolicyDocument(
            Version="2012-10-17",
            Statement=[
                # GetAuthorizationToken is account-wide: it has no resource to scope to.
                Statement(
                    Sid="RegistryLogin", Effect=Allow, Action=_actions(["ecr:GetAuthorizationToken"]), Resource=["*"]
                ),
                Statement(
                    Sid="PullTheModelImages",
                    Effect=Allow,
                    Action=_actions(
                        ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
                    ),
                    Resource=[repository],
                ),
                Statement(
                    Sid="WriteTheStacksLogs",
                    Effect=Allow,
                    Action=_actions(
                        [
                            "logs:CreateLogStream",
                            "logs:PutLogEvents",
                            "logs:DescribeLogGroups",
                            "logs:DescribeLogStreams",
                        ]
                    ),
                    Resource=log_groups,
                ),
                # What pipeline.toml grants the service itself (task_policy, secrets, ECS Exec): a new
                # grant there takes `pipeline bootstrap` (this stack) before the release that uses it.
                *secret_read_statements(environment),
                *task_policy_statements(environment, allows_only=True),
                *exec_channel_statements(environment),
                *traffic_shift_statements(environment),
            ],
        ),
    )


def _execution_role(settings: Settings, env: str, boundary: ManagedPolicy) -> Role:
    """What CloudFormation acts as on ENV's service stack: the handlers' permissions for that template."""
    from pipeline.templates.service import build_service

    needed = permissions.template_actions(build_service(settings, env).to_dict())
    role_actions = sorted(a for a in needed if a.startswith("iam:") and a not in SERVICE_LINKED)
    bounded = set(permissions.BOUNDARY_CONDITIONED_ACTIONS)
    other = sorted(a for a in needed if not a.startswith("iam:"))
    stack_roles = Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{names.service_stack(settings, env)}-*")
    ci_roles = Sub(f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:role/{names.ci_role_prefix(settings)}*")
    statements = [
        Statement(Sid="ServiceStackResources", Effect=Allow, Action=_actions(other), Resource=["*"]),
        Statement(
            Sid="TheStacksOwnRoles",
            Effect=Allow,
            Action=_actions(a for a in role_actions if a != "iam:PassRole" and a not in bounded),
            Resource=[stack_roles],
        ),
        Statement(
            Sid="TheStacksOwnRolesOnlyWithTheirBoundary",
            Effect=Allow,
            Action=_actions(a for a in role_actions if a in bounded),
            Resource=[stack_roles],
            Condition=Condition(StringEquals("iam:PermissionsBoundary", Ref(boundary))),
        ),
        Statement(
            Sid="HandTheStacksRolesToTheirServices",
            Effect=Allow,
            Action=_actions(["iam:PassRole"]),
            Resource=[stack_roles],
            Condition=Condition(StringEquals("iam:PassedToService", list(STACK_ROLE_SERVICES))),
        ),
        Statement(
            Sid="NeverTheCiRoles",
            Effect=Deny,
            Action=_actions(role_actions),
            Resource=[ci_roles],
        ),
        Statement(
            Sid="NeverWithoutTheBoundary",
            Effect=Deny,
            Action=_actions(["iam:DeleteRolePermissionsBoundary"]),
            Resource=["*"],
        ),
    ]
    if needed & SERVICE_LINKED:
        statements.insert(
            4,
            Statement(
                Sid="ServiceLinkedRoles",
                Effect=Allow,
                Action=_actions(sorted(needed & SERVICE_LINKED)),
                Resource=[Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/aws-service-role/*")],
            ),
        )
    reason = "CloudFormation creates the service stack's resources; their ARNs do not exist before it does."
    return Role(
        f"ExecutionRole{names.logical_suffix(env)}",
        RoleName=names.execution_role_name(settings, env),
        Description=f"CloudFormation acts as this role on {names.service_stack(settings, env)}",
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
                PolicyName=f"deploy-{names.service_stack(settings, env)}",
                PolicyDocument=PolicyDocument(Version="2012-10-17", Statement=statements),
            )
        ],
        Metadata=checkov_skip(
            ("CKV_AWS_109", reason),
            ("CKV_AWS_111", reason),
            ("CKV_AWS_107", "Only CloudFormation can assume this role."),
            ("CKV_AWS_108", "Only CloudFormation can assume this role."),
            ("CKV_AWS_110", "IAM rights are limited to this stack's own role names, each carrying the boundary."),
        ),
    )


def _deploy_role(settings: Settings, env: str, provider_arn: object, execution: Role, repository: object) -> Role:
    """What a job in GitHub environment ENV holds: change sets on ENV's stack, the repository, the rollout reads."""
    return Role(
        f"DeployRole{names.logical_suffix(env)}",
        RoleName=names.deploy_role_name(settings, env),
        Description=f"GitHub Actions jobs in environment {env} release to {names.service_stack(settings, env)}",
        AssumeRolePolicyDocument=_github_trust(provider_arn, deploy_subject(settings, env)),
        MaxSessionDuration=DEPLOY_SESSION_SECONDS,
        Policies=[
            Policy(
                PolicyName="release-and-rollback",
                PolicyDocument=PolicyDocument(
                    Version="2012-10-17",
                    Statement=[
                        Statement(
                            Sid="ThisEnvironmentsStack",
                            Effect=Allow,
                            Action=_actions(permissions.STACK_ACTIONS),
                            Resource=[_stack_arn(settings, env)],
                        ),
                        _pass_to_cloudformation([execution]),
                        Statement(
                            Sid="PushAndFindImages",
                            Effect=Allow,
                            Action=_actions(
                                [*permissions.REPOSITORY_PUSH_ACTIONS, *permissions.REPOSITORY_READ_ACTIONS]
                            ),
                            Resource=[repository],
                        ),
                        Statement(
                            Sid="FollowAndStopItsOwnRollouts",
                            Effect=Allow,
                            Action=_actions(permissions.ROLLOUT_STOP_ACTIONS),
                            Resource=_service_deployment_arns(settings, env),
                        ),
                        Statement(
                            Sid="AccountWide",
                            Effect=Allow,
                            Action=_actions(permissions.ACCOUNT_ACTIONS),
                            Resource=["*"],
                        ),
                        _in_this_region("WatchTheRollout", permissions.ROLLOUT_READ_ACTIONS),
                        _in_this_region("LiftDeletionProtectionToDestroy", permissions.DESTROY_ACTIONS),
                        _in_this_region("JudgeTrafficShifts", permissions.TRAFFIC_ACTIONS),
                    ],
                ),
            )
        ],
    )


def _pull_request_role(settings: Settings, provider_arn: object, executions: list[Role], repository: object) -> Role:
    """Pull requests preview change sets on every service stack; nothing here executes one."""
    return Role(
        "PullRequestRole",
        RoleName=names.pull_request_role_name(settings),
        Description="GitHub Actions pull request jobs preview the service stacks' change sets",
        AssumeRolePolicyDocument=_github_trust(provider_arn, pull_request_subject(settings)),
        MaxSessionDuration=3600,
        Policies=[
            Policy(
                PolicyName="preview-changes",
                PolicyDocument=PolicyDocument(
                    Version="2012-10-17",
                    Statement=[
                        Statement(
                            Sid="PreviewTheServiceStacks",
                            Effect=Allow,
                            Action=_actions(permissions.PREVIEW_STACK_ACTIONS),
                            Resource=[_stack_arn(settings, env) for env in settings.environment_names],
                        ),
                        _pass_to_cloudformation(executions),
                        Statement(
                            Sid="FindImages",
                            Effect=Allow,
                            Action=_actions(["ecr:DescribeImages", "ecr:DescribeRepositories"]),
                            Resource=[repository],
                        ),
                        Statement(
                            Sid="AccountWide", Effect=Allow, Action=_actions(["sts:GetCallerIdentity"]), Resource=["*"]
                        ),
                    ],
                ),
            )
        ],
    )


def _in_this_region(sid: str, names_: Iterable[str]) -> Statement:
    """Actions that take no resource ARN (or any): allowed on `*`, but only in the stack's own region."""
    return Statement(
        Sid=sid,
        Effect=Allow,
        Action=_actions(names_),
        Resource=["*"],
        Condition=Condition(StringEquals("aws:RequestedRegion", Ref("AWS::Region"))),
    )


def _actions(names_: Iterable[str]) -> list[Action]:
    return [Action(*name.split(":", 1)) for name in names_]


def _stack_arn(settings: Settings, env: str) -> Sub:
    stack = names.service_stack(settings, env)
    return Sub(f"arn:${{AWS::Partition}}:cloudformation:${{AWS::Region}}:${{AWS::AccountId}}:stack/{stack}/*")


def _service_deployment_arns(settings: Settings, env: str) -> list[Sub]:
    """ENV's service and its service deployments: the cluster's name is generated from the stack's
    (STACK-Cluster-RANDOM), so the pattern reaches no other stack's service."""
    cluster = f"{names.service_stack(settings, env)}-Cluster-*"
    head = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}"
    return [Sub(f"{head}:service/{cluster}/*"), Sub(f"{head}:service-deployment/{cluster}/*")]


def _pass_to_cloudformation(executions: list[Role]) -> Statement:
    """Hand the execution role(s) to CloudFormation, and to nothing else."""
    return Statement(
        Sid="PassTheExecutionRoleToCloudFormation",
        Effect=Allow,
        Action=_actions(["iam:PassRole"]),
        Resource=[GetAtt(e, "Arn") for e in executions],
        Condition=Condition(StringEquals("iam:PassedToService", "cloudformation.amazonaws.com")),
    )


def _github_trust(provider_arn: object, subject: str) -> PolicyDocument:
    """Exactly one subject, compared with StringEquals: no wildcard can widen it."""
    return PolicyDocument(
        Version="2012-10-17",
        Statement=[
            Statement(
                Effect=Allow,
                Principal=Principal("Federated", provider_arn),
                Action=[AssumeRoleWithWebIdentity],
                Condition=Condition(StringEquals({f"{OIDC_HOST}:aud": AUDIENCE, f"{OIDC_HOST}:sub": subject})),
            )
        ],
    )
