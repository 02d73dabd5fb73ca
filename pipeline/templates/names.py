"""Stack, export and file names: one place so steps and templates agree."""

from __future__ import annotations

from pipeline.config import Settings


def registry_stack(settings: Settings) -> str:
    return f"{settings.app.name}-registry"


def ci_access_stack(settings: Settings) -> str:
    return f"{settings.app.name}-ci-access"


def service_stack(settings: Settings, environment: str) -> str:
    return f"{settings.app.name}-service-{environment}"


def repository_name(settings: Settings) -> str:
    return settings.app.name


def export(settings: Settings, what: str) -> str:
    """Name of a value the registry stack exports for the service stacks."""
    return f"{registry_stack(settings)}-{what}"


def template_file(stack_kind: str, environment: str | None = None) -> str:
    return f"{stack_kind}-{environment}.yaml" if environment else f"{stack_kind}.yaml"


# The roles of the ci-access stack have fixed names, so the engine knows their ARNs without a lookup
# and the execution roles' policies can keep every stack's roles away from them (prefix `APP-ci-`).


def ci_role_prefix(settings: Settings) -> str:
    return f"{settings.app.name}-ci-"


def deploy_role_name(settings: Settings, environment: str) -> str:
    return f"{ci_role_prefix(settings)}deploy-{environment}"


def execution_role_name(settings: Settings, environment: str) -> str:
    return f"{ci_role_prefix(settings)}cfn-{environment}"


def pull_request_role_name(settings: Settings) -> str:
    return f"{ci_role_prefix(settings)}pull-request"


def partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def role_arn(settings: Settings, role_name: str) -> str:
    return f"arn:{partition(settings.app.region)}:iam::{settings.app.account}:role/{role_name}"


def execution_role_arn(settings: Settings, environment: str) -> str:
    """The role CloudFormation acts as for ENVIRONMENT's service stack: passed as RoleARN on its change sets."""
    return role_arn(settings, execution_role_name(settings, environment))


def role_boundary_name(settings: Settings, environment: str) -> str:
    """The managed policy (ci-access stack) every role of ENVIRONMENT's service stack carries as its
    permissions boundary: the execution role may create or change a role only with it."""
    return f"{ci_role_prefix(settings)}boundary-{environment}"


def deploy_role_arn(settings: Settings, environment: str) -> str:
    return role_arn(settings, deploy_role_name(settings, environment))


def pull_request_role_arn(settings: Settings) -> str:
    return role_arn(settings, pull_request_role_name(settings))


def logical_suffix(environment: str) -> str:
    """`staging` -> `Staging`: environment names (lowercase letters and digits) in logical ids and output keys."""
    return environment.capitalize()
