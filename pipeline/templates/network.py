"""The network of a service stack: a VPC created for it, or existing ids from the settings."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from awacs.aws import Allow, PolicyDocument, Principal, Statement
from awacs.logs import CreateLogStream, DescribeLogGroups, DescribeLogStreams, PutLogEvents
from awacs.sts import AssumeRole
from troposphere import GetAtt, GetAZs, Ref, Select, Tags, Template
from troposphere.ec2 import (
    EIP,
    VPC,
    FlowLog,
    InternetGateway,
    NatGateway,
    Route,
    RouteTable,
    Subnet,
    SubnetRouteTableAssociation,
    VPCGatewayAttachment,
)
from troposphere.iam import Policy, Role
from troposphere.logs import LogGroup

from pipeline.config import Environment

ZONES = 2


@dataclass(frozen=True)
class NetworkRefs:
    vpc_id: Any
    public_subnets: list[Any]
    private_subnets: list[Any]


def add_network(t: Template, env: Environment, log_key: Any, boundary: Any) -> NetworkRefs:
    if not env.network.creates_vpc:
        n = env.network
        return NetworkRefs(n.vpc_id, list(n.public_subnet_ids), list(n.private_subnet_ids))
    return _create_vpc(t, env, log_key, boundary)


def _create_vpc(t: Template, env: Environment, log_key: Any, boundary: Any) -> NetworkRefs:
    cidr = env.network.vpc_cidr or "10.0.0.0/16"
    # Four equal subnets, two public and two private, computed here so the template reads plainly.
    blocks = [str(net) for net in ipaddress.ip_network(cidr).subnets(prefixlen_diff=2)]
    vpc = t.add_resource(
        VPC("Vpc", CidrBlock=cidr, EnableDnsHostnames=True, EnableDnsSupport=True, Tags=Tags(Name=f"{env.name}-vpc"))
    )
    igw = t.add_resource(InternetGateway("InternetGateway"))
    attach = t.add_resource(VPCGatewayAttachment("GatewayAttachment", VpcId=Ref(vpc), InternetGatewayId=Ref(igw)))
    public_rt = t.add_resource(RouteTable("PublicRouteTable", VpcId=Ref(vpc)))
    t.add_resource(
        Route(
            "PublicDefaultRoute",
            RouteTableId=Ref(public_rt),
            DestinationCidrBlock="0.0.0.0/0",
            GatewayId=Ref(igw),
            DependsOn=attach,
        )
    )
    public, private = [], []
    for i in range(ZONES):
        zone = Select(i, GetAZs(""))
        pub = t.add_resource(
            Subnet(
                f"PublicSubnet{i + 1}",
                VpcId=Ref(vpc),
                CidrBlock=blocks[i],
                AvailabilityZone=zone,
                MapPublicIpOnLaunch=False,
            )
        )
        t.add_resource(
            SubnetRouteTableAssociation(f"PublicSubnet{i + 1}Routes", SubnetId=Ref(pub), RouteTableId=Ref(public_rt))
        )
        public.append(Ref(pub))
    eip = t.add_resource(EIP("NatAddress", Domain="vpc", DependsOn=attach))
    nat = t.add_resource(NatGateway("NatGateway", AllocationId=GetAtt(eip, "AllocationId"), SubnetId=public[0]))
    private_rt = t.add_resource(RouteTable("PrivateRouteTable", VpcId=Ref(vpc)))
    t.add_resource(
        Route(
            "PrivateDefaultRoute", RouteTableId=Ref(private_rt), DestinationCidrBlock="0.0.0.0/0", NatGatewayId=Ref(nat)
        )
    )
    for i in range(ZONES):
        sub = t.add_resource(
            Subnet(
                f"PrivateSubnet{i + 1}",
                VpcId=Ref(vpc),
                CidrBlock=blocks[ZONES + i],
                AvailabilityZone=Select(i, GetAZs("")),
                MapPublicIpOnLaunch=False,
            )
        )
        t.add_resource(
            SubnetRouteTableAssociation(f"PrivateSubnet{i + 1}Routes", SubnetId=Ref(sub), RouteTableId=Ref(private_rt))
        )
        private.append(Ref(sub))
    _add_flow_logs(t, vpc, env, log_key, boundary)
    return NetworkRefs(Ref(vpc), public, private)


def _add_flow_logs(t: Template, vpc: VPC, env: Environment, log_key: Any, boundary: Any) -> None:
    """Rejected and accepted traffic of the VPC, for incident review."""
    group = t.add_resource(
        LogGroup(
            "FlowLogGroup",
            RetentionInDays=env.service.log_retention_days,
            KmsKeyId=log_key,
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    role = t.add_resource(
        Role(
            "FlowLogRole",
            PermissionsBoundary=boundary,  # the stack's roles carry the boundary its execution role requires
            AssumeRolePolicyDocument=PolicyDocument(
                Version="2012-10-17",
                Statement=[
                    Statement(
                        Effect=Allow, Principal=Principal("Service", "vpc-flow-logs.amazonaws.com"), Action=[AssumeRole]
                    )
                ],
            ),
            Policies=[
                Policy(
                    PolicyName="write-flow-logs",
                    PolicyDocument=PolicyDocument(
                        Version="2012-10-17",
                        Statement=[
                            Statement(
                                Effect=Allow,
                                Action=[CreateLogStream, PutLogEvents, DescribeLogGroups, DescribeLogStreams],
                                Resource=[GetAtt(group, "Arn")],
                            )
                        ],
                    ),
                )
            ],
        )
    )
    t.add_resource(
        FlowLog(
            "FlowLog",
            ResourceId=Ref(vpc),
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="cloud-watch-logs",
            LogGroupName=Ref(group),
            DeliverLogsPermissionArn=GetAtt(role, "Arn"),
        )
    )
