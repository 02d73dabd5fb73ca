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
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigNotFound,
    ConfigParseError,
    CredentialRetrievalError,
    EndpointConnectionError,
    InvalidChecksumConfigError,
    InvalidConfigError,
    InvalidDefaultsMode,
    InvalidEndpointConfigurationError,
    InvalidIMDSEndpointError,
    InvalidIMDSEndpointModeError,
    InvalidProxiesConfigError,
    InvalidRetryConfigurationError,
    InvalidSTSRegionalEndpointsConfigError,
    LoginError,
    NoAuthTokenError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
    UnknownCredentialError,
)
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

from pipeline.errors import AwsConfigError, AwsError, CredentialsError, PipelineError
from pipeline.urls import is_http_url

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
    with _models_lock, configuration():  # the loader reads the AWS config: a bad profile fails here
        if _shared_loader is None:
            _shared_loader = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _shared_loader)
        session = boto3.session.Session(botocore_session=core, region_name=region)
        # boto3 appends its own data folder to the loader's search path for every session: keep one.
        paths = _shared_loader.search_paths
        paths[:] = list(dict.fromkeys(paths))
    return session


def check_endpoint(core: botocore.session.Session, service: str) -> None:
    """Refuse a configured endpoint URL botocore would choke on (ValueError "Invalid endpoint", or a
    scheme it only refuses at the first call), naming where it came from."""
    if core.get_config_variable("ignore_configured_endpoint_urls"):
        return
    url = ConfiguredEndpointProvider(core.full_config, core.get_scoped_config(), service).provide()
    if url is None:
        return
    if is_http_url(url) and (is_valid_endpoint_url(url) or is_valid_ipv6_endpoint_url(url)):
        return
    # botocore reads the variables; providers without the files (or for no service) say which one it was
    variable_fix = "Unset it to use AWS itself, or set it like http://localhost:5000."
    if ConfiguredEndpointProvider({}, {}, "none").provide() == url:
        raise AwsConfigError(f"AWS_ENDPOINT_URL {url!r} is not an http(s) URL", hint=variable_fix)
    if ConfiguredEndpointProvider({}, {}, service).provide() == url:
        raise AwsConfigError(
            f"the {service} endpoint URL {url!r} (an AWS_ENDPOINT_URL_* variable) is not an http(s) URL",
            hint=variable_fix,
        )
    profile = core.get_config_variable("profile") or "default"
    raise AwsConfigError(
        f"endpoint_url {url!r} in the AWS config (profile {profile}) is not an http(s) URL",
        hint="Fix or remove it in the AWS config file (AWS_CONFIG_FILE).",
    )


class Clients:
    """Lazily created clients for one region. Steps take this, tests pass one aimed at moto."""

    def __init__(self, region: str, session: boto3.session.Session | None = None, account: str | None = None) -> None:
        self.region = region
        self.account = account  # app.account: check_credentials refuses credentials of any other
        self._session = session or new_session(region)
        self._clients: dict[str, Any] = {}

    def client(self, service: str) -> Any:
        if service not in self._clients:
            with configuration():  # credentials and the endpoint are resolved now: partial keys fail here
                check_endpoint(self._session._session, service)
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
        with configuration():
            credentials = self._session.get_credentials()
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
    except BotoCoreError as err:
        raise botocore_error(err, what) from None


@contextmanager
def configuration() -> Iterator[None]:
    """Turn botocore's complaints about its configuration (profile, config file, credentials) into ours."""
    try:
        yield
    except BotoCoreError as err:
        raise botocore_error(err) from None


# Errors in what the user configured for boto3: fixing the configuration is the only cure (exit 2).
_CONFIGURATION_ERRORS = (
    ConfigNotFound,
    InvalidConfigError,
    InvalidDefaultsMode,
    InvalidEndpointConfigurationError,
    InvalidIMDSEndpointError,
    InvalidIMDSEndpointModeError,
    InvalidProxiesConfigError,
    InvalidRetryConfigurationError,
    InvalidSTSRegionalEndpointsConfigError,
    InvalidChecksumConfigError,
    UnknownCredentialError,
)
# Credentials that are configured but could not be fetched: an expired SSO login, a failing credential_process.
_RETRIEVAL_ERRORS = (CredentialRetrievalError, TokenRetrievalError, NoAuthTokenError, SSOError, LoginError)


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def botocore_error(err: BotoCoreError, what: str = "") -> PipelineError:
    """The one translation of a botocore error into ours, with the fix as hint: aws_call, the client
    factory and the CLI's last resort all use it, so no botocore traceback reaches a user."""
    doing = f"{what}: " if what else ""
    if isinstance(err, ProfileNotFound):
        profile = err.kwargs.get("profile", "")
        return AwsConfigError(
            f"AWS profile {profile!r} is not in the AWS config (AWS_PROFILE)",
            hint=f"Fix AWS_PROFILE, or add the profile with aws configure --profile {profile}.",
        )
    if isinstance(err, ConfigParseError):
        return AwsConfigError(
            f"the AWS config file {err.kwargs.get('path', '')} cannot be parsed",
            hint="Fix its syntax ([default] or [profile NAME] headers, key = value lines), "
            "or point AWS_CONFIG_FILE or AWS_SHARED_CREDENTIALS_FILE at another file.",
        )
    if isinstance(err, PartialCredentialsError):
        provider, missing = err.kwargs.get("provider", ""), err.kwargs.get("cred_var", "")
        if provider == "env":
            return CredentialsError(
                f"AWS credentials in the environment are incomplete: {missing} is not set",
                hint="Set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or unset both to use a profile or OIDC.",
            )
        return CredentialsError(
            f"AWS credentials from {provider} are incomplete: {missing} is missing",
            hint="Set both keys for the profile (aws configure), or use another profile.",
        )
    if isinstance(err, NoCredentialsError):
        return CredentialsError(
            f"{doing}no AWS credentials found",
            hint="Configure credentials (aws configure, AWS_PROFILE, or OIDC in GitHub Actions).",
        )
    if isinstance(err, NoRegionError):
        return CredentialsError(f"{doing}no AWS region", hint="Set app.region in pipeline.toml or AWS_REGION.")
    if isinstance(err, _CONFIGURATION_ERRORS):
        return AwsConfigError(
            f"the AWS configuration is invalid: {_first_line(err)}",
            hint="Fix the AWS config file (AWS_CONFIG_FILE) or the AWS_* variable it names.",
        )
    if isinstance(err, _RETRIEVAL_ERRORS):
        return CredentialsError(
            f"{doing}AWS credentials could not be obtained: {_first_line(err)}",
            hint="Renew them (aws sso login for an SSO profile) or fix the profile's credential_process or role.",
        )
    if isinstance(err, EndpointConnectionError):
        return AwsError(f"{doing}cannot reach AWS ({err})", hint="Check the network or AWS_ENDPOINT_URL.")
    return AwsError(
        f"{doing}{type(err).__name__}: {_first_line(err)}",
        hint="Retry; if it persists, check AWS_ENDPOINT_URL and the service health.",
    )
