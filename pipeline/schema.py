"""A JSON Schema (draft 2020-12) of pipeline.toml, built from the settings dataclasses.

Editors that read TOML against a JSON Schema (Taplo, Even Better TOML) then complete keys, show these
descriptions and flag typos while typing. Taplo implements Draft 4: no keyword here changes meaning
between the drafts, and the newer ones (propertyNames, dependentRequired) are skipped by it. The schema checks what a schema can say simply (types, enums,
ranges, patterns, unknown keys); `pipeline check` stays the full validation (pairings such as a Fargate
cpu/memory pair, paths inside the repository).
"""

from __future__ import annotations

from dataclasses import MISSING, Field, fields
from typing import Any

from pipeline import config, task_policy

DRAFT = "https://json-schema.org/draft/2020-12/schema"

# One line per key: what it does (and its unit). A test fails when a settings field has none.
DESCRIPTIONS = {
    "app.name": "Names the stacks (<name>-registry, <name>-ci-access, <name>-service-<env>) and the ECR repository.",
    "app.region": "Default AWS region of every stack (an environment may set its own `region`).",
    "app.account": "The 12-digit AWS account id, quoted.",
    "app.github_repository": "owner/name of the GitHub repository whose workflows may deploy (OIDC trust).",
    "image.context": "Build context of the model server image, relative to this file; must stay inside the repository.",
    "image.dockerfile": "Dockerfile (or Containerfile) relative to the context; must stay inside the repository.",
    "image.builder": "auto: Docker Buildx when a Docker engine answers, else buildah; or force buildx or buildah.",
    "service.container_port": "Port the model server listens on; the container gets it as PORT.",
    "service.cpu": "Fargate task cpu units (a Fargate cpu/memory pair with memory).",
    "service.memory": "Fargate task memory in MiB (must pair with cpu).",
    "service.desired_count": "Tasks at deploy time, within min_count..max_count.",
    "service.min_count": "Fewest tasks auto scaling keeps.",
    "service.max_count": "Most tasks auto scaling starts.",
    "service.cpu_target_percent": "Target tracking on average CPU (percent).",
    "service.requests_per_target": "Target tracking on ALBRequestCountPerTarget (requests a minute per task).",
    "service.health_check_path": "Path the load balancer probes.",
    "service.health_check_interval": "Seconds between load balancer health checks.",
    "service.health_check_timeout": "Seconds a health check may take (less than the interval).",
    "service.healthy_threshold": "Passed checks before a task gets traffic.",
    "service.unhealthy_threshold": "Failed checks before a task is replaced.",
    "service.request_timeout": "Longest inference in seconds; drives drain time and the ALB idle timeout.",
    "service.drain_margin": "Seconds added to request_timeout for draining and the idle timeout.",
    "service.warmup": "Model load budget in seconds: the health check grace period.",
    "service.log_retention_days": "CloudWatch Logs retention (one of the values CloudWatch offers).",
    "service.rollout_timeout": "Seconds a rollout may take before the release fails and rolls back.",
    "service.alarm_5xx_percent": "Target 5xx as a percentage of a minute's requests that rolls a deployment back.",
    "service.alarm_min_requests": "Requests a minute below which the 5xx rate never alarms.",
    "service.alarm_latency_p99": "p99 target response time in seconds that rolls a deployment back.",
    "service.execute_command": "ECS Exec: a shell in running tasks (ssmmessages rights; the root filesystem becomes writable).",
    "service.secrets_kms_key": "ARN of the customer-managed KMS key the secrets are encrypted with (kms:Decrypt for them).",
    "service.variables": "Environment variables of every environment's container (strings); an environment's own win.",
    "service.secrets": "Container variables read at task start from Secrets Manager or SSM: NAME = the secret's or parameter's ARN.",
    "service.task_policy": "Statements of the task role ({effect, actions, resources}); nothing that could escalate.",
    "image.architecture": "CPU the image is built for and Fargate runs it on.",
    "environments.secrets": "This environment's secrets, merged over [service.secrets] by name.",
    "environments.task_policy": "This environment's task role statements, added to [service]'s.",
    "smoke.path": "Path of the sample request sent through the load balancer after a rollout.",
    "image.build_args": "Build arguments for every image build (e.g. BASE_IMAGE); MODEL_VERSION is the pipeline's.",
    "smoke.method": "POST the sample request to the path, or GET the path (a service with no sample request).",
    "smoke.request": "Sample request body, a JSON document written as a string.",
    "smoke.expect_keys": "Keys the JSON response must contain.",
    "smoke.timeout": "Seconds the smoke test keeps trying.",
    "environments.vpc_cidr": "Create a VPC with this IPv4 CIDR (/16 to /24); exclusive with vpc_id.",
    "environments.vpc_id": "Use this existing VPC (with public_subnet_ids and private_subnet_ids).",
    "environments.public_subnet_ids": "Existing public subnets for the load balancer, two zones or more.",
    "environments.private_subnet_ids": "Existing private subnets for the tasks, two zones or more.",
    "environments.certificate_arn": "ACM certificate: HTTPS listener, and HTTP redirects to it.",
    "environments.variables": "Environment variables of the container (strings), merged over [service.variables]; PORT and MODEL_VERSION are set by the pipeline.",
    "environments.build": "This environment builds and pushes the image; the others promote the version from ECR.",
    "environments.github_release": "A successful release here creates the GitHub release.",
    "environments.region": "AWS region of this environment (default: app.region).",
    "environments.strategy": "Rollout strategy.",
}

