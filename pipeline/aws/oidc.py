"""The account's GitHub OIDC provider: an account has at most one per issuer, so bootstrap reuses it.

Most accounts that use GitHub Actions already have `token.actions.githubusercontent.com`; creating a
second one fails (EntityAlreadyExists). The ci-access template takes an existing provider's ARN as its
`ExistingOidcProviderArn` parameter instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pipeline.aws import cloudformation as cfn
from pipeline.aws.clients import Clients, aws_call
from pipeline.config import Settings
from pipeline.templates import names
from pipeline.templates.ci_access import OIDC_HOST

PARAMETER = "ExistingOidcProviderArn"


def find_github_provider(iam: Any) -> str | None:
    """ARN of the account's provider for GitHub's issuer; its ARN ends with the issuer's host."""
    with aws_call("list the account's OIDC providers", hint="The caller needs iam:ListOpenIDConnectProviders."):
        providers = iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    for provider in providers:
        arn = str(provider["Arn"])
        if arn.endswith(f":oidc-provider/{OIDC_HOST}"):
            return arn
    return None


def ci_access_parameters(clients: Clients, settings: Settings, echo: Callable[[str], None]) -> dict[str, str]:
    """The ci-access stack's parameters: keep what a deployed stack has, else reuse the account's provider."""
    stack = cfn.describe_stack(clients.cloudformation, names.ci_access_stack(settings))
    if stack is not None and PARAMETER in stack.parameters and stack.status != "ROLLBACK_COMPLETE":
        # The stack may own the provider itself: looking it up now would hand the stack its own resource.
        existing: str | None = stack.parameters[PARAMETER]
    else:
        existing = find_github_provider(clients.iam)
        if existing:
            echo(f"using the account's GitHub OIDC provider {existing}")
    return {PARAMETER: existing} if existing else {}  # empty: the template's default creates the provider
