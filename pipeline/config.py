"""Typed settings from pipeline.toml, validated once into frozen objects.

Every problem names its key (`service.cpu`, `environments.staging.max_count`) and the fix; all the
problems of a file are collected and raised together as one `ConfigProblems`. Templates and steps only
ever see a valid `Settings`.
"""

from __future__ import annotations

import difflib
import errno
import ipaddress
import json
import math
import os
import re
import stat
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, replace
from pathlib import Path
from typing import Any

from pipeline.errors import ConfigError, ConfigProblems, GoldenSetError

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
# The CPU the image is built for and Fargate runs it on (the task definition's RuntimePlatform).
ARCHITECTURES = ("X86_64", "ARM64")
# Where a container secret comes from: a Secrets Manager secret's full ARN (its 6-character suffix
# included, optionally with :json-key:version-stage:version-id), or an SSM parameter's ARN.
SECRET_ARN = re.compile(
    r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}(:[^:]*:[^:]*:[^:]*)?$"
)
PARAMETER_ARN = re.compile(r"^arn:aws[a-z-]*:ssm:[a-z0-9-]+:\d{12}:parameter/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
# Rollout strategies the settings accept; pipeline.steps.strategy registers one object per name.
STRATEGIES = ("rolling", "blue_green", "canary", "linear")
# The strategies where ECS shifts traffic between two target groups (the rest replace tasks in place).
TRAFFIC_STRATEGIES = ("blue_green", "canary", "linear")
# Container variables the service template sets itself: a value in `variables` would be overridden.
RESERVED_VARIABLES = {
    "PORT": "is set from container_port",
    "MODEL_VERSION": "is set to the version being deployed",
}
# Inclusive bounds of the [service] numbers (None: no upper bound), with the fix; the JSON Schema
# (pipeline.schema) publishes the same bounds.
SERVICE_RANGES: dict[str, tuple[int, int | None, str]] = {
    "container_port": (1, 65535, "Use a port from 1 to 65535."),
    "desired_count": (0, None, "Use 0 or more tasks."),
    "min_count": (0, None, "Use 0 or more tasks."),
    "max_count": (1, None, "Allow at least 1 task."),
    "cpu_target_percent": (1, 100, "Use a percentage from 1 to 100."),
    "requests_per_target": (1, None, "Use the requests a minute one task serves comfortably."),
    "health_check_interval": (5, 300, "The ALB allows 5 to 300 seconds."),
    "health_check_timeout": (2, 120, "The ALB allows 2 to 120 seconds."),
    "healthy_threshold": (2, 10, "The ALB allows 2 to 10 checks."),
    "unhealthy_threshold": (2, 10, "The ALB allows 2 to 10 checks."),
    "request_timeout": (1, 3600, "Use the longest inference time in seconds."),
    "drain_margin": (0, 600, "Use a few seconds."),
    # ECS would take a 68-year grace period; a load budget over an hour is a slip of the keyboard, named
    # here rather than as a rollout floor no rollout_timeout reaches.
    "warmup": (0, 3600, "Use the seconds the model needs to load, at most 3600 (an hour)."),
    "rollout_timeout": (60, None, "Allow at least 60 seconds."),
    "alarm_min_requests": (1, None, "Use the requests a minute below which a 5xx rate means nothing, e.g. 50."),
}
SMOKE_TIMEOUT_MIN = 1
# The rollout floor's inputs: a floor computed from a refused one would be a second problem for one mistake.
FLOOR_KEYS = frozenset(
    ("warmup", "health_check_interval", "healthy_threshold", "request_timeout", "drain_margin", "rollout_timeout")
)
# The deployment alarms' longest Period x EvaluationPeriods (templates/service.py: p99 latency, 60 s x 3):
# ECS bakes a rolling deployment that long after it is steady (tests/templates check the two agree).
ALARM_BAKE_SECONDS = 180


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
    architecture: str = "X86_64"  # ARCHITECTURES: what the image is built for and the tasks run on
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
    alarm_5xx_percent: float = 5.0  # target 5xx as a share of requests in a minute...
    alarm_min_requests: int = 50  # ...counted once the minute has this many requests
    alarm_latency_p99: float = 5.0
    execute_command: bool = False  # ECS Exec: a shell in a running task (makes the root filesystem writable)
    secrets_kms_key: str | None = None  # the customer-managed key the secrets are encrypted with, if any

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
class TrafficShift:
    """How ECS moves traffic for blue_green, canary and linear (ignored by rolling)."""

    canary_percent: float = 10.0  # share of production traffic the canary takes first
    canary_bake_minutes: int = 5  # canary at that share before the rest shifts
    linear_step_percent: float = 25.0  # share added per linear step
    linear_step_bake_minutes: int = 2  # wait between linear steps
    bake_minutes: int = 5  # old tasks keep running after the last shift: rollback is a traffic shift
    hook_timeout_minutes: int = 30  # a PAUSE hook nobody answers rolls the deployment back after this
    test_listener_port: int = 9000  # the test listener's own port on the load balancer
    test_listener_cidrs: tuple[str, ...] = ()  # who reaches the test listener; empty: the VPC CIDR only

    @property
    def linear_steps(self) -> int:
        """Production traffic shifts of a linear deployment (the last one reaches 100%)."""
        return math.ceil(round(100 / self.linear_step_percent, 6))


@dataclass(frozen=True)
class PolicyStatement:
    """One statement of the task role's policy: what the model server may do in AWS."""

    actions: tuple[str, ...]
    resources: tuple[str, ...]
    effect: str = "Allow"


@dataclass(frozen=True)
class Secret:
    """A container variable whose value ECS reads at task start from Secrets Manager or SSM Parameter Store."""

    name: str
    value_from: str  # the ARN (SECRET_ARN or PARAMETER_ARN)

    @property
    def store(self) -> str:
        """secretsmanager or ssm: the service the execution role reads it from."""
        return self.value_from.split(":")[2]

    @property
    def resource(self) -> str:
        """The ARN IAM scopes the read to: a secret's without its json-key:version-stage:version-id tail."""
        return ":".join(self.value_from.split(":")[:7]) if self.store == "secretsmanager" else self.value_from


@dataclass(frozen=True)
class Environment:
    name: str
    service: ServiceSettings
    network: Network
    certificate_arn: str | None = None
    variables: tuple[tuple[str, str], ...] = ()  # [service.variables] with this environment's merged over them
    delivery: Delivery = Delivery()
    traffic: TrafficShift = TrafficShift()
    secrets: tuple[Secret, ...] = ()  # [service.secrets] with this environment's merged over them
    task_policy: tuple[PolicyStatement, ...] = ()  # [service]'s statements, then this environment's

    @property
    def shifts_traffic(self) -> bool:
        return self.delivery.strategy in TRAFFIC_STRATEGIES

    @property
    def modeled_bake_seconds(self) -> int:
        """How long ECS keeps a deployment IN_PROGRESS after it is steady: a rolling one for its alarms'
        longest evaluation, a traffic shift for its bake times (the steps' bakes before the last shift)."""
        t = self.traffic
        steps = {"canary": t.canary_bake_minutes, "linear": t.linear_step_bake_minutes * (t.linear_steps - 1)}
        if not self.shifts_traffic:
            return ALARM_BAKE_SECONDS
        return (t.bake_minutes + steps.get(self.delivery.strategy, 0)) * 60

    @property
    def rollout_floor_seconds(self) -> int:
        """The least rollout_timeout a deployment can meet: the modeled rollout plus the bake."""
        return self.service.modeled_rollout_seconds + self.modeled_bake_seconds

    @property
    def https(self) -> bool:
        return self.certificate_arn is not None


@dataclass(frozen=True)
class GateSettings:
    """The model gate: the golden set sent to the new version through the test listener before production."""

    golden_set: str  # JSONL under the repository: {"request": <body>, "expected": <answer>} per line
    path: str = "/predict"  # where each golden request is POSTed
    answer_key: str = "predictions"  # the response field compared with `expected`
    version_key: str = "version"  # the response field naming the served model version
    min_accuracy: float = 0.9  # share of golden answers the new version must get right
    min_agreement: float = 0.0  # share of answers equal to the version serving now; 0 skips the comparison
    max_p99_ms: float = 1000.0  # p99 latency of the golden requests
    require_version: bool = True  # every answer must name the version being released
    concurrency: int = 4  # golden requests in flight at once
    request_timeout: float = 5.0  # seconds per golden request


@dataclass(frozen=True)
class Settings:
    app: AppSettings
    image: ImageSettings
    service: ServiceSettings
    smoke: SmokeSettings
    environments: tuple[Environment, ...]
    root: Path = Path(".")
    gate: GateSettings | None = None  # no [gate] table: releases are not gated on model quality

    def environment(self, name: str) -> Environment:
        for env in self.environments:
            if env.name == name:
                return env
        names = self.environment_names
        close = _closest(name, names)
        hint = f"Did you mean {close}?" if close else f"Use one of: {', '.join(names)}."
        raise ConfigError("environment", f"unknown environment {name!r}", hint=hint)

    @property
    def environment_names(self) -> tuple[str, ...]:
        return tuple(e.name for e in self.environments)

    def region_of(self, env: Environment) -> str:
        return env.delivery.region or self.app.region


def load(path: str | os.PathLike[str] | None = None, *, image_files: bool = False) -> Settings:
    """Read and validate the settings file; `PIPELINE_CONFIG` names another file. With `image_files`
    (`pipeline check`) the build context and Dockerfile must exist too."""
    named = path or os.environ.get("PIPELINE_CONFIG")
    file = Path(named or DEFAULT_PATH)
    try:
        text = file.read_bytes().decode("utf-8")
    except FileNotFoundError:
        # A file the user named is a typo to fix; the default one means another folder.
        hint = (
            "Check the path (--config / PIPELINE_CONFIG)."
            if named
            else "Run from the project root or set PIPELINE_CONFIG."
        )
        raise ConfigError(str(file), "settings file not found", hint=hint) from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            str(file),
            f"not UTF-8 text (byte 0x{err.object[err.start]:02x} at offset {err.start})",
            hint="TOML files are UTF-8: save it with that encoding.",
        ) from None
    except OSError as err:
        raise ConfigError(
            str(file), f"cannot be read ({err.strerror})", hint="Point PIPELINE_CONFIG or --config at a file."
        ) from None
    if text.startswith("\ufeff"):
        # TOML 1.0 does not mention a BOM; tomllib refuses one as an "invalid statement" at 1:1, which hides why.
        raise ConfigError(
            str(file),
            "starts with a UTF-8 byte order mark (BOM), which TOML parsers such as Python's tomllib refuse",
            hint="Save it as UTF-8 without BOM.",
        )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(str(file), f"not valid TOML ({err})", hint="Fix the syntax at that line.") from None
    return parse(raw, root=file.resolve().parent, source=str(file), image_files=image_files)


