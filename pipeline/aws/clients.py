"""boto3 clients with the retry policy every step shares, and AWS errors turned into ours.

The endpoint, credentials and region come from the normal boto3 configuration (environment,
profiles, OIDC in Actions). Nothing here knows whether it talks to AWS or to a local stand-in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from pipeline.errors import AwsError, CredentialsError

# Adaptive mode retries throttling and transient errors with backoff and a client-side rate limit.
RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=10,
    read_timeout=60,
    user_agent_extra="ecs-model-pipeline",
)


_models_lock = threading.Lock()
_shared_loader: Any = None  # botocore's data loader: service models, read from disk once per process


def new_session(region: str) -> boto3.session.Session:
    """A boto3 session of its own (credentials are resolved per session, as the environment says at the
    time) whose service models come from the process's one loader: reading and parsing a service's
    model costs tens of milliseconds per new session otherwise."""
    global _shared_loader
    core = botocore.session.Session()
    with _models_lock:
        if _shared_loader is None:
            _shared_loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _shared_loader)
        session = boto3.session.Session(botocore_session=core, region_name=region)
        # boto3 appends its own data folder to the loader's search path for every session: keep one.
        paths = _shared_loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session


class Clients:
    """Lazily created clients for one region. Steps take this, tests pass one aimed at moto."""

    def __init__(self, region: str, session: boto3.session.Session | None = None, account: str | None = None) -> None:
        self.region = region
        self.account = account  # app.account: check_credentials refuses credentials of any other
        self._session = session or new_session(region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self._session.client(service, region_name=self.region, config=RETRY_CONFIG)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def cloudformation(self) -> Any:
        return self.client("cloudformation")

    @property
    def ecs(self) -> Any:
        return self.client("ecs")

    @property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @property
    def ecr(self) -> Any:
        return self.client("ecr")

    @property
    def elbv2(self) -> Any:
        return self.client("elbv2")

    @property
    def logs(self) -> Any:
        return self.client("logs")

    @property
    def iam(self) -> Any:
        return self.client("iam")

    @property
    def sts(self) -> Any:
        return self.client("sts")

    def check_credentials(self) -> None:
        """Fail early, before any work, when no credentials are configured."""
        try:
            credentials = self._session.get_credentials()
        except (PartialCredentialsError, BotoCoreError) as err:
            raise CredentialsError(
                f"AWS credentials are incomplete ({err})",
                hint="Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a profile or OIDC.",
            ) from None
        if credentials is None:
            raise CredentialsError(
                "no AWS credentials found",
                hint="Configure credentials (aws configure, AWS_PROFILE, or OIDC in GitHub Actions).",
            )
        if self.account is not None:
            check_account(self.sts, self.account)


def check_account(sts: Any, expected: str) -> None:
    """Refuse credentials of another account than app.account, naming both, before anything changes."""
    with aws_call("identify the AWS credentials (sts:GetCallerIdentity)"):
        identity = sts.get_caller_identity()
    actual = str(identity["Account"])
    if actual != expected:
        raise CredentialsError(
            f"these AWS credentials are for account {actual} ({identity.get('Arn', '?')}), "
            f"but app.account is {expected}",
            hint=f"Use credentials for account {expected}, or correct app.account in pipeline.toml.",
        )


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def error_message(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Message", "")) or str(err)


@contextmanager
def aws_call(what: str, hint: str | None = None) -> Iterator[None]:
    """Turn boto errors raised inside into one AwsError saying what we were doing."""
    try:
        yield
    except ClientError as err:
        code = error_code(err)
        operation = err.operation_name
        if code in (
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "AccessDenied",
            "AccessDeniedException",
        ):
            raise CredentialsError(
                f"{what}: AWS refused the credentials ({code}: {error_message(err)})",
                operation=operation,
                code=code,
                hint="Check the role or keys in use and their permissions.",
            ) from None
        raise AwsError(f"{what}: {code}: {error_message(err)}", operation=operation, code=code, hint=hint) from None
    except (NoCredentialsError, PartialCredentialsError):
        raise CredentialsError(
            f"{what}: no AWS credentials found",
            hint="Configure credentials (aws configure, AWS_PROFILE, or OIDC in GitHub Actions).",
        ) from None
    except NoRegionError:
        raise CredentialsError(
            f"{what}: no AWS region", hint="Set app.region in pipeline.toml or AWS_REGION."
        ) from None
    except EndpointConnectionError as err:
        raise AwsError(f"{what}: cannot reach AWS ({err})", hint="Check the network or AWS_ENDPOINT_URL.") from None
    except BotoCoreError as err:
        raise AwsError(
            f"{what}: {type(err).__name__}: {str(err).splitlines()[0]}",
            hint="Retry; if it persists, check AWS_ENDPOINT_URL and the service health.",
        ) from None
