"""change_set_stacks_import_values: Fn::ImportValue in a stack created through a change set."""

from __future__ import annotations

import json

import boto3
import pytest

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions

EXPORTER = {
    "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
    "Outputs": {"Url": {"Value": {"Ref": "Queue"}, "Export": {"Name": "shared-queue-url"}}},
}
IMPORTER = {
    "Resources": {
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::ImportValue": "shared-queue-url"}}}
    }
}


def create_through_change_set(cf: object, name: str, template: dict) -> None:
    made = cf.create_change_set(
        StackName=name, ChangeSetName="c1", TemplateBody=json.dumps(template), ChangeSetType="CREATE"
    )  # type: ignore[attr-defined]
    cf.execute_change_set(ChangeSetName=made["Id"], StackName=name)  # type: ignore[attr-defined]


@pytest.mark.parametrize("with_extension", [True, False], ids=["with", "without"])
def test_import_value_resolves(with_extension: bool) -> None:
    without = () if with_extension else ("change_set_stacks_import_values",)
    with LocalAWS(extensions=all_extensions(without=without)) as aws:
        cf = boto3.client(
            "cloudformation",
            endpoint_url=aws.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        create_through_change_set(cf, "exporter", EXPORTER)
        if with_extension:
            create_through_change_set(cf, "importer", IMPORTER)
            assert cf.describe_stacks(StackName="importer")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        else:
            with pytest.raises(cf.exceptions.ClientError, match="No export named shared-queue-url"):
                create_through_change_set(cf, "importer", IMPORTER)
