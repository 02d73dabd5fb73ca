"""autoscaling_resources_from_templates: ``AWS::ApplicationAutoScaling::ScalableTarget`` and
``ScalingPolicy`` in a template exist through the application-autoscaling API, show up as
stack resources with their logical ids, and go away with the stack.

moto 5.2.5 has no CloudFormation model for either type: they are skipped with a warning and
listed as stack resources without logical id or type. Target-tracking on
``ALBRequestCountPerTarget`` also needs ``Fn::GetAtt TargetGroup.TargetGroupFullName`` for its
ResourceLabel, which moto's target group lacks, and ``LoadBalancerFullName``, which moto's load
balancer declares but raises NotImplementedError for; this extension adds both.

The models below are duck-typed (not ``CloudFormationModel`` subclasses) on purpose: moto
discovers models through ``__subclasses__()`` behind an lru_cache, so a subclass would leak
into moto whether or not the extension is installed. Instead, installing swaps moto's
type -> model lookup for one that also knows these two types.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from moto.applicationautoscaling.models import (
    ApplicationAutoscalingBackend,
    FakeApplicationAutoscalingPolicy,
    FakeScalableTarget,
    applicationautoscaling_backends,
)
from moto.cloudformation import parsing
from moto.elbv2.models import FakeLoadBalancer, FakeTargetGroup

from ._base import Extension, Patch, as_int

SCALABLE_TARGET = "AWS::ApplicationAutoScaling::ScalableTarget"
SCALING_POLICY = "AWS::ApplicationAutoScaling::ScalingPolicy"


def _backend(account_id: str, region_name: str) -> ApplicationAutoscalingBackend:
    return applicationautoscaling_backends[account_id][region_name]


def _numbers(config: dict[str, Any]) -> dict[str, Any]:
    """Template values arrive as strings when written as such; the API has numbers."""
    out = dict(config)
    if "TargetValue" in out:
        out["TargetValue"] = float(out["TargetValue"])
    for key in ("ScaleInCooldown", "ScaleOutCooldown"):
        if key in out:
            out[key] = int(out[key])
    if "DisableScaleIn" in out and isinstance(out["DisableScaleIn"], str):
        out["DisableScaleIn"] = out["DisableScaleIn"].lower() == "true"
    return out


class ScalableTargetResource:
    """The stack's view of one scalable target; Ref is ``resource|dimension|namespace`` as on AWS."""

    def __init__(self, target: FakeScalableTarget, account_id: str, region_name: str) -> None:
        self.target = target
        self.account_id = account_id
        self.region_name = region_name

    @property
    def physical_resource_id(self) -> str:
        t = self.target
        return f"{t.resource_id}|{t.scalable_dimension}|{t.service_namespace}"

    @staticmethod
    def cloudformation_type() -> str:
        return SCALABLE_TARGET

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attr: str) -> str:
        return self.physical_resource_id

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> ScalableTargetResource:
        props = cloudformation_json["Properties"]
        target = _backend(account_id, region_name).register_scalable_target(
            props["ServiceNamespace"],
            props["ResourceId"],
            props["ScalableDimension"],
            min_capacity=as_int(props.get("MinCapacity")),
            max_capacity=as_int(props.get("MaxCapacity")),
            role_arn=props.get("RoleARN"),
            suspended_state=props.get("SuspendedState"),
        )
        return cls(target, account_id, region_name)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> ScalableTargetResource:
        props = cloudformation_json["Properties"]
        old = original_resource.target
        if (old.resource_id, old.scalable_dimension) != (props["ResourceId"], props["ScalableDimension"]):
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError  # instances delete themselves (ResourceMap tries .delete first)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)
        t = self.target
        # On AWS deregistering a target also deletes its scaling policies.
        for key, policy in list(backend.policies.items()):
            if (policy.resource_id, policy.scalable_dimension) == (t.resource_id, t.scalable_dimension):
                policy.delete_alarms(account_id, region_name)
                del backend.policies[key]
        if backend._scalable_target_exists(t.resource_id, t.scalable_dimension):
            backend.deregister_scalable_target(t.service_namespace, t.resource_id, t.scalable_dimension)


