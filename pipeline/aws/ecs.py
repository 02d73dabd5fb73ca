"""ECS and target-group reads the rollout check makes, and the stop of a cancelled rollout; plain data out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.clients import aws_call, error_code
from pipeline.errors import RolloutError


@dataclass(frozen=True)
class Deployment:
    deployment_id: str
    status: str  # PRIMARY | ACTIVE | INACTIVE
    task_definition: str
    desired: int
    running: int
    pending: int
    failed_tasks: int
    rollout_state: str  # IN_PROGRESS | COMPLETED | FAILED
    rollout_reason: str


@dataclass(frozen=True)
class ServiceEvent:
    created_at: Any
    message: str


@dataclass(frozen=True)
class ServiceState:
    cluster: str
    name: str
    status: str
    task_definition: str
    desired: int
    running: int
    deployments: tuple[Deployment, ...]
    events: tuple[ServiceEvent, ...]  # newest first, as ECS returns them

    @property
    def primary(self) -> Deployment | None:
        return next((d for d in self.deployments if d.status == "PRIMARY"), None)

    def deployment_for(self, task_definition: str) -> Deployment | None:
        return next((d for d in self.deployments if d.task_definition == task_definition), None)


@dataclass(frozen=True)
class StoppedTask:
    task_arn: str
    task_definition: str
    stopped_reason: str
    container_reasons: tuple[str, ...]

    def reason(self) -> str:
        details = "; ".join(r for r in self.container_reasons if r)
        return f"{self.stopped_reason} ({details})" if details else self.stopped_reason


def describe_service(ecs: Any, cluster: str, service: str) -> ServiceState:
    with aws_call(f"describe service {service}"):
        raw = ecs.describe_services(cluster=cluster, services=[service])
    if not raw.get("services"):
        reason = raw.get("failures", [{}])[0].get("reason", "MISSING") if raw.get("failures") else "MISSING"
        raise RolloutError(
            f"service {service} not found in cluster {cluster} ({reason})", hint="Deploy the service stack first."
        )
    s = raw["services"][0]
    deployments = tuple(
        Deployment(
            deployment_id=d.get("id", ""),
            status=d.get("status", ""),
            task_definition=d.get("taskDefinition", ""),
            desired=int(d.get("desiredCount", 0)),
            running=int(d.get("runningCount", 0)),
            pending=int(d.get("pendingCount", 0)),
            failed_tasks=int(d.get("failedTasks", 0)),
            rollout_state=d.get("rolloutState", ""),
            rollout_reason=d.get("rolloutStateReason", ""),
        )
        for d in s.get("deployments", [])
    )
    events = tuple(ServiceEvent(e.get("createdAt"), e.get("message", "")) for e in s.get("events", []))
    return ServiceState(
        cluster=cluster,
        name=s.get("serviceName", service),
        status=s.get("status", ""),
        task_definition=s.get("taskDefinition", ""),
        desired=int(s.get("desiredCount", 0)),
        running=int(s.get("runningCount", 0)),
        deployments=deployments,
        events=events,
    )


def stopped_tasks(ecs: Any, cluster: str, service: str, limit: int = 10) -> list[StoppedTask]:
    with aws_call(f"list stopped tasks of {service}"):
        arns = ecs.list_tasks(cluster=cluster, serviceName=service, desiredStatus="STOPPED").get("taskArns", [])[:limit]
        if not arns:
            return []
        tasks = ecs.describe_tasks(cluster=cluster, tasks=arns).get("tasks", [])
    return [
        StoppedTask(
            task_arn=t.get("taskArn", ""),
            task_definition=t.get("taskDefinitionArn", ""),
            stopped_reason=t.get("stoppedReason", ""),
            container_reasons=tuple(
                c.get("reason", "") or (f"exit code {c['exitCode']}" if "exitCode" in c else "")
                for c in t.get("containers", [])
            ),
        )
        for t in tasks
    ]


def healthy_targets(elbv2: Any, target_group_arn: str) -> tuple[int, int]:
    """(healthy, registered) targets of a target group."""
    with aws_call("describe target health"):
        states = [
            d["TargetHealth"]["State"]
            for d in elbv2.describe_target_health(TargetGroupArn=target_group_arn)["TargetHealthDescriptions"]
        ]
    return sum(1 for s in states if s == "healthy"), len(states)


# --- service deployments of traffic-shifting strategies (BLUE_GREEN, CANARY, LINEAR) ---------------


@dataclass(frozen=True)
class ServiceDeployment:
    arn: str
    status: str  # PENDING | IN_PROGRESS | SUCCESSFUL | ROLLBACK_* | STOP_REQUESTED | STOPPED
    status_reason: str
    stage: str  # lifecycleStage
    awaiting_hook: str | None  # the hookId of a PAUSE hook waiting for ContinueServiceDeployment
    hook_states: tuple[str, ...]
    production_weight: float  # requestedProductionTrafficWeight of the new revision
    test_weight: float
    created_at: Any
    rollback_reason: str
    alarm_names: tuple[str, ...]
    triggered_alarms: tuple[str, ...]

    @property
    def ended(self) -> bool:
        return self.status in ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")


def latest_service_deployment(ecs: Any, cluster: str, service: str) -> ServiceDeployment | None:
    """The service's newest service deployment (ListServiceDeployments, then DescribeServiceDeployments)."""
    with aws_call(f"list the service deployments of {service}"):
        listed = ecs.list_service_deployments(cluster=cluster, service=service).get("serviceDeployments", [])
        if not listed:
            return None
        newest = max(listed, key=lambda d: d.get("createdAt") or 0)
        found = ecs.describe_service_deployments(serviceDeploymentArns=[newest["serviceDeploymentArn"]])
    items = found.get("serviceDeployments") or []
    if not items:
        return None
    d = items[0]
    hooks = d.get("lifecycleHookDetails") or []
    target = d.get("targetServiceRevision") or {}
    return ServiceDeployment(
        arn=d["serviceDeploymentArn"],
        status=d.get("status", ""),
        status_reason=d.get("statusReason", ""),
        stage=d.get("lifecycleStage", ""),
        awaiting_hook=next((h["hookId"] for h in hooks if h.get("status") == "AWAITING_ACTION"), None),
        hook_states=tuple(h.get("status", "") for h in hooks),
        production_weight=float(target.get("requestedProductionTrafficWeight") or 0),
        test_weight=float(target.get("requestedTestTrafficWeight") or 0),
        created_at=d.get("createdAt"),
        rollback_reason=(d.get("rollback") or {}).get("reason", ""),
        alarm_names=tuple((d.get("alarms") or {}).get("alarmNames") or ()),
        triggered_alarms=tuple((d.get("alarms") or {}).get("triggeredAlarmNames") or ()),
    )


