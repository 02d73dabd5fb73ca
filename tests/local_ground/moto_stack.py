"""The service stack the moto-extension tests deploy (as the pipeline does: a change set, then execute),
the clients they read it with, and `shows_gap_without`: each extension's test also shows the gap."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions

STACK = "model-svc"
IMAGE_1 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/model@sha256:" + "1" * 64
IMAGE_2 = "123456789012.dkr.ecr.us-east-1.amazonaws.com/model@sha256:" + "2" * 64


def service_template() -> dict[str, Any]:
    """VPC, ALB + target group, cluster, Fargate task definition, service, target tracking."""
    subnets = [{"Ref": "SubnetA"}, {"Ref": "SubnetB"}]
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {"Image": {"Type": "String"}, "DesiredCount": {"Type": "Number", "Default": 2}},
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}},
            "SubnetA": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.0.0/24", "AvailabilityZone": "us-east-1a"},
            },
            "SubnetB": {
                "Type": "AWS::EC2::Subnet",
                "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.0.1.0/24", "AvailabilityZone": "us-east-1b"},
            },
            "TaskSg": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": "tasks", "VpcId": {"Ref": "Vpc"}},
            },
            "Alb": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"Subnets": subnets, "SecurityGroups": [{"Ref": "TaskSg"}]},
            },
            "TargetGroup": {
                "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Properties": {"Port": 8080, "Protocol": "HTTP", "TargetType": "ip", "VpcId": {"Ref": "Vpc"}},
            },
            "Listener": {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Properties": {
                    "LoadBalancerArn": {"Ref": "Alb"},
                    "Port": 80,
                    "Protocol": "HTTP",
                    "DefaultActions": [{"Type": "forward", "TargetGroupArn": {"Ref": "TargetGroup"}}],
                },
            },
            "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {}},
            "TaskDefinition": {
                "Type": "AWS::ECS::TaskDefinition",
                "Properties": {
                    "Family": "model",
                    "Cpu": "256",
                    "Memory": "512",
                    "NetworkMode": "awsvpc",
                    "RequiresCompatibilities": ["FARGATE"],
                    "ContainerDefinitions": [
                        {
                            "Name": "model",
                            "Image": {"Ref": "Image"},
                            "Essential": True,
                            "PortMappings": [{"ContainerPort": 8080}],
                        }
                    ],
                },
            },
            "Service": {
                "Type": "AWS::ECS::Service",
                "DependsOn": "Listener",
                "Properties": {
                    "Cluster": {"Ref": "Cluster"},
                    "TaskDefinition": {"Ref": "TaskDefinition"},
                    "DesiredCount": {"Ref": "DesiredCount"},
                    "LaunchType": "FARGATE",
                    "HealthCheckGracePeriodSeconds": 30,
                    "LoadBalancers": [
                        {"ContainerName": "model", "ContainerPort": 8080, "TargetGroupArn": {"Ref": "TargetGroup"}}
                    ],
                    "DeploymentConfiguration": {
                        "MinimumHealthyPercent": 100,
                        "MaximumPercent": 200,
                        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": True},
                        "Alarms": {"AlarmNames": ["model-5xx"], "Enable": True, "Rollback": True},
                    },
                    "NetworkConfiguration": {
                        "AwsvpcConfiguration": {
                            "AssignPublicIp": "ENABLED",
                            "Subnets": subnets,
                            "SecurityGroups": [{"Ref": "TaskSg"}],
                        }
                    },
                },
            },
            "ScalableTarget": {
                "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
                "Properties": {
                    "MinCapacity": 1,
                    "MaxCapacity": 4,
                    "ServiceNamespace": "ecs",
                    "ScalableDimension": "ecs:service:DesiredCount",
                    "ResourceId": {
                        "Fn::Join": ["/", ["service", {"Ref": "Cluster"}, {"Fn::GetAtt": ["Service", "Name"]}]]
                    },
                },
            },
            "CpuPolicy": {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
                "Properties": {
                    "PolicyName": "cpu",
                    "PolicyType": "TargetTrackingScaling",
                    "ScalingTargetId": {"Ref": "ScalableTarget"},
                    "TargetTrackingScalingPolicyConfiguration": {
                        "TargetValue": 60.0,
                        "ScaleInCooldown": 60,
                        "ScaleOutCooldown": 30,
                        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                    },
                },
            },
            "RequestsPolicy": {
                "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
                "Properties": {
                    "PolicyName": "requests",
                    "PolicyType": "TargetTrackingScaling",
                    "ScalingTargetId": {"Ref": "ScalableTarget"},
                    "TargetTrackingScalingPolicyConfiguration": {
                        "TargetValue": 100.0,
                        "PredefinedMetricSpecification": {
                            "PredefinedMetricType": "ALBRequestCountPerTarget",
                            "ResourceLabel": {
                                "Fn::Join": [
                                    "/",
                                    [
                                        {"Fn::GetAtt": ["Alb", "LoadBalancerFullName"]},
                                        {"Fn::GetAtt": ["TargetGroup", "TargetGroupFullName"]},
                                    ],
                                ]
                            },
                        },
                    },
                },
            },
        },
        "Outputs": {
            "ClusterName": {"Value": {"Ref": "Cluster"}},
            "ServiceName": {"Value": {"Fn::GetAtt": ["Service", "Name"]}},
            "Url": {"Value": {"Fn::Join": ["", ["http://", {"Fn::GetAtt": ["Alb", "DNSName"]}]]}},
        },
    }


@dataclass
class Clients:
    aws: LocalAWS
    cfn: Any
    ecs: Any
    autoscaling: Any
    elbv2: Any

    @classmethod
    def of(cls, aws: LocalAWS, config: Config | None = None) -> Clients:
        env = aws.environ()
        kw = {
            "endpoint_url": env["AWS_ENDPOINT_URL"],
            "region_name": env["AWS_REGION"],
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "config": config,
        }
        return cls(
            aws,
            boto3.client("cloudformation", **kw),
            boto3.client("ecs", **kw),
            boto3.client("application-autoscaling", **kw),
            boto3.client("elbv2", **kw),
        )

    def deploy(self, kind: str, image: str, name: str, template: dict[str, Any] | None = None) -> None:
        self.cfn.create_change_set(
            StackName=STACK,
            ChangeSetName=name,
            ChangeSetType=kind,
            TemplateBody=json.dumps(template or service_template()),
            Parameters=[{"ParameterKey": "Image", "ParameterValue": image}],
        )
        self.cfn.get_waiter("change_set_create_complete").wait(
            StackName=STACK, ChangeSetName=name, WaiterConfig={"Delay": 0}
        )
        self.cfn.execute_change_set(StackName=STACK, ChangeSetName=name)

    def stack(self) -> dict[str, Any]:
        return self.cfn.describe_stacks(StackName=STACK)["Stacks"][0]

    def cluster_and_service(self) -> tuple[str, str]:
        resources = self.cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        ids = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        return ids["Cluster"], ids["Service"]

    def service(self) -> dict[str, Any]:
        cluster, service = self.cluster_and_service()
        return self.ecs.describe_services(cluster=cluster, services=[service])["services"][0]


@contextmanager
def local_aws(without: tuple[str, ...] = ()) -> Iterator[Clients]:
    with LocalAWS(extensions=all_extensions(without=without)) as aws:
        yield Clients.of(aws)


def shows_gap_without(name: str, check: Callable[[Clients], None]) -> None:
    """The check passes with every extension, and fails with all but ``name``."""
    with local_aws() as clients:
        check(clients)
    with local_aws(without=(name,)) as clients, pytest.raises((AssertionError, ClientError, KeyError)):
        check(clients)