# Enums and patterns, from the same constants the loader checks with.
STRING_RULES: dict[str, dict[str, Any]] = {
    "app.name": {"pattern": config.APP_NAME.pattern},
    "app.region": {"pattern": config.REGION.pattern},
    "app.account": {"pattern": config.ACCOUNT.pattern},
    "app.github_repository": {"pattern": config.GITHUB_REPO.pattern},
    "image.builder": {"enum": list(config.BUILDERS)},
    "image.architecture": {"enum": list(config.ARCHITECTURES)},
    "service.secrets_kms_key": {"pattern": config.KMS_KEY_ARN.pattern},
    "service.health_check_path": {"pattern": "^/"},
    "smoke.path": {"pattern": "^/"},
    "smoke.method": {"enum": ["GET", "POST"]},
    "smoke.request": {"contentMediaType": "application/json"},
    "environments.vpc_cidr": {"pattern": config.CIDR.pattern},
    "environments.vpc_id": {"pattern": config.VPC_ID.pattern},
    "environments.certificate_arn": {"pattern": config.CERTIFICATE_ARN.pattern},
    "environments.region": {"pattern": config.REGION.pattern},
    "environments.strategy": {"enum": list(config.STRATEGIES)},
}
DESCRIPTIONS.update(
    {
        "environments.canary_percent": "Canary: share of production traffic (percent) the new version takes first.",
        "environments.canary_bake_minutes": "Canary: minutes at that share before the rest shifts.",
        "environments.linear_step_percent": "Linear: share of production traffic (percent) added per step.",
        "environments.linear_step_bake_minutes": "Linear: minutes between steps.",
        "environments.bake_minutes": "Minutes the old tasks keep running after the last shift (rollback is a shift).",
        "environments.hook_timeout_minutes": "Minutes a paused deployment waits for the gate before rolling back.",
        "environments.test_listener_port": "The test listener's own load balancer port (not 80 or 443).",
        "environments.test_listener_cidrs": "Who reaches the test listener; empty: the VPC's CIDR only.",
        "gate.golden_set": "JSONL under the repository: one {request, expected} object a line.",
        "gate.path": "Where each golden request is POSTed.",
        "gate.answer_key": "The response field compared with `expected`.",
        "gate.version_key": "The response field naming the served model version.",
        "gate.min_accuracy": "Share (0..1) of golden answers the new version must get right.",
        "gate.min_agreement": "Share (0..1) of answers equal to the version serving now; 0 skips the comparison.",
        "gate.max_p99_ms": "p99 latency (ms) of the golden requests.",
        "gate.require_version": "Every answer must name the version being released.",
        "gate.concurrency": "Golden requests in flight at once.",
        "gate.request_timeout": "Seconds per golden request.",
    }
)
# Shares may be 0 (min_agreement 0 skips the comparison): not the "> 0" rule of other numbers.
SHARES = {"gate.min_accuracy", "gate.min_agreement"}


