"""DescribeChangeSet answers a large change set in pages with a NextToken, as CloudFormation does."""

from __future__ import annotations

import json

from tests.local_ground.test_moto_extensions import IMAGE_1, STACK, Clients, service_template, shows_gap_without

NAME = "change_sets_described_in_pages"


def test_a_large_change_set_is_described_in_pages() -> None:
    def check(c: Clients) -> None:
        c.cfn.create_change_set(
            StackName=STACK,
            ChangeSetName="big",
            ChangeSetType="CREATE",
            TemplateBody=json.dumps(service_template()),
            Parameters=[{"ParameterKey": "Image", "ParameterValue": IMAGE_1}],
        )
        pages, token = [], None
        while True:
            extra = {"NextToken": token} if token else {}
            answer = c.cfn.describe_change_set(StackName=STACK, ChangeSetName="big", **extra)
            pages.append([ch["ResourceChange"]["LogicalResourceId"] for ch in answer["Changes"]])
            assert answer["ChangeSetName"] == "big" and answer["StackName"] == STACK
            token = answer.get("NextToken")
            if not token:
                break
        assert len(pages) > 1 and all(len(page) == 10 for page in pages[:-1])
        assert sorted(sum(pages, [])) == sorted(service_template()["Resources"])

    shows_gap_without(NAME, check)
