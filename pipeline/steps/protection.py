"""The load balancer's deletion protection is turned on once the service stack exists, not while it
is first created.

A first create that fails (ECS never gets the service stable) is rolled back by CloudFormation, which
deletes what it made; a protected load balancer cannot be deleted, so the rollback would end in
ROLLBACK_FAILED and every later release would be refused until someone cleaned up by hand. So the
create runs with `DeletionProtection=false` (the stack ends ROLLBACK_COMPLETE on failure, and the next
release deletes it and creates it again), and right after a successful create a second update turns
protection on (only the load balancer's attribute changes: no ECS deployment).
"""

from __future__ import annotations

from dataclasses import replace

from pipeline.aws import cloudformation as cfn
from pipeline.steps.context import Context
from pipeline.steps.deploy import Deployer, DeployOutcome, DeployResult
from pipeline.steps.scaling import declares

PARAMETER = "DeletionProtection"
EMPTY = ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS")  # the Deployer deletes these and creates the stack anew


def unprotected_for_create(ctx: Context, env: str, body: str) -> dict[str, str]:
    """{"DeletionProtection": "false"} when this deploy creates the stack; {} otherwise (the template's
    default, true, applies) or for an older template without the parameter."""
    if not declares(body, PARAMETER):
        return {}
    stack = cfn.describe_stack(ctx.clients_for(env).cloudformation, ctx.service_stack(env))
    return {PARAMETER: "false"} if stack is None or stack.status in EMPTY else {}


def protect_once_created(
    deployer: Deployer, stack_name: str, body: str, parameters: dict[str, str], result: DeployResult
) -> DeployResult:
    """After a create that ran unprotected: the same template and parameters with protection on."""
    if result.outcome is not DeployOutcome.CREATED or parameters.get(PARAMETER) != "false":
        return result
    deployer.echo(f"{stack_name}: created; turning on the load balancer's deletion protection")
    protected = deployer.deploy(stack_name, body, parameters | {PARAMETER: "true"})
    return replace(result, stack=protected.stack or result.stack)
