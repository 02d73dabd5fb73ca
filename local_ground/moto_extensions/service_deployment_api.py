"""ecs_service_deployment_api: ListServiceDeployments, DescribeServiceDeployments, StopServiceDeployment.

moto 5.2.5 answers all three with "not implemented". AWS behaviour reproduced (ECS API reference, and
the developer guide's "View service history using Amazon ECS service deployments" and "Stopping Amazon
ECS service deployments"):

- every deployment the service model starts (``deployments.ServiceDeployments.start_deployment``) is a
  *service deployment*: ``arn:aws:ecs:REGION:ACCOUNT:service-deployment/CLUSTER/SERVICE/ID``, whose
  target is a *service revision* (``.../service-revision/CLUSTER/SERVICE/N``) and whose sources are the
  revisions that ran when it started;
- status: IN_PROGRESS while it rolls out, SUCCESSFUL when it completes; one that a newer deployment
  replaces before it completes is STOPPED; one the circuit breaker or a deployment alarm fails is
  ROLLBACK_IN_PROGRESS while ECS rolls back to the source revision, then ROLLBACK_SUCCESSFUL or
  ROLLBACK_FAILED; without rollback configured it is STOPPED;
- StopServiceDeployment (stopType ROLLBACK, the only valid value; ROLLBACK when absent) on a PENDING or
  IN_PROGRESS deployment: ROLLBACK_REQUESTED, then ECS rolls back to the previous revision even when
  rollback was not configured (ROLLBACK_IN_PROGRESS -> ROLLBACK_SUCCESSFUL); on STOP_REQUESTED or
  ROLLBACK_* it carries on and answers the ARN; on a finished one it is a ConflictException; an unknown
  ARN is ServiceDeploymentNotFoundException;
- ListServiceDeployments: newest first, filtered by `status` and `createdAt`, `maxResults` 1-100
  (default 20) with `nextToken`; DescribeServiceDeployments: at most 20 ARNs, unknown ones as
  failures with reason MISSING.

Where AWS does not document the answer, this module refuses rather than guesses: a rollback with no
earlier revision to return to (the service's first deployment) is a ConflictException.

The records live beside the deployment model (``ServiceDeploymentRecords`` on each service model) and
follow it through three wrapped methods (start, complete, fail); other extensions can read and extend
them through ``records_of`` and ``find_record`` (e.g. lifecycle stages for traffic-shifting strategies).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.ecs.models import Service, ecs_backends
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.moto_api._internal import mock_random

from ._base import Extension, Patch
from .deployments import Deployment, RolloutState, ServiceDeployments


class ServiceDeploymentStatus(StrEnum):
    PENDING = "PENDING"
    SUCCESSFUL = "SUCCESSFUL"
    STOPPED = "STOPPED"
    STOP_REQUESTED = "STOP_REQUESTED"
    IN_PROGRESS = "IN_PROGRESS"
    ROLLBACK_REQUESTED = "ROLLBACK_REQUESTED"
    ROLLBACK_IN_PROGRESS = "ROLLBACK_IN_PROGRESS"
    ROLLBACK_SUCCESSFUL = "ROLLBACK_SUCCESSFUL"
    ROLLBACK_FAILED = "ROLLBACK_FAILED"


# StopServiceDeployment: these move to ROLLBACK_REQUESTED; these carry on; the rest are finished.
STOPPABLE = frozenset({ServiceDeploymentStatus.PENDING, ServiceDeploymentStatus.IN_PROGRESS})
STOPPING = frozenset(
    {
        ServiceDeploymentStatus.STOP_REQUESTED,
        ServiceDeploymentStatus.ROLLBACK_REQUESTED,
        ServiceDeploymentStatus.ROLLBACK_IN_PROGRESS,
    }
)
STOP_TYPES = ("ROLLBACK",)  # the API model also names ABORT; the reference says "The valid values are ROLLBACK"
DESCRIBE_LIMIT = 20
LIST_DEFAULT, LIST_MAX = 20, 100


class ServiceDeploymentNotFound(ServiceException):
    code = "ServiceDeploymentNotFoundException"


class Conflict(ServiceException):
    code = "ConflictException"


class InvalidParameter(ServiceException):
    code = "InvalidParameterException"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Revision:
    """A service revision: what one deployment runs."""

    arn: str
    task_definition: str
    deployment_id: str  # the deployment that runs it (counts are read from it while it exists)
    requested: int = 0


@dataclass
class ServiceDeploymentRecord:
    arn: str
    service_arn: str
    cluster_arn: str
    deployment_id: str  # the ECS deployment (describe_services' `deployments[].id`) it started
    target: Revision
    sources: list[Revision]
    status: ServiceDeploymentStatus = ServiceDeploymentStatus.IN_PROGRESS
    status_reason: str = ""
    created_at: datetime = field(default_factory=_now)
    started_at: datetime = field(default_factory=_now)
    updated_at: datetime = field(default_factory=_now)
    finished_at: datetime | None = None
    stopped_at: datetime | None = None
    rollback: dict[str, Any] | None = None  # reason, startedAt, serviceRevisionArn
    rollback_deployment_id: str = ""  # the ECS deployment that runs the rollback
    triggered_by: str = ""  # "circuit breaker" | "alarms" | "stop request": what failed or stopped it

    @property
    def finished(self) -> bool:
        return self.status not in STOPPABLE | STOPPING

    def set(self, status: ServiceDeploymentStatus, reason: str) -> None:
        self.status, self.status_reason, self.updated_at = status, reason, _now()
        if self.finished:
            self.finished_at = self.updated_at
            if status is ServiceDeploymentStatus.STOPPED:
                self.stopped_at = self.updated_at

    def brief(self) -> dict[str, Any]:
        """ServiceDeploymentBrief, as ListServiceDeployments returns it."""
        item = {
            "serviceDeploymentArn": self.arn,
            "serviceArn": self.service_arn,
            "clusterArn": self.cluster_arn,
            "startedAt": self.started_at,
            "createdAt": self.created_at,
            "finishedAt": self.finished_at,
            "targetServiceRevisionArn": self.target.arn,
            "status": self.status.value,
            "statusReason": self.status_reason,
        }
        return {k: v for k, v in item.items() if v is not None}


class ServiceDeploymentRecords:
    """The service deployments of one service, newest first, kept in step with its deployment model."""

    def __init__(self, model: ServiceDeployments) -> None:
        self.model = model
        self.records: list[ServiceDeploymentRecord] = []
        self.revisions: dict[str, Revision] = {}  # ECS deployment id -> the revision it runs
        self.rolling_back: ServiceDeploymentRecord | None = None  # set while a rollback deployment starts
        self._revision_numbers = iter(range(1, 10**9))

    # --- reading ---------------------------------------------------------------------------------

    def for_deployment(self, deployment_id: str) -> ServiceDeploymentRecord | None:
        return next((r for r in self.records if r.deployment_id == deployment_id), None)

    def rolling_back_with(self, deployment_id: str) -> ServiceDeploymentRecord | None:
        return next((r for r in self.records if r.rollback_deployment_id == deployment_id), None)

    def describe(self, record: ServiceDeploymentRecord) -> dict[str, Any]:
        """ServiceDeployment, as DescribeServiceDeployments returns it."""
        service = self.model.service
        configuration = getattr(service, "deployment_configuration", None) or {}
        breaker = configuration.get("deploymentCircuitBreaker") or {}
        alarms = configuration.get("alarms") or {}
        item: dict[str, Any] = {
            **record.brief(),
            "updatedAt": record.updated_at,
            "stoppedAt": record.stopped_at,
            "sourceServiceRevisions": [self._summary(r) for r in record.sources],
            "targetServiceRevision": self._summary(record.target),
            "deploymentCircuitBreaker": self._monitor(record, bool(breaker.get("enable")), "circuit breaker")
            | self._breaker_counts(record),
            "alarms": self._monitor(record, bool(alarms.get("enable")), "alarms")
            | {"alarmNames": list(alarms.get("alarmNames") or [])},
            "rollback": record.rollback,
        }
        item.pop("targetServiceRevisionArn")
        return {k: v for k, v in item.items() if v is not None}

    def _summary(self, revision: Revision) -> dict[str, Any]:
        live = next((d for d in self.model.deployments if d.id == revision.deployment_id), None)
        return {
            "arn": revision.arn,
            "requestedTaskCount": live.desired_count if live else revision.requested,
            "runningTaskCount": live.running_count if live else 0,
            "pendingTaskCount": live.pending_count if live else 0,
        }

    @staticmethod
    def _monitor(record: ServiceDeploymentRecord, enabled: bool, monitor: str) -> dict[str, Any]:
        if not enabled:
            return {"status": "DISABLED"}
        if record.triggered_by == monitor:
            return {"status": "TRIGGERED"}
        return {"status": "MONITORING" if not record.finished else "MONITORING_COMPLETE"}

    def _breaker_counts(self, record: ServiceDeploymentRecord) -> dict[str, Any]:
        from local_ground.tasks.service import failure_threshold  # the scheduler owns the formula

        live = next((d for d in self.model.deployments if d.id == record.deployment_id), None)
        desired = live.desired_count if live else record.target.requested
        return {"failureCount": live.failed_tasks if live else 0, "threshold": failure_threshold(desired)}

    # --- following the deployment model -------------------------------------------------------------

    def revision_for(self, deployment: Deployment) -> Revision:
        revision = self.revisions.get(deployment.id)
        if revision is None:
            service = self.model.service
            number = next(self._revision_numbers)
            arn = f"{_prefix(service, 'service-revision')}/{number:019d}"
            revision = Revision(arn, deployment.task_definition, deployment.id, deployment.desired_count)
            self.revisions[deployment.id] = revision
        return revision

    def started(self, deployment: Deployment, sources: list[Deployment]) -> None:
        """A deployment started: a new service deployment, or the rollback of one."""
        if self.rolling_back is not None:
            record, self.rolling_back = self.rolling_back, None
            # The rollback runs the source revision again: its counts come from the new deployment.
            revision = record.sources[0] if record.sources else self.revision_for(deployment)
            revision.deployment_id = deployment.id
            self.revisions[deployment.id] = revision
            record.rollback_deployment_id = deployment.id
            record.set(ServiceDeploymentStatus.ROLLBACK_IN_PROGRESS, record.status_reason)
            return
        for older in self.records:
            if older.status in STOPPABLE:
                older.set(ServiceDeploymentStatus.STOPPED, "Service deployment stopped: a newer deployment started.")
        service = self.model.service
        self.records.insert(
            0,
            ServiceDeploymentRecord(
                arn=f"{_prefix(service, 'service-deployment')}/{mock_random.get_random_string(22)}",
                service_arn=service.arn,
                cluster_arn=_cluster_arn(service),
                deployment_id=deployment.id,
                target=self.revision_for(deployment),
                sources=[self.revision_for(d) for d in sources],
                status_reason="Service deployment in progress.",
            ),
        )

    def completed(self, deployment: Deployment) -> None:
        record = self.for_deployment(deployment.id)
        if record is not None and record.status in STOPPABLE:
            record.set(ServiceDeploymentStatus.SUCCESSFUL, "Service deployment completed successfully.")
        rolled_back = self.rolling_back_with(deployment.id)
        if rolled_back is not None and rolled_back.status in STOPPING:
            rolled_back.set(ServiceDeploymentStatus.ROLLBACK_SUCCESSFUL, "Service deployment rolled back.")

    def failed(self, deployment: Deployment, rolled_back: bool) -> None:
        rollback_of = self.rolling_back_with(deployment.id)
        if rollback_of is not None and rollback_of.status in STOPPING:
            rollback_of.set(
                ServiceDeploymentStatus.ROLLBACK_FAILED, f"Rollback failed: {deployment.rollout_state_reason}"
            )
        record = self.for_deployment(deployment.id)
        if record is None:
            return
        record.triggered_by = record.triggered_by or deployment.failed_by
        # Rolled back: started() moved it to ROLLBACK_IN_PROGRESS. Otherwise the deployment just ends.
        if not rolled_back and record.status in STOPPABLE | {ServiceDeploymentStatus.ROLLBACK_REQUESTED}:
            record.set(ServiceDeploymentStatus.STOPPED, f"Service deployment failed: {deployment.rollout_state_reason}")

    def start_rollback(self, record: ServiceDeploymentRecord, reason: str) -> None:
        record.rollback = {
            "reason": reason,
            "startedAt": _now(),
            "serviceRevisionArn": record.sources[0].arn if record.sources else "",
        }


def _prefix(service: Service, kind: str) -> str:
    # arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE -> arn:aws:ecs:REGION:ACCOUNT:KIND/CLUSTER/SERVICE
    head, _, path = service.arn.partition(":service/")
    return f"{head}:{kind}/{path}"


def _cluster_arn(service: Service) -> str:
    head, _, path = service.arn.partition(":service/")
    return f"{head}:cluster/{path.split('/')[0]}"


_lock = threading.RLock()


def records_of(model: ServiceDeployments) -> ServiceDeploymentRecords:
    records: ServiceDeploymentRecords | None = getattr(model, "_service_deployment_records", None)
    if records is None:
        records = ServiceDeploymentRecords(model)
        model._service_deployment_records = records  # type: ignore[attr-defined]
    return records


def _all_records(account: str, region: str) -> Iterator[tuple[ServiceDeploymentRecords, ServiceDeploymentRecord]]:
    for service in list(ecs_backends[account][region].services.values()):
        model = getattr(service, "_deployments_model", None)
        if model is None:
            continue
        records = records_of(model)
        for record in records.records:
            yield records, record


def find_record(arn: str, account: str, region: str) -> tuple[ServiceDeploymentRecords, ServiceDeploymentRecord]:
    for records, record in _all_records(account, region):
        if record.arn == arn:
            return records, record
    raise ServiceDeploymentNotFound(f"The service deployment {arn} does not exist.")


def stop_service_deployment(arn: str, stop_type: str | None, account: str, region: str) -> str:
    """StopServiceDeployment: roll an in-flight deployment back to its source revision."""
    if stop_type is not None and stop_type not in STOP_TYPES:
        raise InvalidParameter(f"stopType {stop_type} is not valid. The valid values are ROLLBACK.")
    with _lock:
        records, record = find_record(arn, account, region)
        if record.status in STOPPING:
            return record.arn  # "continues to stop" / "continues the rollback operation"
        if record.status not in STOPPABLE:
            raise Conflict(f"The service deployment {arn} is {record.status.value} and cannot be stopped.")
        model = records.model
        if not record.sources or model.last_completed is None:
            raise Conflict(f"The service deployment {arn} has no previous service revision to roll back to.")
        reason = "Service deployment rolled back because of a stop request."
        record.triggered_by = "stop request"
        record.set(ServiceDeploymentStatus.ROLLBACK_REQUESTED, reason)
        records.start_rollback(record, reason)
        # ECS rolls back "even if you didn't configure the service deployment for the rollback option".
        model.mark_failed("stopped by StopServiceDeployment.", record.deployment_id, source="stop", rollback=True)
        return record.arn


# Deployments other extensions record for a service (the native traffic-shifting strategies:
# traffic_deployments), by service ARN, so that ListServiceDeployments lists all of a service's kinds.
_OTHER_SOURCES: list[Callable[[str], Iterable[Any]]] = []


def add_records_source(source: Callable[[str], Iterable[Any]]) -> None:
    """Have ListServiceDeployments list `source(service_arn)` too (records with .deployment_id, .status,
    .created_at and .brief()), in place of the rolling record of the same deployment; adding twice adds once."""
    if source not in _OTHER_SOURCES:
        _OTHER_SOURCES.append(source)


def list_service_deployments(
    cluster: str, service: str, statuses: list[str] | None, created: dict[str, Any] | None, account: str, region: str
) -> list[dict[str, Any]]:
    found = ecs_backends[account][region]._get_service(cluster, service)  # ServiceNotFound / ClusterNotFound
    model = getattr(found, "_deployments_model", None)
    others = [record for source in _OTHER_SOURCES for record in source(str(found.arn))]
    chosen: list[Any] = list(others)
    if model is not None:
        # A deployment another extension keeps (it shifted the traffic) is listed as that one only.
        theirs = {record.deployment_id for record in others}
        with _lock:
            chosen += [r for r in records_of(model).records if r.deployment_id not in theirs]
    chosen.sort(key=lambda r: r.created_at, reverse=True)  # newest first, whatever recorded it
    if statuses:
        chosen = [r for r in chosen if str(getattr(r.status, "value", r.status)) in statuses]
    after, before = (created or {}).get("after"), (created or {}).get("before")
    if after is not None:
        chosen = [r for r in chosen if r.created_at >= _timestamp(after)]
    if before is not None:
        chosen = [r for r in chosen if r.created_at <= _timestamp(before)]
    return [r.brief() for r in chosen]


def _timestamp(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromtimestamp(float(value), UTC)


def _page(items: list[dict[str, Any]], max_results: Any, token: Any) -> tuple[list[dict[str, Any]], str | None]:
    size = LIST_DEFAULT if max_results is None else int(max_results)
    if not 1 <= size <= LIST_MAX:
        raise InvalidParameter(f"maxResults must be between 1 and {LIST_MAX}.")
    start = 0
    if token:
        if not str(token).isdigit():
            raise InvalidParameter("The nextToken is not valid.")
        start = int(token)
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


class EcsServiceDeploymentApi(Extension):
    name = "ecs_service_deployment_api"

    def patches(self) -> Iterable[Patch]:
        start = ServiceDeployments.start_deployment
        complete = ServiceDeployments.mark_completed
        fail = ServiceDeployments.mark_failed

        def start_deployment(model: ServiceDeployments, task_definition: str) -> Deployment:
            with _lock:
                # The source revision: what ran last to completion, else what runs now.
                running = [d for d in model.deployments if d.rollout_state is not RolloutState.FAILED]
                source = model.last_completed or (running[0] if running else None)
                deployment = start(model, task_definition)
                records_of(model).started(deployment, [source] if source is not None else [])
                return deployment

        def mark_completed(model: ServiceDeployments, deployment_id: str | None = None) -> Deployment:
            with _lock:
                deployment = complete(model, deployment_id)
                records_of(model).completed(deployment)
                return deployment

        def mark_failed(
            model: ServiceDeployments,
            reason: str = "tasks failed to start.",
            deployment_id: str | None = None,
            *,
            source: str = "circuit breaker",
            rollback: bool | None = None,
        ) -> Deployment:
            with _lock:
                records = records_of(model)
                target = model.get(deployment_id)
                record = records.for_deployment(target.id)
                if record is not None and record.status in STOPPABLE | {ServiceDeploymentStatus.ROLLBACK_REQUESTED}:
                    records.rolling_back = record  # a rollback deployment started now belongs to it
                    if record.rollback is None:
                        records.start_rollback(record, f"ECS deployment {source}: {reason}")
                try:
                    deployment = fail(model, reason, deployment_id, source=source, rollback=rollback)
                finally:
                    rolled_back = records.rolling_back is None and record is not None
                    records.rolling_back = None
                if record is not None and not rolled_back:
                    record.rollback = None
                records.failed(deployment, rolled_back)
                return deployment

        yield ServiceDeployments, "start_deployment", start_deployment
        yield ServiceDeployments, "mark_completed", mark_completed
        yield ServiceDeployments, "mark_failed", mark_failed
        yield from _api_methods()


def _api_methods() -> Iterator[Patch]:
    """The three operations on moto's ECS response class (moto dispatches an action to its snake_case method)."""

    def respond(handler: Callable[[EC2ContainerServiceResponse], dict[str, Any]]) -> Any:
        def method(response: EC2ContainerServiceResponse) -> ActionResult:
            return ActionResult(handler(response))

        return method

    def list_(response: EC2ContainerServiceResponse) -> dict[str, Any]:
        if not response._get_param("service"):
            raise InvalidParameter("service can not be blank.")
        items = list_service_deployments(
            response._get_param("cluster", "default"),
            response._get_param("service"),
            response._get_param("status"),
            response._get_param("createdAt"),
            response.current_account,
            response.region,
        )
        page, token = _page(items, response._get_param("maxResults"), response._get_param("nextToken"))
        return {"serviceDeployments": page, **({"nextToken": token} if token else {})}

    def describe(response: EC2ContainerServiceResponse) -> dict[str, Any]:
        arns = list(response._get_param("serviceDeploymentArns") or [])
        if not arns:
            raise InvalidParameter("serviceDeploymentArns can not be empty.")
        if len(arns) > DESCRIBE_LIMIT:
            raise InvalidParameter(f"serviceDeploymentArns can have at most {DESCRIBE_LIMIT} items.")
        found, failures = [], []
        with _lock:
            for arn in arns:
                try:
                    records, record = find_record(arn, response.current_account, response.region)
                except ServiceDeploymentNotFound:
                    failures.append({"arn": arn, "reason": "MISSING"})
                    continue
                found.append(records.describe(record))
        return {"serviceDeployments": found, "failures": failures}

    def stop(response: EC2ContainerServiceResponse) -> dict[str, Any]:
        arn = response._get_param("serviceDeploymentArn")
        if not arn:
            raise InvalidParameter("serviceDeploymentArn can not be blank.")
        stop_type = response._get_param("stopType")
        return {
            "serviceDeploymentArn": stop_service_deployment(arn, stop_type, response.current_account, response.region)
        }

    yield EC2ContainerServiceResponse, "list_service_deployments", respond(list_)
    yield EC2ContainerServiceResponse, "describe_service_deployments", respond(describe)
    yield EC2ContainerServiceResponse, "stop_service_deployment", respond(stop)
