"""Load balancer settings from templates are kept and enforced, as Elastic Load Balancing does.

- load_balancer_attributes_from_templates: ``AWS::ElasticLoadBalancingV2::LoadBalancer``
  LoadBalancerAttributes (idle timeout, deletion protection, drop invalid header fields) and
  ``AWS::ElasticLoadBalancingV2::TargetGroup`` TargetGroupAttributes (deregistration delay) are
  the resource's attributes, as describe_load_balancer_attributes / describe_target_group_attributes
  show them. AWS: CloudFormation resource reference for both types ("LoadBalancerAttributes: The
  load balancer attributes", "TargetGroupAttributes: The target group attributes"). moto 5.2.5
  drops both lists (delay reads 300, deletion protection false, idle timeout 60).
- load_balancer_deletion_protection: DeleteLoadBalancer of a load balancer with
  ``deletion_protection.enabled`` = true fails with OperationNotPermitted. AWS: "Application Load
  Balancers - Deletion protection" (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#deletion-protection:
  "you can't delete a load balancer if deletion protection is enabled"). moto 5.2.5 deletes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.elbv2.exceptions import ELBClientError
from moto.elbv2.models import ELBv2Backend, FakeLoadBalancer, FakeTargetGroup, elbv2_backends

from ._base import Extension, Patch


def _attributes(items: Any) -> dict[str, str]:
    """[{"Key": k, "Value": v}, ...] -> {k: "v"} (template values may be numbers or booleans)."""
    result = {}
    for item in items or []:
        value = item.get("Value")
        result[str(item["Key"])] = str(value).lower() if isinstance(value, bool) else str(value)
    return result


class LoadBalancerAttributesFromTemplates(Extension):
    name = "load_balancer_attributes_from_templates"

    def patches(self) -> Iterable[Patch]:
        create_group = FakeTargetGroup.create_from_cloudformation_json
        create_balancer = FakeLoadBalancer.create_from_cloudformation_json

        def target_group(
            cls: type, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
        ) -> FakeTargetGroup:
            group = create_group(resource_name, cloudformation_json, account_id, region_name, **kw)
            attributes = _attributes(cloudformation_json["Properties"].get("TargetGroupAttributes"))
            if attributes:
                elbv2_backends[account_id][region_name].modify_target_group_attributes(group.arn, attributes)
            return group

        def load_balancer(
            cls: type, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
        ) -> FakeLoadBalancer:
            balancer = create_balancer(resource_name, cloudformation_json, account_id, region_name, **kw)
            attributes = _attributes(cloudformation_json["Properties"].get("LoadBalancerAttributes"))
            if attributes:
                elbv2_backends[account_id][region_name].modify_load_balancer_attributes(balancer.arn, attributes)
            return balancer

        def update_load_balancer(
            cls: type,
            original_resource: FakeLoadBalancer,
            new_resource_name: str,
            cloudformation_json: Any,
            account_id: str,
            region_name: str,
        ) -> FakeLoadBalancer:
            """LoadBalancerAttributes update in place ("No interruption"); moto has no update at all."""
            attributes = _attributes(cloudformation_json["Properties"].get("LoadBalancerAttributes"))
            if attributes:
                elbv2_backends[account_id][region_name].modify_load_balancer_attributes(
                    original_resource.arn, attributes
                )
            return original_resource

        yield FakeTargetGroup, "create_from_cloudformation_json", classmethod(target_group)
        yield FakeLoadBalancer, "create_from_cloudformation_json", classmethod(load_balancer)
        yield FakeLoadBalancer, "update_from_cloudformation_json", classmethod(update_load_balancer)


class DeletionProtectionRefused(ELBClientError):
    def __init__(self, arn: str) -> None:
        super().__init__(
            "OperationNotPermitted", f"Load balancer '{arn}' cannot be deleted because deletion protection is enabled"
        )


class LoadBalancerDeletionProtection(Extension):
    name = "load_balancer_deletion_protection"

    def patches(self) -> Iterable[Patch]:
        delete = ELBv2Backend.delete_load_balancer

        def delete_load_balancer(backend: ELBv2Backend, arn: str) -> None:
            balancer = backend.load_balancers.get(arn)
            if balancer is not None and str(balancer.attrs.get("deletion_protection.enabled")).lower() == "true":
                raise DeletionProtectionRefused(arn)
            delete(backend, arn)

        yield ELBv2Backend, "delete_load_balancer", delete_load_balancer
