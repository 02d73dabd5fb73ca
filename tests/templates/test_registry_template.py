from __future__ import annotations

import json

from pipeline import config
from pipeline.templates.registry import build_registry


def test_repository_is_immutable_and_scanned(settings: config.Settings) -> None:
    repo = build_registry(settings).to_dict()["Resources"]["Repository"]["Properties"]
    assert repo["ImageTagMutability"] == "IMMUTABLE"
    assert repo["ImageScanningConfiguration"] == {"ScanOnPush": True}
    rules = json.loads(repo["LifecyclePolicy"]["LifecyclePolicyText"])["rules"]
    assert [r["selection"]["tagStatus"] for r in rules] == ["untagged", "any"]
