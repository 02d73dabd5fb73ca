"""stack_deletion_deletes_network_resources: deleting a stack deletes the network resources it created
(routes, route tables and their subnet associations, NAT gateways, Elastic IPs, internet gateway
attachments and gateways), so the VPC after them can be deleted too.

AWS: "DeleteStack: Deletes a specified stack ... all resources in the stack are deleted" (CloudFormation
API reference), each type through its delete handler (AWS::EC2::RouteTable, AWS::EC2::Route,
AWS::EC2::SubnetRouteTableAssociation, AWS::EC2::NatGateway, AWS::EC2::EIP,
AWS::EC2::VPCGatewayAttachment, AWS::EC2::InternetGateway); a resource still in use fails with
DependencyViolation and CloudFormation deletes it after what depends on it. moto 5.2.5 has no
CloudFormation delete for these types: they stay, and the VPC's delete fails ("has dependencies").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ec2.models.elastic_ip_addresses import ElasticAddress
from moto.ec2.models.internet_gateways import InternetGateway
from moto.ec2.models.nat_gateways import NatGateway
from moto.ec2.models.route_tables import Route, RouteTable
from moto.ec2.models.subnets import SubnetRouteTableAssociation
from moto.ec2.models.vpn_gateway import VPCGatewayAttachment

from ._base import Extension, Patch


def _ec2(account_id: str, region_name: str) -> Any:
    return ec2_backends[account_id][region_name]


class StackDeletionDeletesNetworkResources(Extension):
    name = "stack_deletion_deletes_network_resources"

    def patches(self) -> Iterable[Patch]:
        # moto calls `resource.delete(account_id, region)` when a stack deletes a resource.
        def route(resource: Route, account_id: str, region_name: str) -> None:
            ec2 = _ec2(account_id, region_name)
            if resource.route_table.id in ec2.route_tables and resource.id in resource.route_table.routes:
                ec2.delete_route(resource.route_table.id, resource.destination_cidr_block)

        def route_table(resource: RouteTable, account_id: str, region_name: str) -> None:
            ec2 = _ec2(account_id, region_name)
            if resource.id in ec2.route_tables:
                ec2.delete_route_table(resource.id)  # DependencyViolation while a subnet is associated

        def association(resource: SubnetRouteTableAssociation, account_id: str, region_name: str) -> None:
            ec2 = _ec2(account_id, region_name)
            ec2.subnet_associations.pop(f"{resource.route_table_id}:{resource.subnet_id}", None)
            table = ec2.route_tables.get(resource.route_table_id)
            for association_id, subnet_id in list(getattr(table, "_associations", {}).items()):
                if subnet_id == resource.subnet_id:
                    ec2.disassociate_route_table(association_id)

        def nat_gateway(resource: NatGateway, account_id: str, region_name: str) -> None:
            _ec2(account_id, region_name).delete_nat_gateway(resource.id)

        def address(resource: ElasticAddress, account_id: str, region_name: str) -> None:
            ec2 = _ec2(account_id, region_name)
            if resource in ec2.addresses:
                ec2.release_address(address=resource.public_ip)

        def attachment(resource: VPCGatewayAttachment, account_id: str, region_name: str) -> None:
            ec2 = _ec2(account_id, region_name)
            gateway = ec2.internet_gateways.get(resource.gateway_id)
            if gateway is not None and gateway.vpc is not None and gateway.vpc.id == resource.vpc_id:
                ec2.detach_internet_gateway(resource.gateway_id, resource.vpc_id)

        def internet_gateway(resource: InternetGateway, account_id: str, region_name: str) -> None:
            ec2 = _ec2(account_id, region_name)
            if resource.id in ec2.internet_gateways:
                ec2.delete_internet_gateway(resource.id)  # DependencyViolation while attached

        yield Route, "delete", route
        yield RouteTable, "delete", route_table
        yield SubnetRouteTableAssociation, "delete", association
        yield NatGateway, "delete", nat_gateway
        yield ElasticAddress, "delete", address
        yield VPCGatewayAttachment, "delete", attachment
        yield InternetGateway, "delete", internet_gateway
