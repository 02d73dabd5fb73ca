from __future__ import annotations

import json

from pipeline import config
from pipeline.templates.ci_access import build_ci_access
from pipeline.templates.registry import build_registry


def test_repository_is_immutable_and_scanned(settings: config.Settings) -> None:
    repo = build_registry(settings).to_dict()["Resources"]["Repository"]["Properties"]
    assert repo["ImageTagMutability"] == "IMMUTABLE"
    assert repo["ImageScanningConfiguration"] == {"ScanOnPush": True}
    rules = json.loads(repo["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "any"]


def _trust_subjects(template: dict, role: str) -> list[str]:
    statement = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Condition"]["StringEquals"] == {"token.actions.githubusercontent.com:aud": "sts.amazonaws.com"}
    return statement["Condition"]["StringLike"]["token.actions.githubusercontent.com:sub"]


def test_deploy_role_trusts_tags_and_environments_only(settings: config.Settings) -> None:
    t = build_ci_access(settings).to_dict()
    assert _trust_subjects(t, "DeployRole") == [
        "repo:acme/iris-classifier:ref:refs/tags/v*",
        "repo:acme/iris-classifier:environment:staging",
        "repo:acme/iris-classifier:environment:production",
    ]
    assert _trust_subjects(t, "DiffRole") == ["repo:acme/iris-classifier:pull_request"]


def test_deploy_role_names_no_wildcard_action(settings: config.Settings) -> None:
    t = build_ci_access(settings).to_dict()
    for role in ("DeployRole", "DiffRole"):
        for policy in t["Resources"][role]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                for action in statement["Action"]:
                    assert "*" not in action, f"{role} allows {action}"


def test_diff_role_cannot_execute(settings: config.Settings) -> None:
    t = build_ci_access(settings).to_dict()
    actions = {
        a
        for p in t["Resources"]["DiffRole"]["Properties"]["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        for a in s["Action"]
    }
    assert "cloudformation:ExecuteChangeSet" not in actions
