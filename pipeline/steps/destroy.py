"""destroy: delete one environment's service stack, and say what stays.

What stays is shared or kept on purpose: the ECR repository and its images (the `registry` stack,
shared by every environment, immutable tags), the `ci-access` roles, and the GitHub environment with
its deployment records. The service's log group is part of the stack and goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.aws import cloudformation as cfn
from pipeline.aws import ecr as ecr_api
from pipeline.aws import elbv2 as elbv2_api
from pipeline.config import Environment
from pipeline.errors import AwsError
from pipeline.steps.context import Context
from pipeline.steps.deploy import refuse_busy
from pipeline.templates import names


def is_protected(env: Environment) -> bool:
    """Production: the environment whose releases make the GitHub release (`github_release = true`, the
    one GitHub records as a production environment), or one named production."""
    return env.delivery.github_release or env.name == "production"


@dataclass
class DestroyResult:
    environment: str
    stack: str
    outcome: str  # deleted | absent
    left: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"environment": self.environment, "stack": self.stack, "outcome": self.outcome, "left": self.left}


def destroy(ctx: Context, environment: str) -> DestroyResult:
    """Delete the environment's service stack and wait, streaming its events; raises when it fails."""
    env = ctx.environment(environment)
    ctx.clients.check_credentials()
    cf = ctx.clients_for(env.name).cloudformation
    name = ctx.service_stack(env.name)
    stack = cfn.describe_stack(cf, name)
    if stack is None:
        ctx.echo(f"{name} does not exist: nothing to delete")
        return DestroyResult(env.name, name, "absent", what_is_left(ctx))
    refuse_busy(stack)
    clients = ctx.clients_for(env.name)
    # The template protects the load balancer from deletion (so no one deletes the stack by accident);
    # destroy is the deliberate way, so it lifts that protection first.
    for arn in cfn.physical_ids(cf, name, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        if elbv2_api.allow_deletion(clients.elbv2, arn):
            ctx.echo(f"{name}: deletion protection of load balancer {arn.rsplit('/', 2)[-2]} turned off")
    ctx.echo(f"{name}: deleting ({stack.status}, running {stack.parameters.get('Version') or 'nothing'})")
    ctx.deployer(env.name).delete(name)
    ctx.echo(f"{name}: deleted")
    return DestroyResult(env.name, name, "deleted", what_is_left(ctx))


def what_is_left(ctx: Context) -> list[str]:
    """What the environment's deletion keeps, one line each."""
    repository = names.repository_name(ctx.settings)
    try:
        count = len(ecr_api.images(ctx.clients.ecr, repository))
        images = f"{count} image(s)"
    except AwsError:
        images = "its images"
    app = ctx.settings.app.name
    return [
        f"ECR repository {repository} with {images} (stack {app}-registry, shared by every environment)",
        f"stacks {app}-registry and {app}-ci-access (`pipeline bootstrap`; delete them by hand once no environment is left)",
        "the GitHub environment and its deployment records",
    ]