POLL_ENV = "PIPELINE_POLL_SECONDS"
DEFAULT_POLL_SECONDS = 5.0
MAX_POLL_SECONDS = 300.0


TIME_SCALE_ENV = "PIPELINE_TIME_SCALE"
MIN_POLL_SECONDS = 0.05


def time_scale(environ: Mapping[str, str]) -> float:
    """How long an AWS second lasts where the pipeline runs: $PIPELINE_TIME_SCALE, set by a local ground
    that scales every AWS duration by one factor (so the pipeline's own timeouts shrink alike), else 1."""
    return factor_from(environ, TIME_SCALE_ENV, 1.0, hint="Unset it outside a local ground.")


def factor_from(environ: Mapping[str, str], name: str, default: float, hint: str) -> float:
    """$name as a factor above 0 and at most 1, else `default`; anything else is one ConfigError naming it."""
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ConfigError(name, f"{text!r} is not a factor above 0 and at most 1", hint=hint)
    return value


def poll_seconds(environ: Mapping[str, str]) -> float:
    """Seconds between AWS polls while waiting: $PIPELINE_POLL_SECONDS, else 5 scaled by $PIPELINE_TIME_SCALE."""
    text = environ.get(POLL_ENV, "").strip()
    if not text:
        return max(MIN_POLL_SECONDS, DEFAULT_POLL_SECONDS * time_scale(environ))
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_POLL_SECONDS):
        raise ConfigError(
            POLL_ENV,
            f"{text!r} is not a number of seconds above 0 and at most {MAX_POLL_SECONDS:g}",
            hint=f"Use e.g. 0.5, or unset it for {DEFAULT_POLL_SECONDS:g} seconds.",
        )
    return value


