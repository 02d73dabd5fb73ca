"""Deleting the service stack deletes its network (routes, route tables, NAT gateway, Elastic IP,
internet gateway) and so its VPC, as CloudFormation does; moto 5.2.5 keeps them and the VPC's delete
fails. The stack is the committed service template, its load balancer's deletion protection lifted
first (as `pipeline destroy` does)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions

ROOT = Path(__file__).resolve().parents[2]
NAME = "stack_deletion_deletes_network_resources"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-classifier@sha256:" + "1" * 64


def _delete_service_stack(without: tuple[str, ...]) -> tuple[str, dict[str, int]]:
    with LocalAWS(extensions=all_extensions(without=without)) as aws:

        def client(service: str) -> Any:
            return boto3.client(
                service,
                endpoint_url=aws.endpoint_url,
                region_name=aws.region,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )

        cf, ec2, elbv2 = client("cloudformation"), client("ec2"), client("elbv2")
        cf.create_stack(
            StackName="iris-classifier-registry", TemplateBody=(ROOT / "cloudformation" / "registry.yaml").read_text()
        )
        vpcs = len(ec2.describe_vpcs()["Vpcs"])
        cf.create_stack(
            StackName="svc",
            TemplateBody=(ROOT / "cloudformation" / "service-staging.yaml").read_text(),
            Parameters=[
                {"ParameterKey": "ImageUri", "ParameterValue": IMAGE},
                {"ParameterKey": "Version", "ParameterValue": "1.0.0"},
            ],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
        )
        for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
            elbv2.modify_load_balancer_attributes(
                LoadBalancerArn=balancer["LoadBalancerArn"],
                Attributes=[{"Key": "deletion_protection.enabled", "Value": "false"}],
            )
        cf.delete_stack(StackName="svc")
        left = [s["StackStatus"] for s in cf.describe_stacks()["Stacks"] if s["StackName"] == "svc"]
        network = {
            "vpcs": len(ec2.describe_vpcs()["Vpcs"]) - vpcs,
            "internet gateways": len(ec2.describe_internet_gateways()["InternetGateways"]),
            "addresses": len(ec2.describe_addresses()["Addresses"]),
            "nat gateways": len(
                [n for n in ec2.describe_nat_gateways()["NatGateways"] if n["State"] not in ("deleting", "deleted")]
            ),
        }
        return (left[0] if left else "DELETE_COMPLETE"), network


def test_the_stack_deletes_its_network_and_vpc() -> None:
    status, network = _delete_service_stack(())
    assert status == "DELETE_COMPLETE"
    assert network == {"vpcs": 0, "internet gateways": 0, "addresses": 0, "nat gateways": 0}


def test_the_gap_without_it() -> None:
    status, network = _delete_service_stack((NAME,))
    assert status == "DELETE_FAILED"
    assert network["vpcs"] == 1 and network["internet gateways"] == 1
