"""Elastic Load Balancing calls `pipeline destroy` makes."""

from __future__ import annotations

from typing import Any

from pipeline.aws.clients import aws_call


def allow_deletion(elbv2: Any, load_balancer_arn: str) -> bool:
    """Turn the load balancer's deletion protection off; True when it was on."""
    with aws_call(f"read the attributes of load balancer {load_balancer_arn}"):
        attributes = elbv2.describe_load_balancer_attributes(LoadBalancerArn=load_balancer_arn)["Attributes"]
    if not any(a["Key"] == "deletion_protection.enabled" and a["Value"] == "true" for a in attributes):
        return False
    with aws_call(f"turn off deletion protection of load balancer {load_balancer_arn}"):
        elbv2.modify_load_balancer_attributes(
            LoadBalancerArn=load_balancer_arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}]
        )
    return True