class Problems:
    """Every problem found in one settings file, in the order found."""

    def __init__(self) -> None:
        self.found: list[ConfigError] = []

    def add(self, key: str, problem: str, hint: str) -> None:
        self.found.append(ConfigError(key, problem, hint=hint))

    def __len__(self) -> int:
        return len(self.found)


TABLES = ("app", "image", "service", "smoke", "environments", "gate")


def parse(
    raw: Mapping[str, Any], root: Path = Path("."), source: str = DEFAULT_PATH, *, image_files: bool = False
) -> Settings:
    """Validate a parsed settings file; raise ConfigProblems listing every problem, or return Settings.

    `image_files`: the build context and Dockerfile must exist under `root`. Off by default: promoting,
    rolling back and synthesizing templates need no Dockerfile, and tests build settings without files."""
    problems = Problems()
    _only_keys(problems, "", raw, set(TABLES))
    app_raw = _table(problems, raw, "app", required=True)
    app = _section(problems, AppSettings, "app", app_raw) if app_raw is not None else None
    if app is not None:
        _check_app(problems, app)
    image_raw = _table(problems, raw, "image") or {}
    image = _section(problems, ImageSettings, "image", {k: v for k, v in image_raw.items() if k != "build_args"})
    if image is not None:
        _check_image(problems, image, root, image_files)
        build_args = _table(problems, image_raw, "build_args", prefix="image")
        image = replace(image, build_args=_build_args(problems, build_args or {}))
    service_raw = _table(problems, raw, "service") or {}
    _only_keys(problems, "service", service_raw, SERVICE_KEYS | set(CONTAINER_TABLES))
    service_scalars = {k: v for k, v in service_raw.items() if k in SERVICE_KEYS}
    service = _section(problems, ServiceSettings, "service", service_scalars)
    if service is not None:
        _check_service(problems, "service", service)
    shared = _container(problems, "service", service_raw, ContainerExtras())
    smoke_raw = _table(problems, raw, "smoke") or {}
    smoke = _section(problems, SmokeSettings, "smoke", smoke_raw)
    if smoke is not None:
        _check_smoke(problems, smoke, request_given="request" in smoke_raw)
    environments = []
    envs_raw = _table(problems, raw, "environments", required=True)
    if envs_raw is not None and not envs_raw:
        problems.add("environments", "no environment defined", "Add [environments.staging] (and production).")
    for name in envs_raw or {}:
        env_raw = _table(problems, envs_raw or {}, name, prefix="environments")
        if env_raw is not None:
            environments.append(_environment(problems, name, env_raw, service, shared))
    _check_rollout_timeouts(problems, [e for e in environments if e is not None], envs_raw or {})
    gate_raw = _table(problems, raw, "gate") if "gate" in raw else None
    gate = _gate(problems, gate_raw, root) if gate_raw is not None else None
    if problems:
        raise ConfigProblems(source, problems.found)
    assert app is not None and image is not None and service is not None and smoke is not None  # nosec B101 # no problem found means each was parsed
    return Settings(app, image, service, smoke, tuple(e for e in environments if e is not None), root, gate)


# --- sections -----------------------------------------------------------------------------------

SERVICE_KEYS = {f.name for f in fields(ServiceSettings)}
NETWORK_KEYS = {f.name for f in fields(Network)}
DELIVERY_KEYS = {f.name for f in fields(Delivery)}
# Sub-tables of [service] and [environments.NAME] beside the scalar settings; an environment's are
# merged over [service]'s (variables and secrets by name, task_policy statements added).
CONTAINER_TABLES = ("variables", "secrets", "task_policy")
ENV_ONLY_KEYS = NETWORK_KEYS | {"certificate_arn"} | DELIVERY_KEYS
TRAFFIC_KEYS = {f.name for f in fields(TrafficShift)}
ENV_ONLY_KEYS = ENV_ONLY_KEYS | TRAFFIC_KEYS  # traffic-shift keys live in the environment's table too


def _key_homes() -> dict[str, list[str]]:
    """Where each key belongs, for a hint when one is written in the wrong table."""
    homes: dict[str, list[str]] = {}
    for table, keys in (
        ("[app]", [f.name for f in fields(AppSettings)]),
        ("[image]", [f.name for f in fields(ImageSettings)]),
        ("[service]", sorted(SERVICE_KEYS | set(CONTAINER_TABLES))),
        ("[smoke]", [f.name for f in fields(SmokeSettings)]),
        ("[gate]", [f.name for f in fields(GateSettings)]),
        ("[environments.NAME]", sorted(SERVICE_KEYS | ENV_ONLY_KEYS | set(CONTAINER_TABLES))),
    ):
        for key in keys:
            homes.setdefault(key, []).append(table)
    return homes


