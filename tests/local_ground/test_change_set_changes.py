"""Change sets list the resources whose resolved properties change, parameters included, with
Replacement, as CloudFormation does; so `pipeline diff` of a new digest shows what AWS would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions
from pipeline import config
from pipeline.clock import FakeClock
from pipeline.steps.deploy import Deployer
from pipeline.templates import names
from tests.local_ground.moto_stack import (
    IMAGE_1,
    IMAGE_2,
    STACK,
    Clients,
    service_template,
    shows_gap_without,
)

NAME = "change_sets_list_resolved_changes"


def _changes(c: Clients, image: str, template: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    c.cfn.create_change_set(
        StackName=STACK,
        ChangeSetName="preview",
        ChangeSetType="UPDATE",
        TemplateBody=json.dumps(template or service_template()),
        Parameters=[{"ParameterKey": "Image", "ParameterValue": image}],
    )
    changes = c.cfn.describe_change_set(StackName=STACK, ChangeSetName="preview")["Changes"]
    c.cfn.delete_change_set(StackName=STACK, ChangeSetName="preview")
    return [change["ResourceChange"] for change in changes]


def test_a_new_image_replaces_the_task_definition_and_modifies_the_service() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        c.aws.complete_deployment(*c.cluster_and_service())
        changes = _changes(c, IMAGE_2)
        summary = [(r["Action"], r["LogicalResourceId"], r.get("Replacement")) for r in changes]
        assert summary == [("Modify", "TaskDefinition", "True"), ("Modify", "Service", "False")]
        task_definition, service = changes
        assert task_definition["PhysicalResourceId"].endswith(":task-definition/model:1")
        assert task_definition["Details"] == [
            {
                "Target": {"Attribute": "Properties", "Name": "ContainerDefinitions", "RequiresRecreation": "Always"},
                "Evaluation": "Static",
                "ChangeSource": "ParameterReference",
                "CausingEntity": "Image",
            }
        ]
        assert service["Details"][0]["ChangeSource"] == "ResourceReference"
        assert service["Details"][0]["CausingEntity"] == "TaskDefinition"

    shows_gap_without(NAME, check)


def test_a_direct_change_is_listed_with_its_replacement() -> None:
    template = service_template()
    template["Resources"]["TargetGroup"]["Properties"]["HealthCheckPath"] = "/ready"  # in place
    template["Resources"]["TaskDefinition"]["Properties"]["Memory"] = "1024"  # replaces

    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create")
        c.aws.complete_deployment(*c.cluster_and_service())
        changes = {r["LogicalResourceId"]: r for r in _changes(c, IMAGE_1, template)}
        assert changes["TargetGroup"]["Replacement"] == "False"
        assert changes["TaskDefinition"]["Replacement"] == "True"
        assert changes["Service"]["Replacement"] == "False"
        assert set(changes) == {"TargetGroup", "TaskDefinition", "Service"}

    shows_gap_without(NAME, check)


@contextmanager
def _local_aws(without: tuple[str, ...]) -> Iterator[LocalAWS]:
    with LocalAWS(extensions=all_extensions(without=without)) as aws:
        yield aws


def _preview_lines(settings: config.Settings, without: tuple[str, ...]) -> list[str]:
    """What `pipeline diff --env staging --version` prints for a new digest of the committed template."""
    with _local_aws(without) as aws:
        env = aws.environ()
        cf = boto3.client(
            "cloudformation",
            endpoint_url=env["AWS_ENDPOINT_URL"],
            region_name=env["AWS_REGION"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        root = settings.root / "cloudformation"
        registry = (root / "registry.yaml").read_text()
        service = (root / "service-staging.yaml").read_text()
        deployer = Deployer(cf, FakeClock(), echo=lambda _line: None, poll=0.0)
        deployer.deploy(names.registry_stack(settings), registry, {})
        uri = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{settings.app.name}@sha256:"
        stack = names.service_stack(settings, "staging")
        deployer.deploy(stack, service, {"ImageUri": uri + "1" * 64, "Version": "1.0.0"})
        lines: list[str] = []
        Deployer(cf, FakeClock(), echo=lines.append, poll=0.0).deploy(
            stack, service, {"ImageUri": uri + "2" * 64, "Version": "1.1.0"}, execute=False
        )
        return lines


def test_pipeline_diff_of_a_new_digest_lists_the_task_definition_replaced_and_the_service_modified(
    settings: config.Settings,
) -> None:
    expected = [
        "  Modify  TaskDefinition [AWS::ECS::TaskDefinition] (replacement)",
        "  Modify  Service [AWS::ECS::Service]",
    ]
    lines = _preview_lines(settings, ())
    assert [line for line in lines if line.startswith("  Modify")] == expected, lines
    without = _preview_lines(settings, (NAME,))
    assert [line for line in without if line.startswith("  Modify")] != expected
