"""Typed settings from pipeline.toml, validated once into frozen objects.

Every problem is a ConfigError naming the key (`service.cpu`, `environments.staging.max_count`) and
the fix. Templates and steps only ever see a valid `Settings`.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError

DEFAULT_PATH = "pipeline.toml"

# Fargate's supported task sizes: cpu units -> allowed memory (MiB).
FARGATE_SIZES: dict[int, range] = {
    256: range(512, 2048 + 1, 512),
    512: range(1024, 4096 + 1, 1024),
    1024: range(2048, 8192 + 1, 1024),
    2048: range(4096, 16384 + 1, 1024),
    4096: range(8192, 30720 + 1, 1024),
    8192: range(16384, 61440 + 1, 4096),
    16384: range(32768, 122880 + 1, 8192),
}
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
APP_NAME = re.compile(r"^[a-z][a-z0-9-]{1,28}[a-z0-9]$")
ENV_NAME = re.compile(r"^[a-z][a-z0-9]{0,15}$")
REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
ACCOUNT = re.compile(r"^\d{12}$")
GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[A-Za-z0-9-]+$")
CIDR = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
VPC_ID = re.compile(r"^vpc-[0-9a-f]{8,17}$")
SUBNET_ID = re.compile(r"^subnet-[0-9a-f]{8,17}$")
ENV_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BUILDERS = ("auto", "buildx", "buildah")
# Rollout strategies the settings accept; pipeline.steps.strategy registers one object per name.
STRATEGIES = ("rolling",)


@dataclass(frozen=True)
class AppSettings:
    name: str
    region: str
    account: str
    github_repository: str


@dataclass(frozen=True)
class ImageSettings:
    context: str = "."
    dockerfile: str = "Dockerfile"
    builder: str = "auto"
    build_args: tuple[tuple[str, str], ...] = ()  # --build-arg NAME=VALUE for every build, e.g. BASE_IMAGE


@dataclass(frozen=True)
class ServiceSettings:
    container_port: int = 8080
    cpu: int = 512
    memory: int = 1024
    desired_count: int = 2
    min_count: int = 2
    max_count: int = 6
    cpu_target_percent: int = 60
    requests_per_target: int = 400
    health_check_path: str = "/health"
    health_check_interval: int = 10
    health_check_timeout: int = 5
    healthy_threshold: int = 2
    unhealthy_threshold: int = 3
    request_timeout: int = 30
    drain_margin: int = 5
    warmup: int = 20
    log_retention_days: int = 30
    rollout_timeout: int = 900
    alarm_5xx_count: int = 10
    alarm_latency_p99: float = 5.0

    # Derived rollout knobs (DESIGN.md, "Rollout speed is configuration").
    @property
    def deregistration_delay(self) -> int:
        """Drain an old target for as long as its longest request may still run."""
        return self.request_timeout + self.drain_margin

    @property
    def idle_timeout(self) -> int:
        """The ALB must keep a connection open longer than the longest inference."""
        return self.request_timeout + self.drain_margin

    @property
    def stop_timeout(self) -> int:
        """SIGTERM to SIGKILL: in-flight requests finish first (Fargate allows at most 120 s)."""
        return min(120, self.request_timeout + self.drain_margin)

    @property
    def modeled_rollout_seconds(self) -> int:
        """A rolling deploy's floor on AWS: warm-up, pass the health check, drain the old task."""
        return self.warmup + self.health_check_interval * self.healthy_threshold + self.deregistration_delay


@dataclass(frozen=True)
class SmokeSettings:
    path: str = "/predict"
    method: str = "POST"  # POST `request` to `path`, or GET `path` (a service with no sample request)
    request: str = "{}"
    expect_keys: tuple[str, ...] = ()
    timeout: int = 120


@dataclass(frozen=True)
class Network:
    """Either a VPC to create (`vpc_cidr`) or existing ids."""

    vpc_cidr: str | None = None
    vpc_id: str | None = None
    public_subnet_ids: tuple[str, ...] = ()
    private_subnet_ids: tuple[str, ...] = ()

    @property
    def creates_vpc(self) -> bool:
        return self.vpc_id is None