KEY_HOMES = _key_homes()


def _environment(
    problems: Problems, name: str, raw: Mapping[str, Any], base: ServiceSettings | None, shared: ContainerExtras | None
) -> Environment | None:
    prefix = f"environments.{name}"
    before = len(problems)
    if not ENV_NAME.match(name):
        problems.add(
            prefix,
            "environment names are lowercase letters and digits, up to 16",
            "Rename it, e.g. staging or production.",
        )
    _only_keys(problems, prefix, raw, SERVICE_KEYS | ENV_ONLY_KEYS | set(CONTAINER_TABLES))
    overrides = {k: v for k, v in raw.items() if k in SERVICE_KEYS}
    # With a broken [service] the overrides are type-checked against the defaults, and not checked
    # further: a range or a pairing would be judged against values the file does not have.
    service = _section(problems, ServiceSettings, prefix, overrides, defaults=base or ServiceSettings())
    if service is not None and base is not None:
        # A problem the environment only inherits is reported once, at [service].
        inherited = Problems()
        _check_service(inherited, "service", base)
        already = {(p.key.removeprefix("service."), p.problem) for p in inherited.found}
        own = Problems()
        _check_service(own, prefix, service)
        for p in own.found:
            if (p.key.removeprefix(f"{prefix}."), p.problem) not in already:
                problems.found.append(p)
    network = _section(problems, Network, prefix, {k: v for k, v in raw.items() if k in NETWORK_KEYS})
    if network is not None:
        _check_network(problems, prefix, network)
    # Only a missing key means HTTP only: false, 0 or "" is a mistake, not a way to switch HTTPS off.
    certificate = raw.get("certificate_arn")
    certificate_hint = "Use arn:aws:acm:REGION:ACCOUNT:certificate/ID, or remove the key for HTTP only."
    if certificate is not None and not isinstance(certificate, str):
        problems.add(
            f"{prefix}.certificate_arn",
            f"must be a string (an ACM certificate ARN), got {type(certificate).__name__} {certificate!r}",
            certificate_hint,
        )
    elif certificate is not None and not CERTIFICATE_ARN.match(certificate):
        problems.add(f"{prefix}.certificate_arn", f"malformed certificate ARN {certificate!r}", certificate_hint)
    extras = _container(problems, prefix, raw, shared or ContainerExtras())
    delivery = _section(problems, Delivery, prefix, {k: v for k, v in raw.items() if k in DELIVERY_KEYS})
    if delivery is not None:
        _check_delivery(problems, prefix, delivery)
    traffic = _section(problems, TrafficShift, prefix, {k: v for k, v in raw.items() if k in TRAFFIC_KEYS})
    if traffic is not None and network is not None and delivery is not None:
        _check_traffic(problems, prefix, traffic, network, delivery.strategy)
    if len(problems) > before or service is None or network is None or delivery is None or traffic is None:
        return None
    if shared is None or extras is None:  # [service]'s own sub-tables are broken: reported there
        return None
    return Environment(
        name,
        service,
        network,
        certificate,
        extras.variables,
        delivery,
        traffic,
        tuple(Secret(k, v) for k, v in extras.secrets),
        extras.task_policy,
    )


def _check_rollout_timeouts(problems: Problems, environments: list[Environment], envs_raw: Mapping[str, Any]) -> None:
    """A rollout_timeout below the modeled rollout plus bake times out every release by design. Named where
    it is set: the environment's own, or [service]'s once (for the environment with the highest floor)."""
    inherited: Environment | None = None
    for env in environments:
        if _out_of_range(env.service) & FLOOR_KEYS:
            continue  # the refused value is the problem; a floor from it would be a second one
        if "rollout_timeout" in (envs_raw.get(env.name) or {}):
            _check_rollout_timeout(problems, f"environments.{env.name}", env)
        elif inherited is None or env.rollout_floor_seconds > inherited.rollout_floor_seconds:
            inherited = env
    if inherited is not None:
        _check_rollout_timeout(problems, "service", inherited)


def _check_rollout_timeout(problems: Problems, prefix: str, env: Environment) -> None:
    s, floor = env.service, env.rollout_floor_seconds
    if s.rollout_timeout < floor:
        problems.add(
            f"{prefix}.rollout_timeout",
            f"{s.rollout_timeout} is below {env.name}'s rollout floor of {floor} s (modeled rollout "
            f"{s.modeled_rollout_seconds} s: warmup + health_check_interval x healthy_threshold + drain, plus bake "
            f"{env.modeled_bake_seconds} s)",
            f"Raise it to at least {floor}.",
        )


def _check_variables(problems: Problems, prefix: str, variables: Mapping[str, Any]) -> None:
    for key, value in variables.items():
        name = f"{prefix}.variables.{key}"
        if not ENV_VAR.match(key):
            problems.add(name, "not a valid environment variable name", "Use letters, digits and _.")
        elif key in RESERVED_VARIABLES:
            fix = f"set {prefix}.container_port instead" if key == "PORT" else "every task gets it"
            problems.add(name, f"{key} {RESERVED_VARIABLES[key]}", f"Remove it; {fix}.")
        if not isinstance(value, str):
            problems.add(name, f"must be a string, got {type(value).__name__}", 'Quote the value, e.g. "1".')


@dataclass(frozen=True)
class ContainerExtras:
    """[service]'s variables, secrets and task_policy, or an environment's merged over them."""

    variables: tuple[tuple[str, str], ...] = ()
    secrets: tuple[tuple[str, str], ...] = ()  # (variable name, ARN)
    task_policy: tuple[PolicyStatement, ...] = ()