def continue_service_deployment(ecs: Any, arn: str, hook_id: str, action: str) -> None:
    """CONTINUE or ROLLBACK a deployment held by a PAUSE hook."""
    with aws_call(f"{action.lower()} the service deployment"):
        ecs.continue_service_deployment(serviceDeploymentArn=arn, hookId=hook_id, action=action)


def forward_weights(elbv2: Any, rule_arn: str) -> dict[str, int]:
    """Target group ARN -> weight of a listener rule's forward action."""
    with aws_call("describe the listener rule"):
        rules = elbv2.describe_rules(RuleArns=[rule_arn]).get("Rules", [])
    for action in rules[0].get("Actions", []) if rules else []:
        groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
        if groups:
            return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    return {}


def load_balancer_of(elbv2: Any, target_group_arn: str) -> str:
    """The load balancer a target group serves, as CloudWatch names it (app/NAME/ID)."""
    with aws_call("describe the target group"):
        groups = elbv2.describe_target_groups(TargetGroupArns=[target_group_arn]).get("TargetGroups", [])
    arns = groups[0].get("LoadBalancerArns", []) if groups else []
    return str(arns[0]).split(":loadbalancer/")[-1] if arns else ""


# --- service deployments of any strategy: finding and stopping a rollout in flight -----------------

IN_FLIGHT = ("PENDING", "IN_PROGRESS")


@dataclass(frozen=True)
class DeploymentStatus:
    """A service deployment's ARN and status, for stopping a rollout in flight (Ctrl-C, SIGTERM)."""

    arn: str
    status: str  # PENDING | IN_PROGRESS | SUCCESSFUL | STOPPED | ROLLBACK_* | STOP_REQUESTED

    @property
    def short_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]


def deployments_in_flight(ecs: Any, cluster: str, service: str) -> list[DeploymentStatus]:
    """The service's deployments ECS is still rolling out (ListServiceDeployments), newest first."""
    with aws_call(f"list the deployments of {service}", hint="The role needs ecs:ListServiceDeployments."):
        found = ecs.list_service_deployments(cluster=cluster, service=service, status=list(IN_FLIGHT))
    return [DeploymentStatus(d["serviceDeploymentArn"], d["status"]) for d in found.get("serviceDeployments", [])]


def stop_deployment(ecs: Any, arn: str) -> DeploymentStatus:
    """StopServiceDeployment with ROLLBACK: ECS returns the service to the revision it ran before; the
    deployment's status after the request (DescribeServiceDeployments). One that ended meanwhile is
    not an error: its final status is returned."""
    with aws_call("stop a service deployment", hint="The role needs ecs:StopServiceDeployment."):
        try:
            ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
        except ClientError as err:
            if error_code(err) != "ConflictException":  # finished before the request arrived
                raise
        described = ecs.describe_service_deployments(serviceDeploymentArns=[arn]).get("serviceDeployments", [])
    return DeploymentStatus(arn, described[0]["status"] if described else "UNKNOWN")
