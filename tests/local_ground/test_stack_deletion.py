"""A stack whose export another stack imports, or whose resource cannot be deleted, stays: DELETE_FAILED."""

from __future__ import annotations

import json

import pytest

from tests.local_ground.moto_stack import IMAGE_1, STACK, Clients, shows_gap_without
from tests.local_ground.test_load_balancers import protected_template

NAME = "stack_deletion_can_fail"
EXPORTER = {
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}},
    "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}, "Export": {"Name": "shared-queue"}}},
}
IMPORTER = {
    "Resources": {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::ImportValue": "shared-queue"}}}
    }
}


def test_a_stack_whose_export_is_in_use_cannot_be_deleted() -> None:
    def check(c: Clients) -> None:
        c.cfn.create_stack(StackName="exporter", TemplateBody=json.dumps(EXPORTER))
        c.cfn.create_stack(StackName="importer", TemplateBody=json.dumps(IMPORTER))
        c.cfn.delete_stack(StackName="exporter")
        stack = c.cfn.describe_stacks(StackName="exporter")["Stacks"][0]
        assert stack["StackStatus"] == "DELETE_FAILED"
        events = c.cfn.describe_stack_events(StackName="exporter")["StackEvents"]
        assert events[0]["ResourceStatusReason"] == "Export shared-queue cannot be deleted as it is in use by importer"
        assert [e["Name"] for e in c.cfn.list_exports()["Exports"]] == ["shared-queue"]
        c.cfn.delete_stack(StackName="importer")
        c.cfn.delete_stack(StackName="exporter")  # no importer left
        assert c.cfn.list_exports()["Exports"] == []

    shows_gap_without(NAME, check)


@pytest.mark.filterwarnings("ignore:Exception\\(DeletionProtectionRefused\\)")  # moto's 500 in the gap run
def test_a_stack_with_a_protected_load_balancer_cannot_be_deleted() -> None:
    def check(c: Clients) -> None:
        c.deploy("CREATE", IMAGE_1, "create", protected_template())
        c.cfn.delete_stack(StackName=STACK)
        stack = c.stack()
        assert stack["StackStatus"] == "DELETE_FAILED"
        events = c.cfn.describe_stack_events(StackName=STACK)["StackEvents"]
        assert "deletion protection is enabled" in events[0]["ResourceStatusReason"]
        assert c.elbv2.describe_load_balancers()["LoadBalancers"]  # still there

    shows_gap_without(NAME, check)


def test_an_update_changing_an_export_in_use_rolls_back() -> None:
    renamed = {
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {}}, "Other": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"QueueUrl": {"Value": {"Ref": "Other"}, "Export": {"Name": "shared-queue"}}},
    }

    def check(c: Clients) -> None:
        c.cfn.create_change_set(
            StackName="exporter", ChangeSetName="create", ChangeSetType="CREATE", TemplateBody=json.dumps(EXPORTER)
        )
        c.cfn.execute_change_set(StackName="exporter", ChangeSetName="create")
        c.cfn.create_stack(StackName="importer", TemplateBody=json.dumps(IMPORTER))
        before = c.cfn.list_exports()["Exports"][0]["Value"]
        c.cfn.create_change_set(
            StackName="exporter", ChangeSetName="update", ChangeSetType="UPDATE", TemplateBody=json.dumps(renamed)
        )
        c.cfn.execute_change_set(StackName="exporter", ChangeSetName="update")
        assert c.cfn.describe_stacks(StackName="exporter")["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
        events = c.cfn.describe_stack_events(StackName="exporter")["StackEvents"]
        reasons = [
            e.get("ResourceStatusReason") for e in events if e["ResourceStatus"] == "UPDATE_ROLLBACK_IN_PROGRESS"
        ]
        assert reasons == ["Export shared-queue cannot be updated as it is in use by importer"]
        assert c.cfn.list_exports()["Exports"][0]["Value"] == before

    shows_gap_without("exports_in_use_cannot_change", check)