def _container(
    problems: Problems, prefix: str, raw: Mapping[str, Any], under: ContainerExtras
) -> ContainerExtras | None:
    """The sub-tables of `prefix` merged over `under`; None (and problems) when one is broken."""
    before = len(problems)
    variables = _table(problems, raw, "variables", prefix=prefix) or {}
    _check_variables(problems, prefix, variables)
    secrets = _table(problems, raw, "secrets", prefix=prefix) or {}
    _check_secrets(problems, prefix, secrets)
    statements = _task_policy(problems, prefix, raw.get("task_policy", []))
    merged_variables = {**dict(under.variables), **variables}
    merged_secrets = {**dict(under.secrets), **secrets}
    for name in sorted(merged_variables.keys() & merged_secrets.keys()):
        table = "secrets" if name in secrets else "variables"  # the entry this table adds
        problems.add(
            f"{prefix}.{table}.{name}",
            f"{name} is both a variable and a secret",
            "Keep one: a plain value in variables, or an ARN in secrets.",
        )
    if len(problems) > before:
        return None
    return ContainerExtras(
        tuple(sorted(merged_variables.items())), tuple(sorted(merged_secrets.items())), under.task_policy + statements
    )


def _check_secrets(problems: Problems, prefix: str, secrets: Mapping[str, Any]) -> None:
    for key, value in secrets.items():
        name = f"{prefix}.secrets.{key}"
        if not ENV_VAR.match(key):
            problems.add(name, "not a valid environment variable name", "Use letters, digits and _.")
        elif key in RESERVED_VARIABLES:
            problems.add(name, f"{key} {RESERVED_VARIABLES[key]}", "Remove it; the pipeline sets it.")
        if not isinstance(value, str):
            problems.add(name, f"must be a string, got {type(value).__name__}", "Write the ARN as a string.")
        elif not (SECRET_ARN.match(value) or PARAMETER_ARN.match(value)):
            problems.add(
                name,
                f"{value!r} is not a Secrets Manager secret or SSM parameter ARN",
                "Use arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-AbCdEf (the full ARN, with its 6-character "
                "suffix) or arn:aws:ssm:REGION:ACCOUNT:parameter/NAME.",
            )


def _task_policy(problems: Problems, prefix: str, raw: Any) -> tuple[PolicyStatement, ...]:
    """The [[PREFIX.task_policy]] statements, each checked so that the service cannot escalate."""
    from pipeline.task_policy import statement_problems

    key = f"{prefix}.task_policy"
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.add(key, "must be a list of tables", f"Write each statement as [[{key}]] with actions and resources.")
        return ()
    statements = []
    for index, item in enumerate(raw):
        name = f"{key}[{index}]"
        statement: PolicyStatement | None = _section(problems, PolicyStatement, name, item)
        if statement is None:
            continue
        for field, problem, hint in statement_problems(statement.effect, statement.actions, statement.resources):
            problems.add(f"{name}.{field}", problem, hint)
        statements.append(statement)
    return tuple(statements)


def _check_delivery(problems: Problems, prefix: str, delivery: Delivery) -> None:
    if delivery.region is not None and not REGION.match(delivery.region):
        problems.add(
            f"{prefix}.region", f"{delivery.region!r} is not an AWS region", "Use a region code such as us-east-1."
        )
    if delivery.strategy not in STRATEGIES:
        problems.add(
            f"{prefix}.strategy", f"unknown strategy {delivery.strategy!r}", _choice_hint(delivery.strategy, STRATEGIES)
        )


