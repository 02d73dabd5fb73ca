"""ecs_traffic_service_deployments: the service deployments of BLUE_GREEN, CANARY and LINEAR services,
and the ECS APIs that read and steer them (moto 5.2.5 has none of them): DescribeServiceDeployments,
ContinueServiceDeployment, StopServiceDeployment; ListServiceDeployments lists these records beside the
service's rolling ones (service_deployment_api.add_records_source), newest first.

AWS: "View service history using Amazon ECS service deployments", "Pause hooks for Amazon ECS service
deployments", API reference ServiceDeployment, ServiceDeploymentBrief, DeploymentLifecycleHookDetail.
- a deployment is PENDING, IN_PROGRESS, then SUCCESSFUL, or ROLLBACK_REQUESTED / ROLLBACK_IN_PROGRESS /
  ROLLBACK_SUCCESSFUL (ROLLBACK_FAILED), or STOP_REQUESTED / STOPPED; `lifecycleStage` says where it is;
- a PAUSE hook at a stage gets a `hookId` and waits AWAITING_ACTION until ContinueServiceDeployment
  (CONTINUE or ROLLBACK; the default is CONTINUE) or its timeout (then TIMED_OUT and its timeoutAction);
- ContinueServiceDeployment needs the deployment IN_PROGRESS and the hook AWAITING_ACTION;
  StopServiceDeployment (stopType ROLLBACK, the default, or ABORT) needs it PENDING or IN_PROGRESS
  (ConflictException otherwise); an unknown ARN is ServiceDeploymentNotFoundException.
The refusal messages are this ground's wording (AWS documents the exceptions, not their text).

Who moves a deployment: local_ground.tasks.traffic (the real-task scheduler) creates the records here
and advances them; this module only keeps them and answers the API.

Merging with the rolling deployments' API (another module answers Describe/Stop for ROLLING
services): each handler here answers for the deployments it keeps and hands every other request to the
handler that was installed before it (``_previous``), so both can be installed, in either order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from moto.core.exceptions import JsonRESTError
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api._internal import mock_random

from ._base import Extension, Patch
from .service_deployment_api import add_records_source

TRAFFIC_STRATEGIES = ("BLUE_GREEN", "CANARY", "LINEAR")
ENDED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")


class ServiceDeploymentNotFound(JsonRESTError):
    def __init__(self, arn: str) -> None:
        super().__init__("ServiceDeploymentNotFoundException", f"The service deployment {arn} does not exist.")


class Conflict(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("ConflictException", message)


class InvalidParameter(JsonRESTError):
    def __init__(self, message: str) -> None:
        super().__init__("InvalidParameterException", message)


def _now() -> datetime:
    return datetime.now(UTC)


def strategy_of(service: Any) -> str:
    return str((getattr(service, "deployment_configuration", None) or {}).get("strategy") or "ROLLING")


def shifts_traffic(service: Any) -> bool:
    return strategy_of(service) in TRAFFIC_STRATEGIES


@dataclass
class Hook:
    """One PAUSE hook reached by a deployment; `action` is what ContinueServiceDeployment asked."""

    stage: str
    timeout_action: str
    expires_at: datetime
    hook_id: str = field(default_factory=lambda: f"ecs-pause-{mock_random.get_random_string(43)}")
    status: str = "AWAITING_ACTION"
    action: str | None = None

    def to_api(self) -> dict[str, Any]:
        return {
            "hookId": self.hook_id,
            "targetType": "PAUSE",
            "status": self.status,
            "expiresAt": self.expires_at,
            "timeoutAction": self.timeout_action,
        }


@dataclass
class Revision:
    """A service revision as a deployment names it (its task definition, its share of the traffic)."""

    arn: str
    task_definition: str
    requested: int = 0
    running: int = 0
    pending: int = 0
    test_weight: float = 0.0
    production_weight: float = 0.0

    def to_api(self) -> dict[str, Any]:
        return {
            "arn": self.arn,
            "requestedTaskCount": self.requested,
            "runningTaskCount": self.running,
            "pendingTaskCount": self.pending,
            "requestedTestTrafficWeight": self.test_weight,
            "requestedProductionTrafficWeight": self.production_weight,
        }


@dataclass
class ServiceDeploymentRecord:
    arn: str
    service_arn: str
    cluster_arn: str
    deployment_id: str  # the deployment describe_services lists (deployments.Deployment.id)
    source: Revision
    target: Revision
    configuration: dict[str, Any]
    status: str = "PENDING"
    status_reason: str = ""
    lifecycle_stage: str = "RECONCILE_SERVICE"
    hooks: list[Hook] = field(default_factory=list)
    rollback: dict[str, Any] | None = None
    alarm_names: list[str] = field(default_factory=list)
    triggered_alarms: list[str] = field(default_factory=list)
    stop_requested: str | None = None  # ROLLBACK | ABORT, from StopServiceDeployment
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    updated_at: datetime = field(default_factory=_now)

    @property
    def in_progress(self) -> bool:
        return self.status not in ENDED

    @property
    def waiting_hook(self) -> Hook | None:
        return next((h for h in self.hooks if h.status == "AWAITING_ACTION"), None)

    def set(self, **changes: Any) -> None:
        for key, value in changes.items():
            setattr(self, key, value)
        self.updated_at = _now()

    def brief(self) -> dict[str, Any]:
        item = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "targetServiceRevisionArn": self.target.arn,
            "status": self.status,
            "statusReason": self.status_reason,
        }
        return {k: v for k, v in item.items() if v is not None}

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "createdAt": self.created_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "stoppedAt": self.stopped_at,
            "updatedAt": self.updated_at,
            "sourceServiceRevisions": [self.source.to_api()],
            "targetServiceRevision": self.target.to_api(),
            "status": self.status,
            "statusReason": self.status_reason,
            "lifecycleStage": self.lifecycle_stage,
            "lifecycleHookDetails": [h.to_api() for h in self.hooks],
            "deploymentConfiguration": self.configuration,
            "rollback": self.rollback,
        }
        if self.alarm_names:
            item["alarms"] = {
                "status": "TRIGGERED" if self.triggered_alarms else "MONITORING",
                "alarmNames": self.alarm_names,
                "triggeredAlarmNames": self.triggered_alarms,
            }
        return {k: v for k, v in item.items() if v is not None}


class Registry:
    """Every traffic-shifting service deployment this ground has made, by ARN."""

    def __init__(self) -> None:
        self._records: dict[str, ServiceDeploymentRecord] = {}
        self._lock = threading.Lock()

    def add(self, record: ServiceDeploymentRecord) -> ServiceDeploymentRecord:
        with self._lock:
            self._records[record.arn] = record
        return record

    def get(self, arn: str) -> ServiceDeploymentRecord | None:
        with self._lock:
            return self._records.get(arn)

    def of_service(self, service_arn: str) -> list[ServiceDeploymentRecord]:
        with self._lock:
            found = [r for r in self._records.values() if r.service_arn == service_arn]
        return sorted(found, key=lambda r: r.created_at, reverse=True)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


REGISTRY = Registry()


def new_record(
    service: Any, deployment_id: str, source_task_definition: str, target_task_definition: str
) -> ServiceDeploymentRecord:
    """A PENDING deployment of `service` from one task definition to another; kept in REGISTRY."""
    cluster = service.cluster_arn.split("/")[-1]
    head = service.arn.split(":service/")[0]  # arn:aws:ecs:REGION:ACCOUNT
    revisions = f"{head}:service-revision/{cluster}/{service.name}"
    record = ServiceDeploymentRecord(
        arn=f"{head}:service-deployment/{cluster}/{service.name}/{mock_random.get_random_string(21)}",
        service_arn=service.arn,
        cluster_arn=service.cluster_arn,
        deployment_id=deployment_id,
        source=Revision(f"{revisions}/{mock_random.randint(10**18, 10**19)}", source_task_definition),
        target=Revision(f"{revisions}/{mock_random.randint(10**18, 10**19)}", target_task_definition),
        configuration=dict(getattr(service, "deployment_configuration", None) or {}),
    )
    alarms = record.configuration.get("alarms") or {}
    if alarms.get("enable"):
        record.alarm_names = [n for n in alarms.get("alarmNames") or [] if n]
    return REGISTRY.add(record)


def hook_timeout(configuration: dict[str, Any], stage: str) -> tuple[float, str] | None:
    """(timeout in AWS minutes, timeout action) of the PAUSE hook at `stage`, None when there is none."""
    for hook in configuration.get("lifecycleHooks") or []:
        if hook.get("targetType") == "PAUSE" and stage in (hook.get("lifecycleStages") or []):
            timeout = hook.get("timeoutConfiguration") or {}
            return float(timeout.get("timeoutInMinutes", 1440)), str(timeout.get("action", "ROLLBACK"))
    return None


def expiry(scaled_seconds: float) -> datetime:
    """When a hook expires as the API reports it: the scaled wait, in wall-clock time."""
    return _now() + timedelta(seconds=scaled_seconds)


# --- the API ---------------------------------------------------------------------------------------


def _body(response: EC2ContainerServiceResponse) -> dict[str, Any]:
    return dict(json.loads(response.body or "{}"))


def _dump(value: Any) -> str:
    return json.dumps(value, default=lambda v: v.timestamp() if isinstance(v, datetime) else str(v))


class EcsTrafficServiceDeployments(Extension):
    name = "ecs_traffic_service_deployments"

    def patches(self) -> Iterable[Patch]:
        cls = EC2ContainerServiceResponse
        # ListServiceDeployments stays the rolling deployments' API, which lists these records too.
        add_records_source(REGISTRY.of_service)
        names = ("describe_service_deployments", "continue_service_deployment", "stop_service_deployment")
        previous = {n: getattr(cls, n, None) for n in names}

        def _pass(name: str, response: EC2ContainerServiceResponse) -> Any:
            """The answer of the handler installed before this one (the rolling deployments' API), as it
            gave it (moto serializes an ActionResult itself), or None when there was none."""
            handler = previous[name]
            return None if handler is None else handler(response)

        def _owned(
            name: str, response: EC2ContainerServiceResponse
        ) -> tuple[dict[str, Any], ServiceDeploymentRecord | None, Any]:
            """(body, this module's record of the request's serviceDeploymentArn, None); for another
            deployment (body, None, the earlier handler's answer); ECS's not-found when nobody has it."""
            body = _body(response)
            arn = str(body.get("serviceDeploymentArn", ""))
            record = REGISTRY.get(arn)
            if record is not None:
                return body, record, None
            passed = _pass(name, response)
            if passed is None:
                raise ServiceDeploymentNotFound(arn)
            return body, None, passed

        def describe_service_deployments(response: EC2ContainerServiceResponse) -> str:
            arns = _body(response).get("serviceDeploymentArns") or []
            found = [REGISTRY.get(a) for a in arns]
            if not any(found):
                passed = _pass("describe_service_deployments", response)
                if passed is not None:
                    return passed
            return _dump(
                {
                    "serviceDeployments": [r.to_api() for r in found if r is not None],
                    "failures": [
                        {"arn": a, "reason": "MISSING"} for a, r in zip(arns, found, strict=True) if r is None
                    ],
                }
            )

        def continue_service_deployment(response: EC2ContainerServiceResponse) -> Any:
            body, record, passed = _owned("continue_service_deployment", response)
            if record is None:
                return passed
            action = str(body.get("action") or "CONTINUE")
            if action not in ("CONTINUE", "ROLLBACK"):
                raise InvalidParameter(f"action must be CONTINUE or ROLLBACK, not {action}.")
            hook = next((h for h in record.hooks if h.hook_id == body.get("hookId")), None)
            if hook is None:
                raise InvalidParameter(f"The lifecycle hook {body.get('hookId')} does not belong to {record.arn}.")
            if record.status != "IN_PROGRESS" or hook.status != "AWAITING_ACTION":
                raise InvalidParameter(
                    f"The lifecycle hook {hook.hook_id} is {hook.status} and the service deployment is "
                    f"{record.status}: only an AWAITING_ACTION hook of an IN_PROGRESS deployment can be continued."
                )
            hook.action = action
            return _dump({"serviceDeploymentArn": record.arn})

        def stop_service_deployment(response: EC2ContainerServiceResponse) -> Any:
            body, record, passed = _owned("stop_service_deployment", response)
            if record is None:
                return passed
            stop_type = str(body.get("stopType") or "ROLLBACK")
            if stop_type not in ("ROLLBACK", "ABORT"):
                raise InvalidParameter(f"stopType must be ROLLBACK or ABORT, not {stop_type}.")
            if record.status not in ("PENDING", "IN_PROGRESS"):
                raise Conflict(f"The service deployment {record.arn} is {record.status} and cannot be stopped.")
            record.set(
                stop_requested=stop_type, status="ROLLBACK_REQUESTED" if stop_type == "ROLLBACK" else "STOP_REQUESTED"
            )
            return _dump({"serviceDeploymentArn": record.arn})

        yield cls, "describe_service_deployments", describe_service_deployments
        yield cls, "continue_service_deployment", continue_service_deployment
        yield cls, "stop_service_deployment", stop_service_deployment

    def reset(self) -> None:
        REGISTRY.clear()