def build_schema() -> dict[str, Any]:
    """The schema as a JSON-ready dict."""
    return {
        "$schema": DRAFT,
        "title": "pipeline.toml",
        "description": "Settings of ecs-model-pipeline. Durations are in seconds.",
        "type": "object",
        "additionalProperties": False,
        "required": ["app", "environments"],
        "properties": {
            "app": _table("app", config.AppSettings, "What is deployed, where, and from which repository."),
            "image": _table("image", config.ImageSettings, "How the model server image is built."),
            "service": _service_table(),
            "smoke": _smoke_table(),
            "gate": _table("gate", config.GateSettings, "The model gate before any production traffic."),
            "environments": {
                "description": "One table per environment, e.g. [environments.staging].",
                "type": "object",
                "minProperties": 1,
                "propertyNames": {"pattern": config.ENV_NAME.pattern},
                "additionalProperties": {"$ref": "#/$defs/environment"},
            },
        },
        "$defs": {"environment": _environment()},
    }


def _service_table() -> dict[str, Any]:
    table = _table("service", config.ServiceSettings, "The model server on ECS; every environment inherits it.")
    _add_container_tables("service", table["properties"])
    return table


def _smoke_table() -> dict[str, Any]:
    table = _table("smoke", config.SmokeSettings, "The request that proves a release answers.")
    # A GET sends no body: a request beside method = "GET" is refused, as the loader refuses it.
    table["not"] = {"required": ["method", "request"], "properties": {"method": {"enum": ["GET"]}}}
    return table


def _table(name: str, cls: type, description: str) -> dict[str, Any]:
    known = fields(cls)
    return {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "required": [f.name for f in known if _required(f)],
        "properties": {f.name: _field(f"{name}.{f.name}", f, with_default=True) for f in known},
    }


def _environment() -> dict[str, Any]:
    properties: dict[str, Any] = {}
    # Any [service] key may be overridden; without a default, as it inherits [service]'s value.
    for f in fields(config.ServiceSettings):
        schema = _field(f"service.{f.name}", f, with_default=False)
        schema["description"] = f"Overrides [service] {f.name}: {schema['description']}"
        properties[f.name] = schema
    for cls in (config.Network, config.Delivery, config.TrafficShift):
        for f in fields(cls):
            properties[f.name] = _field(f"environments.{f.name}", f, with_default=cls is not config.Network)
    properties["certificate_arn"] = _string("environments.certificate_arn")
    _add_container_tables("environments", properties)
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        # Either create a VPC or use one; subnet ids only with an existing VPC.
        "not": {"required": ["vpc_cidr", "vpc_id"]},
        "dependentRequired": {
            "vpc_id": ["public_subnet_ids", "private_subnet_ids"],
            "public_subnet_ids": ["vpc_id"],
            "private_subnet_ids": ["vpc_id"],
        },
    }


