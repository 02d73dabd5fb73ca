"""Load balancer settings from templates are kept and enforced, as Elastic Load Balancing does."""

from __future__ import annotations

from typing import Any

import pytest

from tests.local_ground.test_moto_extensions import IMAGE_1, Clients, local_aws, service_template, shows_gap_without
from tests.local_ground.test_validation import error_of


def protected_template() -> dict[str, Any]:
    template = service_template()
    resources = template["Resources"]
    resources["Alb"]["Properties"]["LoadBalancerAttributes"] = [
        {"Key": "idle_timeout.timeout_seconds", "Value": "35"},
        {"Key": "deletion_protection.enabled", "Value": "true"},
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": True},
    ]
    resources["TargetGroup"]["Properties"]["TargetGroupAttributes"] = [
        {"Key": "deregistration_delay.timeout_seconds", "Value": 35}
    ]
    return template


def _balancer(c: Clients) -> tuple[str, str]:
    group = c.elbv2.describe_target_groups()["TargetGroups"][0]
    return group["LoadBalancerArns"][0], group["TargetGroupArn"]


def test_load_balancer_and_target_group_attributes_come_from_the_template() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create", protected_template())
        balancer, group = _balancer(c)
        attributes = {
            a["Key"]: a["Value"]
            for a in c.elbv2.describe_load_balancer_attributes(LoadBalancerArn=balancer)["Attributes"]
        }
        assert attributes["idle_timeout.timeout_seconds"] == "35"
        assert attributes["deletion_protection.enabled"] == "true"
        assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
        delay = {
            a["Key"]: a["Value"] for a in c.elbv2.describe_target_group_attributes(TargetGroupArn=group)["Attributes"]
        }["deregistration_delay.timeout_seconds"]
        assert delay == "35"

    shows_gap_without("load_balancer_attributes_from_templates", check)


def test_a_stack_update_changes_load_balancer_attributes_in_place() -> None:
    """An update of LoadBalancerAttributes alone keeps the load balancer ("No interruption")."""

    def check(c: Clients) -> None:
        unprotected = protected_template()
        unprotected["Resources"]["Alb"]["Properties"]["LoadBalancerAttributes"][1]["Value"] = "false"
        c.deploy("CREATE", IMAGE_1, "create", unprotected)
        c.aws.complete_deployment(*c.cluster_and_service())
        balancer, _ = _balancer(c)
        c.deploy("UPDATE", IMAGE_1, "protect", protected_template())
        assert c.stack()["StackStatus"] == "UPDATE_COMPLETE"
        assert _balancer(c)[0] == balancer, "the same load balancer"
        attributes = {
            a["Key"]: a["Value"]
            for a in c.elbv2.describe_load_balancer_attributes(LoadBalancerArn=balancer)["Attributes"]
        }
        assert attributes["deletion_protection.enabled"] == "true"

    with local_aws() as clients:
        check(clients)
    # Without it moto has no update for a load balancer: the update fails (HTTP 500), nothing changes.
    with local_aws(without=("load_balancer_attributes_from_templates",)) as clients, pytest.raises(Exception):  # noqa: B017
        check(clients)


def test_a_load_balancer_with_deletion_protection_cannot_be_deleted() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create", protected_template())
        balancer, _ = _balancer(c)
        assert error_of(lambda: c.elbv2.delete_load_balancer(LoadBalancerArn=balancer)) == (
            "OperationNotPermitted",
            f"Load balancer '{balancer}' cannot be deleted because deletion protection is enabled",
        )
        c.elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=balancer, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}]
        )
        c.elbv2.delete_load_balancer(LoadBalancerArn=balancer)
        assert c.elbv2.describe_load_balancers()["LoadBalancers"] == []

    shows_gap_without("load_balancer_deletion_protection", check)
