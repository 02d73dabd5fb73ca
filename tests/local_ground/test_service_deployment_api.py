"""ecs_service_deployment_api: ListServiceDeployments, DescribeServiceDeployments and StopServiceDeployment
over the wire (boto3 parses every answer against the ECS API model), following the deployment model."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.local_ground.moto_stack import IMAGE_1, IMAGE_2, Clients, local_aws

ARN_PREFIX = "arn:aws:ecs:us-east-1:123456789012:service-deployment/"


def listed(c: Clients, **filters: Any) -> list[dict[str, Any]]:
    cluster, service = c.cluster_and_service()
    return c.ecs.list_service_deployments(cluster=cluster, service=service, **filters)["serviceDeployments"]


def described(c: Clients, arn: str) -> dict[str, Any]:
    return c.ecs.describe_service_deployments(serviceDeploymentArns=[arn])["serviceDeployments"][0]


def error(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response["Error"]["Code"], raised.value.response["Error"]["Message"]


def released_then_updating(c: Clients) -> tuple[str, str]:
    """IMAGE_1 live (its deployment completed), then a stack update to IMAGE_2 whose deployment rolls."""
    c.deploy("CREATE", IMAGE_1, "create")
    cluster, service = c.cluster_and_service()
    c.aws.complete_deployment(cluster, service)
    c.deploy("UPDATE", IMAGE_2, "update")
    return cluster, service


def test_each_deployment_is_a_service_deployment_newest_first() -> None:
    with local_aws() as c:
        c.deploy("CREATE", IMAGE_1, "create")
        cluster, service = c.cluster_and_service()
        [first] = listed(c)
        name = service.split("/")[-1]  # the stack resource's physical id is the service ARN
        assert first["serviceDeploymentArn"].startswith(f"{ARN_PREFIX}{cluster}/{name}/")
        assert (first["status"], first["serviceArn"]) == ("IN_PROGRESS", service)
        assert first["clusterArn"] == f"arn:aws:ecs:us-east-1:123456789012:cluster/{cluster}"
        c.aws.complete_deployment(cluster, service)
        assert [d["status"] for d in listed(c)] == ["SUCCESSFUL"]
        assert "finishedAt" in listed(c)[0]

        c.deploy("UPDATE", IMAGE_2, "update")
        second, again = listed(c)
        assert (second["status"], again["serviceDeploymentArn"]) == ("IN_PROGRESS", first["serviceDeploymentArn"])
        detail = described(c, second["serviceDeploymentArn"])
        assert [s["arn"] for s in detail["sourceServiceRevisions"]] == [first["targetServiceRevisionArn"]]
        assert detail["targetServiceRevision"]["arn"] == second["targetServiceRevisionArn"]
        assert detail["targetServiceRevision"]["requestedTaskCount"] == 2
        assert detail["deploymentCircuitBreaker"]["status"] == "MONITORING"
        assert [d["status"] for d in listed(c, status=["SUCCESSFUL"])] == ["SUCCESSFUL"]

        page = c.ecs.list_service_deployments(cluster=cluster, service=service, maxResults=1)
        assert len(page["serviceDeployments"]) == 1 and page["nextToken"]
        rest = c.ecs.list_service_deployments(cluster=cluster, service=service, nextToken=page["nextToken"])
        assert rest["serviceDeployments"] == [again] and "nextToken" not in rest


def test_the_apis_are_missing_without_the_extension() -> None:
    # The traffic strategies' extension answers the same APIs for its own deployments: both go.
    with local_aws(without=("ecs_service_deployment_api", "ecs_traffic_service_deployments")) as c:
        c.deploy("CREATE", IMAGE_1, "create")
        with pytest.raises((ClientError, NotImplementedError)):
            listed(c)


def test_stop_rolls_the_deployment_back_and_cloudformation_follows() -> None:
    with local_aws() as c:
        cluster, service = released_then_updating(c)
        arn = listed(c, status=["IN_PROGRESS"])[0]["serviceDeploymentArn"]
        assert (
            c.ecs.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")["serviceDeploymentArn"] == arn
        )
        # A second stop while the rollback runs "continues the rollback operation" and answers the ARN.
        assert c.ecs.stop_service_deployment(serviceDeploymentArn=arn)["serviceDeploymentArn"] == arn
        detail = described(c, arn)
        assert detail["status"] == "ROLLBACK_IN_PROGRESS"
        assert detail["rollback"]["serviceRevisionArn"] == detail["sourceServiceRevisions"][0]["arn"]
        assert detail["statusReason"] == "Service deployment rolled back because of a stop request."
        # ECS runs the previous revision again; the stopped one is FAILED, as after any rollback.
        states = [(d["taskDefinition"].split("/")[-1], d["rolloutState"]) for d in c.service()["deployments"]]
        assert states == [("model:1", "IN_PROGRESS"), ("model:2", "FAILED")]
        c.aws.complete_deployment(cluster, service)
        assert described(c, arn)["status"] == "ROLLBACK_SUCCESSFUL"
        assert c.stack()["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", "the update waited on ECS, which rolled back"
        params = {p["ParameterKey"]: p["ParameterValue"] for p in c.stack()["Parameters"]}
        assert params["Image"] == IMAGE_1
        code, message = error(lambda: c.ecs.stop_service_deployment(serviceDeploymentArn=arn))
        assert code == "ConflictException" and "ROLLBACK_SUCCESSFUL" in message


def test_stop_refuses_what_aws_refuses() -> None:
    with local_aws() as c:
        c.deploy("CREATE", IMAGE_1, "create")
        [first] = listed(c)
        code, message = error(lambda: c.ecs.stop_service_deployment(serviceDeploymentArn=first["serviceDeploymentArn"]))
        assert code == "ConflictException" and "no previous service revision" in message
        missing = first["serviceDeploymentArn"][:-3] + "xyz"
        assert error(lambda: c.ecs.stop_service_deployment(serviceDeploymentArn=missing))[0] == (
            "ServiceDeploymentNotFoundException"
        )
        code, _ = error(
            lambda: c.ecs.stop_service_deployment(serviceDeploymentArn=first["serviceDeploymentArn"], stopType="ABORT")
        )
        assert code == "InvalidParameterException"
        answer = c.ecs.describe_service_deployments(serviceDeploymentArns=[missing])
        assert answer["serviceDeployments"] == [] and answer["failures"] == [{"arn": missing, "reason": "MISSING"}]
        assert error(lambda: c.ecs.describe_service_deployments(serviceDeploymentArns=[missing] * 21))[0] == (
            "InvalidParameterException"
        )
        cluster, _ = c.cluster_and_service()
        assert error(lambda: c.ecs.list_service_deployments(cluster=cluster, service="nope"))[0] == (
            "ServiceNotFoundException"
        )


def test_the_circuit_breaker_and_a_newer_deployment_end_a_service_deployment() -> None:
    with local_aws() as c:
        cluster, service = released_then_updating(c)
        failing = listed(c)[0]["serviceDeploymentArn"]
        c.aws.fail_deployment(cluster, service)
        detail = described(c, failing)
        assert (detail["status"], detail["deploymentCircuitBreaker"]["status"]) == ("ROLLBACK_IN_PROGRESS", "TRIGGERED")
        c.aws.complete_deployment(cluster, service)
        assert described(c, failing)["status"] == "ROLLBACK_SUCCESSFUL"
        assert len(listed(c)) == 2, "the rollback is part of the failed service deployment, not a new one"

        c.ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
        replaced = listed(c)[0]["serviceDeploymentArn"]
        c.ecs.update_service(cluster=cluster, service=service, forceNewDeployment=True)
        assert described(c, replaced)["status"] == "STOPPED"
        assert [d["status"] for d in listed(c)][:2] == ["IN_PROGRESS", "STOPPED"]
