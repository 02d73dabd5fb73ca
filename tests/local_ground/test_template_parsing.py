"""templates_parsed_once changes no behaviour: moto gets the dict it would parse itself, once per text."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from local_ground.moto_extensions import template_parsing
from local_ground.moto_extensions.template_parsing import moto_parse, parsed
from tests.local_ground.moto_stack import IMAGE_1, IMAGE_2, Clients, local_aws, service_template


def _yaml_loads(monkeypatch: pytest.MonkeyPatch, text: str) -> list[str]:
    """Count yaml.load calls on `text`, moto's and the ground's alike (both call the module's function)."""
    seen: list[str] = []
    original = yaml.load

    def counting(stream: Any, Loader: Any) -> Any:  # PyYAML's own keyword
        if stream == text:
            seen.append(stream)
        return original(stream, Loader=Loader)  # nosec B506 # the test's own template

    monkeypatch.setattr(yaml, "load", counting)
    return seen


def _release_twice(c: Clients) -> dict[str, Any]:
    """Create, then update to a new image, each deployment completed as ECS would."""
    for kind, image in (("CREATE", IMAGE_1), ("UPDATE", IMAGE_2)):
        c.deploy(kind, image, kind.lower())
        cluster, service = c.cluster_and_service()
        c.aws.complete_deployment(cluster, service)
        c.ecs.get_waiter("services_stable").wait(cluster=cluster, services=[service], WaiterConfig={"Delay": 0})
    return c.stack()


@pytest.mark.parametrize("installed", [True, False], ids=["with", "without"])
def test_two_change_sets_of_one_template_parse_it_once(monkeypatch: pytest.MonkeyPatch, installed: bool) -> None:
    template_parsing._parsed.clear()
    seen = _yaml_loads(monkeypatch, json.dumps(service_template()))
    with local_aws(without=() if installed else ("templates_parsed_once",)) as c:
        stack = _release_twice(c)
        assert stack["StackStatus"] == "UPDATE_COMPLETE"
        assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["Image"] == IMAGE_2
        assert {o["OutputKey"] for o in stack["Outputs"]} == {"ClusterName", "ServiceName", "Url"}
    if installed:
        assert len(seen) == 1
    else:
        assert len(seen) > 4  # moto parses the same text again for each look at the stack or change set


def test_each_caller_gets_its_own_copy_and_errors_are_not_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Ref Name\n"
    first = parsed(text)
    assert (
        first
        == moto_parse(text)
        == {"Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "Name"}}}}}
    )
    first["Resources"].clear()  # moto may change the dict it is given
    assert parsed(text)["Resources"]["Queue"]["Properties"] == {"QueueName": {"Ref": "Name"}}
    broken = "Resources: [unclosed"
    seen = _yaml_loads(monkeypatch, broken)
    for _ in range(2):
        with pytest.raises(json.JSONDecodeError):  # moto's own fallback: not YAML, so JSON, which fails too
            parsed(broken)
    assert len(seen) == 2