class ScalingPolicyResource:
    """The stack's view of one scaling policy; Ref is the policy ARN as on AWS."""

    def __init__(self, policy: FakeApplicationAutoscalingPolicy) -> None:
        self.policy = policy

    @property
    def physical_resource_id(self) -> str:
        return self.policy.policy_arn

    @staticmethod
    def cloudformation_type() -> str:
        return SCALING_POLICY

    @staticmethod
    def cloudformation_name_type() -> str:
        return "PolicyName"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attr: str) -> str:
        return self.policy.policy_arn

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(
        cls, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kwargs: Any
    ) -> ScalingPolicyResource:
        props = cloudformation_json["Properties"]
        if "ScalingTargetId" in props:  # the Ref of a ScalableTarget: resource|dimension|namespace
            resource_id, dimension, namespace = props["ScalingTargetId"].split("|")
        else:
            resource_id = props["ResourceId"]
            dimension = props["ScalableDimension"]
            namespace = props["ServiceNamespace"]
        policy_type = props["PolicyType"]
        if policy_type == "TargetTrackingScaling":
            body = _numbers(props["TargetTrackingScalingPolicyConfiguration"])
        else:
            body = props.get("StepScalingPolicyConfiguration", {})
        policy = _backend(account_id, region_name).put_scaling_policy(
            policy_name=props.get("PolicyName", resource_name),
            service_namespace=namespace,
            resource_id=resource_id,
            scalable_dimension=dimension,
            policy_body=body,
            policy_type=policy_type,
        )
        return cls(policy)

    @classmethod
    def update_from_cloudformation_json(
        cls, original_resource: Any, new_resource_name: str, cloudformation_json: Any, account_id: str, region_name: str
    ) -> ScalingPolicyResource:
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(cls, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError

    def delete(self, account_id: str, region_name: str) -> None:
        p = self.policy
        key = p.formulate_key(p.service_namespace, p.resource_id, p.scalable_dimension, p.policy_name)
        backend = _backend(account_id, region_name)
        if key in backend.policies:
            backend.delete_scaling_policy(p.policy_name, p.service_namespace, p.resource_id, p.scalable_dimension)


MODELS: dict[str, Any] = {SCALABLE_TARGET: ScalableTargetResource, SCALING_POLICY: ScalingPolicyResource}


def _target_group_full_name(group: FakeTargetGroup) -> str:
    # arn:aws:elasticloadbalancing:region:account:targetgroup/name/id -> targetgroup/name/id
    return group.arn.split(":")[-1]


class AutoscalingResourcesFromTemplates(Extension):
    name = "autoscaling_resources_from_templates"

    def patches(self) -> Iterable[Patch]:
        model_map: Callable[[], dict[str, Any]] = parsing.get_model_map
        name_map: Callable[[], dict[str, str]] = parsing.get_name_type_map
        tg_has_attr = FakeTargetGroup.has_cfn_attr
        tg_get_attr = getattr(FakeTargetGroup, "get_cfn_attribute", None)

        def get_model_map() -> dict[str, Any]:
            return {**model_map(), **MODELS}

        def get_name_type_map() -> dict[str, str]:
            return {**name_map(), **{t: m.cloudformation_name_type() for t, m in MODELS.items()}}

        def has_cfn_attr(cls: type, attr: str) -> bool:
            return attr in ("TargetGroupFullName", "TargetGroupName") or tg_has_attr(attr)

        def get_cfn_attribute(group: FakeTargetGroup, attr: str) -> Any:
            if attr == "TargetGroupFullName":
                return _target_group_full_name(group)
            if attr == "TargetGroupName":
                return group.name
            if tg_get_attr is None:
                raise NotImplementedError(attr)
            return tg_get_attr(group, attr)

        yield parsing, "get_model_map", get_model_map
        yield parsing, "get_name_type_map", get_name_type_map
        yield FakeTargetGroup, "has_cfn_attr", classmethod(has_cfn_attr)
        yield FakeTargetGroup, "get_cfn_attribute", get_cfn_attribute

        lb_get_attr = FakeLoadBalancer.get_cfn_attribute

        def lb_get_cfn_attribute(balancer: FakeLoadBalancer, attr: str) -> Any:
            if attr == "LoadBalancerFullName":
                # arn:...:loadbalancer/app/name/id -> app/name/id
                return balancer.arn.split(":loadbalancer/")[-1]
            return lb_get_attr(balancer, attr)

        yield FakeLoadBalancer, "get_cfn_attribute", lb_get_cfn_attribute