@dataclass(frozen=True)
class Delivery:
    """How a release reaches one environment: policy is a setting, never a name or a list position."""

    build: bool = False  # this environment builds and pushes the image; the others promote it from ECR
    github_release: bool = False  # a successful release here creates the GitHub release
    region: str | None = None  # AWS region of this environment (default: app.region)
    strategy: str = "rolling"  # rollout strategy (STRATEGIES)


@dataclass(frozen=True)
class Environment:
    name: str
    service: ServiceSettings
    network: Network
    certificate_arn: str | None = None
    variables: tuple[tuple[str, str], ...] = ()
    delivery: Delivery = Delivery()

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None


@dataclass(frozen=True)
class Settings:
    app: AppSettings
    image: ImageSettings
    service: ServiceSettings
    smoke: SmokeSettings
    environments: tuple[Environment, ...]
    root: Path = Path(".")

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        known = ", ".join(e.name for e in self.environments)
        raise ConfigError("environment", f"unknown environment {name!r}", hint=f"Use one of: {known}.")

    @property
    def environment_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.environments)

    def region_of(self, env: Environment) -> str:
        return env.delivery.region or self.app.region


def load(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the settings file; `PIPELINE_CONFIG` names another file."""
    file = Path(path or os.environ.get("PIPELINE_CONFIG") or DEFAULT_PATH)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            str(file), "settings file not found", hint="Run from the project root or set PIPELINE_CONFIG."
        ) from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(file), f"not valid TOML ({err})", hint="Fix the syntax at that line.") from None
    return parse(raw, root=file.resolve().parent)


def parse(raw: Mapping[str, Any], root: Path = Path(".")) -> Settings:
    _only_keys("", raw, {"app", "image", "service", "smoke", "environments"})
    app = _section(AppSettings, "app", _table(raw, "app", required=True))
    _check_app(app)
    image_raw = _table(raw, "image")
    image = _section(ImageSettings, "image", {k: v for k, v in image_raw.items() if k != "build_args"})
    image = replace(image, build_args=_build_args(_table(image_raw, "build_args", prefix="image")))
    if image.builder not in BUILDERS:
        raise ConfigError(
            "image.builder", f"unknown builder {image.builder!r}", hint=f"Use one of: {', '.join(BUILDERS)}."
        )
    service = _section(ServiceSettings, "service", _table(raw, "service"))
    _check_service("service", service)
    smoke = _section(SmokeSettings, "smoke", _table(raw, "smoke"))
    _check_smoke(smoke)
    envs_raw = _table(raw, "environments", required=True)
    if not envs_raw:
        raise ConfigError("environments", "no environment defined", hint="Add [environments.staging] (and production).")
    environments = tuple(
        _environment(name, _table(envs_raw, name, prefix="environments"), service) for name in envs_raw
    )
    return Settings(app, image, service, smoke, environments, root)


# --- sections -----------------------------------------------------------------------------------

DELIVERY_KEYS = {f.name for f in fields(Delivery)}
ENV_ONLY_KEYS = {
    "vpc_cidr",
    "vpc_id",
    "public_subnet_ids",
    "private_subnet_ids",
    "certificate_arn",
    "variables",
} | DELIVERY_KEYS


def _environment(name: str, raw: Mapping[str, Any], base: ServiceSettings) -> Environment:
    prefix = f"environments.{name}"
    if not ENV_NAME.match(name):
        raise ConfigError(
            prefix,
            "environment names are lowercase letters and digits, up to 16",
            hint="Rename it, e.g. staging or production.",
        )
    service_keys = {f.name for f in fields(ServiceSettings)}
    _only_keys(prefix, raw, service_keys | ENV_ONLY_KEYS)
    overrides = {k: v for k, v in raw.items() if k in service_keys}
    service = _section(ServiceSettings, prefix, overrides, defaults=base)
    _check_service(prefix, service)
    network_raw = {k: raw[k] for k in ("vpc_cidr", "vpc_id", "public_subnet_ids", "private_subnet_ids") if k in raw}
    network = _section(Network, prefix, network_raw)
    _check_network(prefix, network)
    certificate = raw.get("certificate_arn") or None
    if certificate is not None and not (isinstance(certificate, str) and CERTIFICATE_ARN.match(certificate)):
        raise ConfigError(
            f"{prefix}.certificate_arn",
            f"malformed certificate ARN {certificate!r}",
            hint="Use arn:aws:acm:REGION:ACCOUNT:certificate/ID, or remove it for HTTP only.",
        )
    variables = _table(raw, "variables", prefix=prefix)
    for key, value in variables.items():
        if not ENV_VAR.match(key):
            raise ConfigError(
                f"{prefix}.variables.{key}", "not a valid environment variable name", hint="Use letters, digits and _."
            )
        if not isinstance(value, str):
            raise ConfigError(
                f"{prefix}.variables.{key}",
                f"must be a string, got {type(value).__name__}",
                hint='Quote the value, e.g. "1".',
            )
    delivery = _section(Delivery, prefix, {k: v for k, v in raw.items() if k in DELIVERY_KEYS})
    if delivery.region is not None and not REGION.match(delivery.region):
        raise ConfigError(
            f"{prefix}.region", f"{delivery.region!r} is not an AWS region", hint="Use a region code such as us-east-1."
        )
    if delivery.strategy not in STRATEGIES:
        raise ConfigError(
            f"{prefix}.strategy",
            f"unknown strategy {delivery.strategy!r}",
            hint=f"Use one of: {', '.join(STRATEGIES)}.",
        )
    return Environment(name, service, network, certificate, tuple(sorted(variables.items())), delivery)


def _build_args(raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    for key, value in raw.items():
        name = f"image.build_args.{key}"
        if not ENV_VAR.match(key):
            raise ConfigError(name, "not a valid build argument name", hint="Use letters, digits and _.")
        if key == "MODEL_VERSION":
            raise ConfigError(name, "set by the pipeline from the version released", hint="Remove it.")
        if not isinstance(value, str):
            raise ConfigError(name, f"must be a string, got {type(value).__name__}", hint='Quote the value, e.g. "1".')
    return tuple(sorted(raw.items()))


def _check_app(app: AppSettings) -> None:
    if not APP_NAME.match(app.name):
        raise ConfigError(
            "app.name",
            f"{app.name!r} is not a valid name",
            hint="Use 3-30 lowercase letters, digits and dashes, starting with a letter.",
        )
    if not REGION.match(app.region):
        raise ConfigError(
            "app.region", f"{app.region!r} is not an AWS region", hint="Use a region code such as us-east-1."
        )
    if not ACCOUNT.match(app.account):
        raise ConfigError(
            "app.account", f"{app.account!r} is not an AWS account id", hint="Use the 12-digit account id, quoted."
        )
    if not GITHUB_REPO.match(app.github_repository):
        raise ConfigError(
            "app.github_repository",
            f"{app.github_repository!r} is not owner/name",
            hint="Use e.g. acme/iris-classifier.",
        )


def _check_service(prefix: str, s: ServiceSettings) -> None:
    def fail(key: str, problem: str, hint: str) -> None:
        raise ConfigError(f"{prefix}.{key}", problem, hint=hint)

    if not 1 <= s.container_port <= 65535:
        fail("container_port", f"{s.container_port} is out of range", "Use a port from 1 to 65535.")
    if s.cpu not in FARGATE_SIZES:
        fail(
            "cpu", f"Fargate offers no task with {s.cpu} cpu units", f"Use one of {', '.join(map(str, FARGATE_SIZES))}."
        )
    allowed = FARGATE_SIZES[s.cpu]
    if s.memory not in allowed:
        fail(
            "memory",
            f"Fargate offers no {s.cpu} cpu task with {s.memory} MiB",
            f"With cpu {s.cpu} use {allowed.start} to {allowed.stop - 1} MiB in steps of {allowed.step}.",
        )
    if s.min_count < 0 or s.max_count < 1:
        fail("min_count", "counts must be min_count >= 0 and max_count >= 1", "Raise them.")
    if s.min_count > s.max_count:
        fail(
            "min_count",
            f"min_count {s.min_count} is greater than max_count {s.max_count}",
            "Lower min_count or raise max_count.",
        )
    if not s.min_count <= s.desired_count <= s.max_count:
        fail(
            "desired_count",
            f"{s.desired_count} is outside min_count..max_count ({s.min_count}..{s.max_count})",
            "Pick a count within the scaling range.",
        )
    if not 1 <= s.cpu_target_percent <= 100:
        fail("cpu_target_percent", f"{s.cpu_target_percent} is not a percentage", "Use 1 to 100.")
    if s.requests_per_target < 1:
        fail("requests_per_target", "must be at least 1", "Use the requests a minute one task serves comfortably.")
    if not s.health_check_path.startswith("/"):
        fail("health_check_path", f"{s.health_check_path!r} does not start with /", "Use a path such as /health.")
    if not 5 <= s.health_check_interval <= 300:
        fail(
            "health_check_interval", f"{s.health_check_interval} is outside 5..300", "The ALB allows 5 to 300 seconds."
        )
    if not 2 <= s.health_check_timeout <= 120 or s.health_check_timeout >= s.health_check_interval:
        fail(
            "health_check_timeout",
            f"{s.health_check_timeout} must be 2..120 and less than health_check_interval",
            "Lower it.",
        )
    for key in ("healthy_threshold", "unhealthy_threshold"):
        if not 2 <= getattr(s, key) <= 10:
            fail(key, f"{getattr(s, key)} is outside 2..10", "The ALB allows 2 to 10 checks.")
    if not 1 <= s.request_timeout <= 3600:
        fail("request_timeout", f"{s.request_timeout} is outside 1..3600", "Use the longest inference time in seconds.")
    if not 0 <= s.drain_margin <= 600:
        fail("drain_margin", f"{s.drain_margin} is outside 0..600", "Use a few seconds.")
    if s.deregistration_delay > 3600:
        fail("request_timeout", "request_timeout + drain_margin exceeds the ALB's 3600 s drain limit", "Lower them.")
    if not 0 <= s.warmup <= 2147483647:
        fail("warmup", "must be 0 or more", "Use the seconds the model needs to load.")
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        fail(
            "log_retention_days",
            f"CloudWatch Logs has no {s.log_retention_days}-day retention",
            f"Use one of {', '.join(map(str, LOG_RETENTION_DAYS))}.",
        )
    if s.rollout_timeout < 60:
        fail("rollout_timeout", f"{s.rollout_timeout} is too short", "Allow at least 60 seconds.")
    if s.alarm_5xx_count < 1:
        fail("alarm_5xx_count", "must be at least 1", "Use the 5xx count a minute that means a bad release.")
    if s.alarm_latency_p99 <= 0:
        fail("alarm_latency_p99", "must be positive", "Use seconds, e.g. 5.0.")


def _check_smoke(s: SmokeSettings) -> None:
    import json

    if not s.path.startswith("/"):
        raise ConfigError("smoke.path", f"{s.path!r} does not start with /", hint="Use a path such as /predict.")
    if s.method not in ("GET", "POST"):
        raise ConfigError(
            "smoke.method", f"{s.method!r} is not GET or POST", hint='Use "POST" (with request) or "GET".'
        )
    try:
        json.loads(s.request)
    except ValueError as err:
        raise ConfigError(
            "smoke.request", f"not valid JSON ({err})", hint="Write the sample request body as a JSON string."
        ) from None
    if s.timeout < 1:
        raise ConfigError("smoke.timeout", "must be at least 1", hint="Use seconds.")


def _check_network(prefix: str, n: Network) -> None:
    if n.vpc_id is None:
        if n.public_subnet_ids or n.private_subnet_ids:
            raise ConfigError(
                f"{prefix}.vpc_id",
                "subnet ids given without vpc_id",
                hint="Set vpc_id, or remove the subnet ids to create a VPC.",
            )
        cidr = n.vpc_cidr or "10.0.0.0/16"
        match = CIDR.match(cidr)
        if not match or any(int(o) > 255 for o in match.groups()[:4]) or not 16 <= int(match.group(5)) <= 24:
            raise ConfigError(
                f"{prefix}.vpc_cidr", f"{cidr!r} is not an IPv4 CIDR from /16 to /24", hint="Use e.g. 10.40.0.0/16."
            )
        return
    if n.vpc_cidr is not None:
        raise ConfigError(
            f"{prefix}.vpc_cidr",
            "vpc_cidr and vpc_id are exclusive",
            hint="Keep vpc_cidr to create a VPC, or vpc_id to use one.",
        )
    if not VPC_ID.match(n.vpc_id):
        raise ConfigError(f"{prefix}.vpc_id", f"{n.vpc_id!r} is not a VPC id", hint="Use vpc-xxxxxxxx.")
    for key in ("public_subnet_ids", "private_subnet_ids"):
        ids = getattr(n, key)
        if len(ids) < 2:
            raise ConfigError(
                f"{prefix}.{key}", "needs at least two subnets in different zones", hint="The ALB requires two zones."
            )
        for subnet in ids:
            if not SUBNET_ID.match(subnet):
                raise ConfigError(f"{prefix}.{key}", f"{subnet!r} is not a subnet id", hint="Use subnet-xxxxxxxx.")


# --- generic field parsing ----------------------------------------------------------------------


def _table(raw: Mapping[str, Any], key: str, *, prefix: str = "", required: bool = False) -> Mapping[str, Any]:
    name = f"{prefix}.{key}" if prefix else key
    if key not in raw:
        if required:
            raise ConfigError(name, "missing", hint=f"Add a [{name}] table.")
        return {}
    value = raw[key]
    if not isinstance(value, dict):
        raise ConfigError(name, f"must be a table, got {type(value).__name__}", hint=f"Write it as [{name}].")
    return value


def _only_keys(prefix: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    for key in raw:
        if key not in allowed:
            name = f"{prefix}.{key}" if prefix else key
            close = [a for a in sorted(allowed) if a.split("_")[0] == key.split("_")[0]]
            hint = f"Did you mean {close[0]}?" if close else f"Known keys: {', '.join(sorted(allowed))}."
            raise ConfigError(name, "unknown key", hint=hint)


def _section(cls: type, prefix: str, raw: Mapping[str, Any], defaults: Any = None) -> Any:
    """Build a frozen dataclass from a table, type-checking each value against the field's type."""
    known = {f.name: f for f in fields(cls)}
    _only_keys(prefix, raw, set(known))
    values: dict[str, Any] = {}
    for name, field in known.items():
        key = f"{prefix}.{name}"
        if name not in raw:
            if defaults is None and field.default is MISSING and field.default_factory is MISSING:
                raise ConfigError(key, "missing", hint=f"Add {name} = ... to [{prefix}].")
            continue
        values[name] = _coerce(key, raw[name], str(field.type))
    return replace(defaults, **values) if defaults is not None else cls(**values)


def _coerce(key: str, value: Any, type_name: str) -> Any:
    def wrong(expected: str) -> ConfigError:
        return ConfigError(key, f"must be {expected}, got {type(value).__name__} {value!r}", hint=f"Write {expected}.")

    if type_name == "bool":
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if type_name == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong("an integer")
        return value
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong("a number")
        return float(value)
    if type_name in ("str", "str | None"):
        if not isinstance(value, str):
            raise wrong("a string")
        return value
    if type_name == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise wrong("a list of strings")
        return tuple(value)
    raise AssertionError(f"unhandled settings type {type_name}")
