"""IAM actions in one place: what the release engine calls, and what CloudFormation's handlers need.

The templates grant from these lists and the tests check the granted policies against them, so a
new call in pipeline/aws or a new resource type in a service template cannot go out unpermitted.
Pure data and functions: no boto3 here (templates import this module).

Handler permissions come from the CloudFormation resource provider schemas that cfn-lint ships
(``handlers.create/update/delete.permissions``). The release job installs the package without
cfn-lint, so they are kept as a generated snapshot (``handler_permissions.py``); the test suite
compares it with cfn-lint's schemas (``schema_handler_permissions``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pipeline.templates.handler_permissions import HANDLER_PERMISSIONS

# --- what the engine calls (pipeline/aws/*, pipeline/steps/*), by what it acts on -------------------

# On the environment's own service stack: deploy/release/rollback (deploy.py, history.py, release.py).
STACK_ACTIONS: tuple[str, ...] = (
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:CreateChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:DeleteStack",  # a ROLLBACK_COMPLETE / REVIEW_IN_PROGRESS stack is deleted before a create
    "cloudformation:ContinueUpdateRollback",  # UPDATE_ROLLBACK_FAILED is continued before an update
    "cloudformation:ListStackResources",  # destroy finds the stack's load balancers
)
# `pipeline destroy` lifts the load balancer's deletion protection before deleting its own stack. The
# balancer's name is CloudFormation's choice, so no ARN pattern names only this stack's; lifting another
# environment's protection deletes nothing by itself (DeleteStack is scoped to the role's own stack).
DESTROY_ACTIONS: tuple[str, ...] = (
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
)
# `pipeline diff` on a deployed stack: a change set created, described and deleted, never executed.
PREVIEW_STACK_ACTIONS: tuple[str, ...] = (
    "cloudformation:DescribeStacks",
    "cloudformation:DescribeStackEvents",
    "cloudformation:CreateChangeSet",
    "cloudformation:DescribeChangeSet",
    "cloudformation:DeleteChangeSet",
)
# On the one ECR repository: the push (buildah/buildx through the registry API) and the look-ups.
REPOSITORY_PUSH_ACTIONS: tuple[str, ...] = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:PutImage",
)
REPOSITORY_READ_ACTIONS: tuple[str, ...] = (
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
)
# Actions IAM authorizes on "*" only.
ACCOUNT_ACTIONS: tuple[str, ...] = (
    "ecr:GetAuthorizationToken",
    "sts:GetCallerIdentity",  # the account check before any change
)
# The rollout watch and history (roll.py, history.py, aws/ecs.py).
ROLLOUT_READ_ACTIONS: tuple[str, ...] = (
    "ecs:DescribeServices",
    "ecs:ListTasks",
    "ecs:DescribeTasks",
    "ecs:ListTaskDefinitions",
    "ecs:DescribeTaskDefinition",
    "elasticloadbalancing:DescribeTargetHealth",
)
# On the service's own deployments (its stack's cluster ARNs): a cancelled or interrupted release stops
# the one it started (release.py); a traffic-shifting strategy follows it and answers its PAUSE hooks
# (steps/traffic.py, aws/ecs.py).
ROLLOUT_STOP_ACTIONS: tuple[str, ...] = (
    "ecs:ListServiceDeployments",
    "ecs:DescribeServiceDeployments",
    "ecs:StopServiceDeployment",
    "ecs:ContinueServiceDeployment",
)

# Traffic-shifting strategies (steps/traffic.py, aws/cloudwatch.py): judge the canary from its target
# group's figures and the deployment alarms, read the listener rules' weights.
TRAFFIC_ACTIONS: tuple[str, ...] = (
    "cloudwatch:GetMetricData",
    "cloudwatch:DescribeAlarms",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
)
ENGINE_ACTIONS: tuple[str, ...] = (
    *STACK_ACTIONS,
    *REPOSITORY_PUSH_ACTIONS,
    *REPOSITORY_READ_ACTIONS,
    *ACCOUNT_ACTIONS,
    *ROLLOUT_READ_ACTIONS,
    *ROLLOUT_STOP_ACTIONS,
    *TRAFFIC_ACTIONS,
    *DESTROY_ACTIONS,
)
PREVIEW_ACTIONS: tuple[str, ...] = (
    *PREVIEW_STACK_ACTIONS,
    "ecr:DescribeImages",  # diff --version finds the version's digest
    "ecr:DescribeRepositories",
    "sts:GetCallerIdentity",
)

# --- what CloudFormation needs to create, update and delete a template's resources -----------------

# The IAM actions whose `iam:PermissionsBoundary` condition key is the boundary the role gets (CreateRole,
# PutRolePermissionsBoundary) or has (the others): the execution role holds them only with the boundary
# its stack's roles carry (Service Authorization Reference, IAM: "iam:PermissionsBoundary").
BOUNDARY_CONDITIONED_ACTIONS: tuple[str, ...] = (
    "iam:AttachRolePolicy",
    "iam:CreateRole",
    "iam:DeleteRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:PutRolePolicy",
)

HANDLER_OPERATIONS = ("create", "update", "delete")

# Handler permissions for features the service templates do not use; granting them would be a guess
# the other way (s3:REST.PUT.OBJECT is not even an IAM action). Each names the feature it serves.
NOT_NEEDED: Mapping[str, Mapping[str, str]] = {
    "AWS::IAM::Role": {
        "iam:DeleteRolePermissionsBoundary": "removing a role's permissions boundary (denied: the stack's roles keep it)",
    },
    "AWS::Logs::LogGroup": {
        "s3:REST.PUT.OBJECT": "log delivery to S3",
        "firehose:TagDeliveryStream": "log delivery to Firehose",
    },
    "AWS::ElasticLoadBalancingV2::Listener": {
        "cognito-idp:DescribeUserPoolClient": "authenticate-cognito listener actions",
    },
    "AWS::EC2::FlowLog": {
        "s3:GetBucketPolicy": "flow logs to S3 (ours go to CloudWatch Logs)",
        "s3:PutBucketPolicy": "flow logs to S3 (ours go to CloudWatch Logs)",
    },
    "AWS::ApplicationAutoScaling::ScalableTarget": {
        "lambda:GetProvisionedConcurrencyConfig": "Lambda provisioned concurrency targets",
        "lambda:PutProvisionedConcurrencyConfig": "Lambda provisioned concurrency targets",
        "lambda:DeleteProvisionedConcurrencyConfig": "Lambda provisioned concurrency targets",
    },
}


def handler_actions(resource_type: str, operations: Iterable[str] = HANDLER_OPERATIONS) -> set[str]:
    """The actions CloudFormation's handlers for RESOURCE_TYPE call, minus NOT_NEEDED."""
    try:
        handlers = HANDLER_PERMISSIONS[resource_type]
    except KeyError:
        raise KeyError(f"no handler permissions for {resource_type}: run scripts/update-handler-permissions") from None
    skip = NOT_NEEDED.get(resource_type, {})
    return {a for op in operations for a in handlers.get(op, ()) if a not in skip}


def resource_types(template: Mapping[str, Any]) -> set[str]:
    return {str(r["Type"]) for r in template.get("Resources", {}).values()}


def template_actions(template: Mapping[str, Any]) -> set[str]:
    """Every action CloudFormation needs to create, update and delete TEMPLATE's resources."""
    return {a for t in resource_types(template) for a in handler_actions(t)}


def schema_handler_permissions(resource_type: str, region: str = "us-east-1") -> dict[str, tuple[str, ...]]:
    """The handler permissions in cfn-lint's provider schema (the lint extra): the snapshot's source."""
    from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

    handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, resource_type).schema.get("handlers", {})
    return {op: tuple(sorted(set(handlers.get(op, {}).get("permissions", [])))) for op in HANDLER_OPERATIONS}
