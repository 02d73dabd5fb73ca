"""Where moto 5.2.5 falls short of AWS behaviour the pipeline relies on, extended explicitly.

Each extension is named after the AWS behaviour it reproduces, is installed and removed on its
own (``LocalAWS`` installs ``all_extensions()`` in this order and removes them in reverse),
and has a test showing the gap without it. Nothing here patches moto at import time.
"""

from __future__ import annotations

from ._base import Extension
from .autoscaling import AutoscalingResourcesFromTemplates
from .cfn_validation import (
    CloudFormationValidatesParameters,
    CloudFormationValidatesStackNames,
    NoChangeUpdateIsAFailedChangeSet,
)
from .change_set_changes import ChangeSetsListResolvedChanges
from .change_set_imports import ChangeSetStacksImportValues
from .change_set_outputs import ChangeSetStacksReportOutputs
from .change_set_pages import ChangeSetsDescribedInPages
from .cloudwatch_alarms import CloudWatchAlarmsEvaluateMetrics, CloudWatchAlarmsFromTemplates
from .create_waits import StackCreationWaitsForEcs
from .deployment_alarms import EcsDeploymentAlarms
from .deployments import (
    Deployment,
    DeploymentStatus,
    RolloutState,
    ServiceDeployments,
    TaskRunner,
    complete_deployment,
    deployments_of,
    fail_deployment,
    set_task_runner,
)
from .ecr_lifecycle import EcrLifecyclePoliciesExpireImages
from .ecs_deployments import EcsDeployments
from .ecs_templates import EcsServiceKeepsTemplateConfiguration, EcsTaskDefinitionKeepsTemplateConfiguration
from .ecs_validation import (
    EcsRefusesInactiveTaskDefinitions,
    EcsValidatesFargateTaskDefinitions,
    EcsValidatesServiceLoadBalancers,
)
from .elbv2_attributes import LoadBalancerAttributesFromTemplates, LoadBalancerDeletionProtection
from .logs_filter import FilterLogEventsHonoursStreamPrefix
from .metric_percentiles import CloudWatchPercentileStatistics
from .network_deletion import StackDeletionDeletesNetworkResources
from .rollback_waits import UpdateRollbackWaitsForEcs
from .service_deletion import StackDeletionStopsEcsServices
from .service_deployment_api import EcsServiceDeploymentApi, ServiceDeploymentStatus
from .stack_deletion import ExportsInUseCannotChange, StackDeletionCanFail
from .stack_rollback import FailedStackUpdateRollsBack
from .template_parsing import TemplatesParsedOnce
from .throttling import ThrottlingInjection, clear_throttling, inject_throttling
from .traffic_deployments import EcsTrafficServiceDeployments

# Install order matters only where two wrap the same moto method: the later one is outermost.
EXTENSION_TYPES: tuple[type[Extension], ...] = (
    TemplatesParsedOnce,
    ChangeSetStacksReportOutputs,
    ChangeSetStacksImportValues,
    ChangeSetsListResolvedChanges,
    ChangeSetsDescribedInPages,
    AutoscalingResourcesFromTemplates,
    CloudWatchAlarmsFromTemplates,
    CloudWatchAlarmsEvaluateMetrics,
    CloudWatchPercentileStatistics,
    EcsTaskDefinitionKeepsTemplateConfiguration,
    EcsServiceKeepsTemplateConfiguration,
    EcsDeployments,
    EcsDeploymentAlarms,
    EcsServiceDeploymentApi,
    EcsTrafficServiceDeployments,
    FailedStackUpdateRollsBack,
    UpdateRollbackWaitsForEcs,
    StackCreationWaitsForEcs,
    StackDeletionStopsEcsServices,
    StackDeletionDeletesNetworkResources,
    StackDeletionCanFail,
    ExportsInUseCannotChange,
    CloudFormationValidatesParameters,
    CloudFormationValidatesStackNames,
    NoChangeUpdateIsAFailedChangeSet,
    EcsValidatesFargateTaskDefinitions,
    EcsValidatesServiceLoadBalancers,
    EcsRefusesInactiveTaskDefinitions,
    LoadBalancerAttributesFromTemplates,
    LoadBalancerDeletionProtection,
    EcrLifecyclePoliciesExpireImages,
    FilterLogEventsHonoursStreamPrefix,
    ThrottlingInjection,
)
EXTENSION_NAMES: tuple[str, ...] = tuple(t.name for t in EXTENSION_TYPES)


def all_extensions(*, without: tuple[str, ...] = ()) -> list[Extension]:
    """Fresh instances of every extension, in install order, minus the named ones."""
    unknown = set(without) - set(EXTENSION_NAMES)
    if unknown:
        raise ValueError(f"unknown moto extensions: {sorted(unknown)}")
    return [t() for t in EXTENSION_TYPES if t.name not in without]


__all__ = [
    "EXTENSION_NAMES",
    "EXTENSION_TYPES",
    "Deployment",
    "DeploymentStatus",
    "Extension",
    "RolloutState",
    "ServiceDeploymentStatus",
    "ServiceDeployments",
    "TaskRunner",
    "all_extensions",
    "clear_throttling",
    "complete_deployment",
    "deployments_of",
    "fail_deployment",
    "inject_throttling",
    "set_task_runner",
]
