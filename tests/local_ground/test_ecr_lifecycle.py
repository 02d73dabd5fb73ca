"""ECR lifecycle policies expire images, as ECR applies them (here at once, ages on the scaled clock)."""

from __future__ import annotations

import json
import time
from typing import Any

import boto3

from local_ground.aws import LocalAWS
from local_ground.moto_extensions import all_extensions

NAME = "ecr_lifecycle_policies_expire_images"
POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {
                "tagStatus": "tagged",
                "tagPrefixList": ["keep"],
                "countType": "imageCountMoreThan",
                "countNumber": 5,
            },
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2},
            "action": {"type": "expire"},
        },
    ]
}


def _push(ecr: Any, tag: str) -> None:
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json", "tag": tag}
    ecr.put_image(repositoryName="model", imageManifest=json.dumps(manifest), imageTag=tag)


def _tags_left(without: tuple[str, ...]) -> list[str]:
    with LocalAWS(extensions=all_extensions(without=without)) as aws:
        ecr = boto3.client(
            "ecr",
            endpoint_url=aws.endpoint_url,
            region_name=aws.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ecr.create_repository(repositoryName="model")
        ecr.put_lifecycle_policy(repositoryName="model", lifecyclePolicyText=json.dumps(POLICY))
        for tag in ("keep-1", "v1", "v2", "v3", "v4"):
            _push(ecr, tag)
            time.sleep(0.01)
        deadline = time.monotonic() + 5
        while True:
            tags = sorted(
                t for i in ecr.describe_images(repositoryName="model")["imageDetails"] for t in i["imageTags"]
            )
            if len(tags) <= 3 or time.monotonic() > deadline:
                return tags


def test_a_lifecycle_policy_expires_images_beyond_its_count() -> None:
    # keep-1 is claimed by rule 1 (5 allowed); rule 2 keeps the two newest of the rest.
    assert _tags_left(()) == ["keep-1", "v3", "v4"]
    assert _tags_left((NAME,)) == ["keep-1", "v1", "v2", "v3", "v4"]  # moto never expires anything


def test_the_registry_template_lifecycle_policy_is_the_repository_policy(settings: Any) -> None:
    def policy(without: tuple[str, ...]) -> dict[str, Any] | None:
        with LocalAWS(extensions=all_extensions(without=without)) as aws:
            kw = {"endpoint_url": aws.endpoint_url, "region_name": aws.region}
            kw |= {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
            body = (settings.root / "cloudformation" / "registry.yaml").read_text()
            boto3.client("cloudformation", **kw).create_stack(StackName="registry", TemplateBody=body)
            try:
                text = boto3.client("ecr", **kw).get_lifecycle_policy(repositoryName=settings.app.name)
            except Exception:  # noqa: BLE001 - LifecyclePolicyNotFoundException without the extension
                return None
            return dict(json.loads(text["lifecyclePolicyText"]))

    found = policy(())
    assert found is not None and [r["selection"]["countType"] for r in found["rules"]] == [
        "sinceImagePushed",
        "imageCountMoreThan",
    ]
    assert policy((NAME,)) is None