def _build_args(problems: Problems, raw: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    for key, value in raw.items():
        name = f"image.build_args.{key}"
        if not ENV_VAR.match(key):
            problems.add(name, "not a valid build argument name", "Use letters, digits and _.")
        elif key == "MODEL_VERSION":
            problems.add(name, "set by the pipeline from the version released", "Remove it.")
        if not isinstance(value, str):
            problems.add(name, f"must be a string, got {type(value).__name__}", 'Quote the value, e.g. "1".')
    return tuple(sorted((k, str(v)) for k, v in raw.items()))


def _check_app(problems: Problems, app: AppSettings) -> None:
    if not APP_NAME.match(app.name):
        problems.add(
            "app.name",
            f"{app.name!r} is not a valid name",
            "Use 3-30 lowercase letters, digits and dashes, starting with a letter.",
        )
    if not REGION.match(app.region):
        problems.add("app.region", f"{app.region!r} is not an AWS region", "Use a region code such as us-east-1.")
    if not ACCOUNT.match(app.account):
        problems.add("app.account", f"{app.account!r} is not an AWS account id", "Use the 12-digit account id, quoted.")
    if not GITHUB_REPO.match(app.github_repository):
        problems.add(
            "app.github_repository", f"{app.github_repository!r} is not owner/name", "Use e.g. acme/iris-classifier."
        )


def _check_image(problems: Problems, image: ImageSettings, root: Path, image_files: bool) -> None:
    if image.builder not in BUILDERS:
        problems.add("image.builder", f"unknown builder {image.builder!r}", _choice_hint(image.builder, BUILDERS))
    if image.architecture not in ARCHITECTURES:
        problems.add(
            "image.architecture",
            f"unknown architecture {image.architecture!r}",
            _choice_hint(image.architecture, ARCHITECTURES),
        )
    # The build reads the repository's files only: a path out of it could ship another project's
    # files (or the runner's) in the image.
    context = _inside_repository(problems, "image.context", image.context, root, root)
    if context is None:
        return
    dockerfile = _inside_repository(problems, "image.dockerfile", image.dockerfile, context, root)
    if not image_files:
        return
    # A missing context is one problem, not also a missing Dockerfile in it.
    if not _is(context, stat.S_ISDIR):
        what = "is not a folder" if _is(context, None) else "does not exist"
        problems.add(
            "image.context", f"{image.context!r} {what}", "Point it at the model server's build context folder."
        )
    elif dockerfile is not None and not _is(dockerfile, stat.S_ISREG):
        what = "is not a file" if _is(dockerfile, None) else "does not exist"
        problems.add(
            "image.dockerfile",
            f"{image.dockerfile!r} {what} in image.context {image.context!r}",
            "Point it at the model server's Dockerfile, relative to image.context.",
        )


def _is(path: Path, kind: Callable[[int], bool] | None) -> bool:
    """Whether `path` exists (and is of `kind`, e.g. stat.S_ISDIR); an unreadable path does not."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return False
    return kind is None or kind(mode)


def _resolve(problems: Problems, key: str, value: str, base: Path) -> Path | None:
    """`base / value` with symlinks resolved, or None (and a problem) when no file can have that path."""
    if "\0" in value:
        problems.add(key, f"{value!r} contains a NUL character", "Remove it: no file name can hold one.")
        return None
    try:
        target = (base / value).resolve()
    except RuntimeError:  # a symlink loop, before Python 3.13
        problem = "is a symlink loop"
    except OSError as err:
        problem = "is a symlink loop" if err.errno == errno.ELOOP else f"cannot be resolved ({err.strerror or err})"
    else:
        if not os.path.islink(target):
            return target
        problem = "is a symlink loop"  # Python 3.13 leaves a loop unresolved instead of raising
    problems.add(key, f"{value!r} {problem}", "Point it at a real file or folder in the repository.")
    return None


def _inside_repository(problems: Problems, key: str, value: str, base: Path, root: Path) -> Path | None:
    """`base / value` with symlinks resolved, or None (and a problem) when it leaves `root`."""
    hint = "Use a relative path inside the repository (the folder of the settings file), without .. or links out."
    if Path(value).is_absolute():
        problems.add(key, f"{value!r} is an absolute path", hint)
        return None
    target = _resolve(problems, key, value, base)
    if target is None:
        return None
    if not target.is_relative_to(root.resolve()):
        problems.add(key, f"{value!r} leaves the repository (it resolves to {target})", hint)
        return None
    return target


def _check_service(problems: Problems, prefix: str, s: ServiceSettings) -> None:
    def fail(key: str, problem: str, hint: str) -> None:
        problems.add(f"{prefix}.{key}", problem, hint)

    out_of_range = _out_of_range(s)
    for key, (low, high, hint) in SERVICE_RANGES.items():
        if key in out_of_range:
            value = getattr(s, key)
            fail(key, f"{value} is outside {low}..{high}" if high is not None else f"{value} is below {low}", hint)
    if s.cpu not in FARGATE_SIZES:
        fail(
            "cpu", f"Fargate offers no task with {s.cpu} cpu units", f"Use one of {', '.join(map(str, FARGATE_SIZES))}."
        )
    elif s.memory not in FARGATE_SIZES[s.cpu]:
        allowed = FARGATE_SIZES[s.cpu]
        fail(
            "memory",
            f"Fargate offers no {s.cpu} cpu task with {s.memory} MiB",
            f"With cpu {s.cpu} use {allowed.start} to {allowed.stop - 1} MiB in steps of {allowed.step}.",
        )
    # Pairings are judged only between values that are each in range, so one mistake is one problem.
    if not out_of_range & {"min_count", "max_count", "desired_count"}:
        if s.min_count > s.max_count:
            fail(
                "min_count",
                f"min_count {s.min_count} is greater than max_count {s.max_count}",
                "Lower min_count or raise max_count.",
            )
        elif not s.min_count <= s.desired_count <= s.max_count:
            fail(
                "desired_count",
                f"{s.desired_count} is outside min_count..max_count ({s.min_count}..{s.max_count})",
                "Pick a count within the scaling range.",
            )
    if not out_of_range & {"health_check_timeout", "health_check_interval"}:
        if s.health_check_timeout >= s.health_check_interval:
            fail(
                "health_check_timeout",
                f"{s.health_check_timeout} is not less than health_check_interval {s.health_check_interval}",
                "Lower it: the ALB needs the timeout shorter than the interval.",
            )
    if not out_of_range & {"request_timeout", "drain_margin"} and s.deregistration_delay > 3600:
        fail("request_timeout", "request_timeout + drain_margin exceeds the ALB's 3600 s drain limit", "Lower them.")
    if not s.health_check_path.startswith("/"):
        fail("health_check_path", f"{s.health_check_path!r} does not start with /", "Use a path such as /health.")
    if s.log_retention_days not in LOG_RETENTION_DAYS:
        fail(
            "log_retention_days",
            f"CloudWatch Logs has no {s.log_retention_days}-day retention",
            f"Use one of {', '.join(map(str, LOG_RETENTION_DAYS))}.",
        )
    if not 0 < s.alarm_5xx_percent <= 100:
        fail("alarm_5xx_percent", f"{s.alarm_5xx_percent} is not a percentage above 0", "Use e.g. 5.0 (percent).")
    if s.alarm_latency_p99 <= 0:
        fail("alarm_latency_p99", f"{s.alarm_latency_p99} is not positive", "Use seconds, e.g. 5.0.")
    if s.secrets_kms_key is not None and not KMS_KEY_ARN.match(s.secrets_kms_key):
        fail(
            "secrets_kms_key",
            f"{s.secrets_kms_key!r} is not a KMS key ARN",
            "Use arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (a key's ARN, not an alias).",
        )


def _out_of_range(s: ServiceSettings) -> set[str]:
    """The [service] numbers outside their SERVICE_RANGES."""
    return {
        key
        for key, (low, high, _) in SERVICE_RANGES.items()
        if getattr(s, key) < low or (high is not None and getattr(s, key) > high)
    }


def _check_smoke(problems: Problems, s: SmokeSettings, *, request_given: bool = False) -> None:
    if not s.path.startswith("/"):
        problems.add("smoke.path", f"{s.path!r} does not start with /", "Use a path such as /predict.")
    if s.method not in ("GET", "POST"):
        problems.add("smoke.method", f"{s.method!r} is not GET or POST", 'Use "POST" (with request) or "GET".')
    try:
        json.loads(s.request)
    except ValueError as err:
        problems.add("smoke.request", f"not valid JSON ({err})", "Write the sample request body as a JSON string.")
    if s.method == "GET" and request_given:
        problems.add(
            "smoke.request",
            "is never sent: a GET has no body",
            'Set method = "POST" to send it, or remove request to GET the path.',
        )
    if s.timeout < SMOKE_TIMEOUT_MIN:
        problems.add("smoke.timeout", f"{s.timeout} is below {SMOKE_TIMEOUT_MIN}", "Use seconds.")


def _check_network(problems: Problems, prefix: str, n: Network) -> None:
    if n.vpc_id is None:
        if n.public_subnet_ids or n.private_subnet_ids:
            problems.add(
                f"{prefix}.vpc_id",
                "subnet ids given without vpc_id",
                "Set vpc_id, or remove the subnet ids to create a VPC.",
            )
        cidr = n.vpc_cidr or "10.0.0.0/16"
        match = CIDR.match(cidr)
        if not match or any(int(o) > 255 for o in match.groups()[:4]) or not 16 <= int(match.group(5)) <= 24:
            problems.add(
                f"{prefix}.vpc_cidr", f"{cidr!r} is not an IPv4 CIDR from /16 to /24", "Use e.g. 10.40.0.0/16."
            )
        return
    if n.vpc_cidr is not None:
        problems.add(
            f"{prefix}.vpc_cidr",
            "vpc_cidr and vpc_id are exclusive",
            "Keep vpc_cidr to create a VPC, or vpc_id to use one.",
        )
    if not VPC_ID.match(n.vpc_id):
        problems.add(f"{prefix}.vpc_id", f"{n.vpc_id!r} is not a VPC id", "Use vpc-xxxxxxxx.")
    for key in ("public_subnet_ids", "private_subnet_ids"):
        ids = getattr(n, key)
        if len(ids) < 2:
            problems.add(
                f"{prefix}.{key}", "needs at least two subnets in different zones", "The ALB requires two zones."
            )
        for subnet in ids:
            if not SUBNET_ID.match(subnet):
                problems.add(f"{prefix}.{key}", f"{subnet!r} is not a subnet id", "Use subnet-xxxxxxxx.")


# --- traffic shifting and the model gate ---------------------------------------------------------

# CloudFormation refuses a canary or linear deployment whose bake times add up to more than 33 hours.
CFN_BAKE_LIMIT_MINUTES = 33 * 60


def _check_traffic(problems: Problems, prefix: str, t: TrafficShift, network: Network, strategy: str) -> None:
    def fail(key: str, problem: str, hint: str) -> None:
        problems.add(f"{prefix}.{key}", problem, hint)

    refused = set()
    # ECS takes percentages in steps of 0.1: canary 0.1..100, linear 3..100.
    for key, low, example in (("canary_percent", 0.1, 10), ("linear_step_percent", 3.0, 25)):
        value = getattr(t, key)
        if not low <= value <= 100 or abs(value * 10 - round(value * 10)) > 1e-9:
            fail(key, f"{value} is not a percentage from {low} to 100 in steps of 0.1", f"Use e.g. {example}.")
            refused.add(key)
    for key in ("canary_bake_minutes", "linear_step_bake_minutes", "bake_minutes"):
        if not 0 <= getattr(t, key) <= 1440:
            fail(key, f"{getattr(t, key)} is outside 0..1440", "ECS allows 0 to 1440 minutes.")
            refused.add(key)
    if not 1 <= t.hook_timeout_minutes <= 20160:
        fail("hook_timeout_minutes", f"{t.hook_timeout_minutes} is outside 1..20160", "Use the gate's budget, e.g. 30.")
    # The bake totals are judged only from values each in range: a refused step percentage has no step
    # count (0 would divide by zero), and its mistake is already one problem.
    if not refused & {"bake_minutes", "canary_bake_minutes"}:
        if t.bake_minutes + t.canary_bake_minutes > CFN_BAKE_LIMIT_MINUTES:
            fail(
                "canary_bake_minutes",
                "bake_minutes + canary_bake_minutes exceed 33 hours",
                "CloudFormation refuses it.",
            )
    if not refused & {"bake_minutes", "linear_step_bake_minutes", "linear_step_percent"}:
        counted_steps = t.linear_steps - 1  # CloudFormation counts no bake after the shift that reaches 100%
        if t.bake_minutes + t.linear_step_bake_minutes * counted_steps > CFN_BAKE_LIMIT_MINUTES:
            fail(
                "linear_step_bake_minutes", "the linear steps' bake times exceed 33 hours", "CloudFormation refuses it."
            )
    if not 1 <= t.test_listener_port <= 65535 or t.test_listener_port in (80, 443):
        fail(
            "test_listener_port",
            f"{t.test_listener_port} is not a free load balancer port",
            "Use a port from 1 to 65535 other than 80 and 443 (the production listeners).",
        )
    for cidr in t.test_listener_cidrs:
        try:
            ipaddress.IPv4Network(cidr)
        except ValueError:
            fail("test_listener_cidrs", f"{cidr!r} is not an IPv4 CIDR", "Use e.g. 10.40.0.0/16 or 203.0.113.7/32.")
    if strategy in TRAFFIC_STRATEGIES and not network.creates_vpc and not t.test_listener_cidrs:
        fail(
            "test_listener_cidrs",
            "an existing VPC's CIDR is not known here, so the test listener would be closed to everyone",
            "List the CIDRs that may reach it, e.g. the VPC's CIDR or your CI runners' egress range.",
        )


def _gate(problems: Problems, raw: Mapping[str, Any], root: Path) -> GateSettings | None:
    gate: GateSettings | None = _section(problems, GateSettings, "gate", raw)
    if gate is None:
        return None
    before = len(problems)

    def fail(key: str, problem: str, hint: str) -> None:
        problems.add(f"gate.{key}", problem, hint)

    if not gate.path.startswith("/"):
        fail("path", f"{gate.path!r} does not start with /", "Use a path such as /predict.")
    for key in ("min_accuracy", "min_agreement"):
        if not 0 <= getattr(gate, key) <= 1:
            fail(key, f"{getattr(gate, key)} is not a share from 0 to 1", "Use e.g. 0.9 for 90%.")
    if gate.max_p99_ms <= 0:
        fail("max_p99_ms", "must be positive", "Use milliseconds, e.g. 500.")
    if not 1 <= gate.concurrency <= 64:
        fail("concurrency", f"{gate.concurrency} is outside 1..64", "Use a few requests at once, e.g. 4.")
    if not 0 < gate.request_timeout <= 300:
        fail("request_timeout", f"{gate.request_timeout} is outside 0..300 seconds", "Use e.g. 5.")
    file = _resolve(problems, "gate.golden_set", gate.golden_set, root)
    if file is None:
        pass  # no file can have that name: reported
    elif not file.is_relative_to(root.resolve()):
        fail("golden_set", f"{gate.golden_set!r} is outside the repository", "Commit the golden set and name it.")
    elif not _is(file, stat.S_ISREG):
        fail("golden_set", f"{gate.golden_set!r} does not exist", "Create it: one JSON object a line.")
    else:
        from pipeline.gate import read_golden_set  # the gate owns the file format

        try:
            read_golden_set(file)
        except GoldenSetError as err:
            fail("golden_set", f"{gate.golden_set}: {err.message}", err.hint or "Fix the golden set file.")
    return gate if len(problems) == before else None


# --- generic field parsing ----------------------------------------------------------------------


def _closest(word: str, candidates: Iterable[str]) -> str | None:
    """The candidate a typo most likely meant (edit-distance ratio), if any is close."""
    close = difflib.get_close_matches(word, sorted(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _choice_hint(value: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    close = _closest(value, choices)
    return f"Did you mean {close}?" if close else f"Use one of: {', '.join(choices)}."


def _table(
    problems: Problems, raw: Mapping[str, Any], key: str, *, prefix: str = "", required: bool = False
) -> Mapping[str, Any] | None:
    """The sub-table `key`: {} when optional and absent; None (and a problem) when missing or not a table."""
    name = f"{prefix}.{key}" if prefix else key
    if key not in raw:
        if required:
            problems.add(name, "missing", f"Add a [{name}] table.")
            return None
        return {}
    value = raw[key]
    if not isinstance(value, dict):
        problems.add(name, f"must be a table, got {type(value).__name__}", f"Write it as [{name}].")
        return None
    return value


def _only_keys(problems: Problems, prefix: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    for key in raw:
        if key in allowed:
            continue
        name = f"{prefix}.{key}" if prefix else key
        close = _closest(key, allowed)
        if close:
            hint = f"Did you mean {close}?"
        elif key in KEY_HOMES:
            hint = f"{key} belongs in {' or '.join(KEY_HOMES[key])}."
        else:
            hint = f"Known keys: {', '.join(sorted(allowed))}."
        problems.add(name, "unknown table" if isinstance(raw[key], dict) else "unknown key", hint)


def _section(problems: Problems, cls: type, prefix: str, raw: Mapping[str, Any], defaults: Any = None) -> Any:
    """A frozen dataclass from a table, each value type-checked against its field's type; None on a problem."""
    known = {f.name: f for f in fields(cls)}
    _only_keys(problems, prefix, raw, set(known))
    before = len(problems)
    values: dict[str, Any] = {}
    for name, field in known.items():
        key = f"{prefix}.{name}"
        if name not in raw:
            if defaults is None and field.default is MISSING and field.default_factory is MISSING:
                problems.add(key, "missing", f"Add {name} = ... to [{prefix}].")
            continue
        values[name] = _coerce(problems, key, raw[name], str(field.type))
    if len(problems) > before:
        return None
    return replace(defaults, **values) if defaults is not None else cls(**values)


def _coerce(problems: Problems, key: str, value: Any, type_name: str) -> Any:
    """The value as the field's type, or None after recording why it is not one."""

    def wrong(expected: str) -> None:
        problems.add(key, f"must be {expected}, got {type(value).__name__} {value!r}", f"Write {expected}.")

    if type_name == "bool":
        return value if isinstance(value, bool) else wrong("true or false")
    if type_name == "int":
        return value if isinstance(value, int) and not isinstance(value, bool) else wrong("an integer")
    if type_name == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return wrong("a number")
        if not math.isfinite(value):
            problems.add(key, f"must be a finite number, got {value}", "Write a number such as 5.0 (not nan or inf).")
            return None
        return float(value)
    if type_name in ("str", "str | None"):
        return value if isinstance(value, str) else wrong("a string")
    if type_name == "tuple[str, ...]":
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            return wrong("a list of strings")
        return tuple(value)
    raise AssertionError(f"unhandled settings type {type_name}")