def _add_container_tables(prefix: str, properties: dict[str, Any]) -> None:
    """The variables, secrets and task_policy sub-tables of [service] or an environment."""
    names = {"pattern": config.ENV_VAR.pattern, "not": {"enum": sorted(config.RESERVED_VARIABLES)}}
    statement_fields = {f.name: f for f in fields(config.PolicyStatement)}
    properties["variables"] = {
        "description": DESCRIPTIONS[f"{prefix}.variables"],
        "type": "object",
        "propertyNames": names,
        "additionalProperties": {"type": "string"},
    }
    properties["secrets"] = {
        "description": DESCRIPTIONS[f"{prefix}.secrets"],
        "type": "object",
        "propertyNames": names,
        "additionalProperties": {
            "type": "string",
            "anyOf": [{"pattern": config.SECRET_ARN.pattern}, {"pattern": config.PARAMETER_ARN.pattern}],
        },
    }
    properties["task_policy"] = {
        "description": DESCRIPTIONS[f"{prefix}.task_policy"],
        "type": "array",
        "items": {
            "type": "object",
            "additionalProperties": False,
            "required": [name for name, f in statement_fields.items() if _required(f)],
            "properties": {
                "effect": {"description": "Allow (the default) or Deny.", "enum": list(task_policy.EFFECTS)},
                "actions": {
                    "description": "IAM actions (service:Action); no *, nothing that changes IAM or assumes roles.",
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string", "pattern": r"^(\*|" + task_policy.ACTION.pattern[1:-1] + ")$"},
                },
                "resources": {
                    "description": "ARNs the actions apply to (or *).",
                    "type": "array",
                    "minItems": 1,
                    "items": {"type": "string"},
                },
            },
        },
    }


def _required(f: Field[Any]) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _field(key: str, f: Field[Any], *, with_default: bool) -> dict[str, Any]:
    type_name = str(f.type)
    schema: dict[str, Any]
    if type_name == "bool":
        schema = {"description": DESCRIPTIONS[key], "type": "boolean"}
    elif type_name == "int":
        schema = {"description": DESCRIPTIONS[key], "type": "integer", **_int_rules(f.name)}
    elif type_name == "float" and key in SHARES:
        schema = {"description": DESCRIPTIONS[key], "type": "number", "minimum": 0, "maximum": 1}
    elif type_name == "float":
        # "> 0" as `not maximum 0`: exclusiveMinimum is a boolean in Draft 4, which Taplo implements.
        schema = {"description": DESCRIPTIONS[key], "type": "number", "not": {"maximum": 0}}
    elif type_name in ("str", "str | None"):
        schema = _string(key)
    elif type_name == "tuple[tuple[str, str], ...]":  # a table of strings, e.g. image.build_args
        schema = {
            "description": DESCRIPTIONS[key],
            "type": "object",
            "propertyNames": {"pattern": config.ENV_VAR.pattern, "not": {"enum": ["MODEL_VERSION"]}},
            "additionalProperties": {"type": "string"},
        }
        if with_default:
            schema["default"] = {}
        return schema
    elif type_name == "tuple[str, ...]":
        items: dict[str, Any] = {"type": "string"}
        schema = {"description": DESCRIPTIONS[key], "type": "array", "items": items}
        if f.name.endswith("subnet_ids"):
            items["pattern"] = config.SUBNET_ID.pattern
            schema["minItems"] = 2
    else:
        raise AssertionError(f"no JSON Schema type for settings type {type_name}")
    if with_default and not _required(f) and f.default is not None:
        schema["default"] = list(f.default) if isinstance(f.default, tuple) else f.default
    return schema


def _string(key: str) -> dict[str, Any]:
    return {"description": DESCRIPTIONS[key], "type": "string", **STRING_RULES.get(key, {})}


def _int_rules(name: str) -> dict[str, Any]:
    if name == "cpu":
        return {"enum": sorted(config.FARGATE_SIZES)}
    if name == "memory":
        sizes = config.FARGATE_SIZES.values()
        return {"minimum": min(r.start for r in sizes), "maximum": max(r.stop - 1 for r in sizes)}
    if name == "log_retention_days":
        return {"enum": list(config.LOG_RETENTION_DAYS)}
    if name == "timeout":  # smoke.timeout
        return {"minimum": config.SMOKE_TIMEOUT_MIN}
    if name in config.SERVICE_RANGES:
        low, high, _ = config.SERVICE_RANGES[name]
        return {"minimum": low} | ({"maximum": high} if high is not None else {})
    return {}
