"""ecr_lifecycle_policies_expire_images: a repository's lifecycle policy (from PutLifecyclePolicy or
the template's LifecyclePolicy) expires images: each image is selected by the first rule, in
rulePriority order, whose tagStatus (tagged with tagPrefixList/tagPatternList, untagged, any) it
matches; ``imageCountMoreThan`` expires the oldest beyond countNumber, ``sinceImagePushed`` those
pushed more than countNumber days ago (scaled by the local time factor).

AWS: "Automate the cleanup of images by using lifecycle policies in Amazon ECR" and "Lifecycle
policy properties" (https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html,
lifecycle_policy_parameters.html). AWS applies policies within 24 hours; here every
EVALUATION_TICK. moto 5.2.5 stores a policy set through the API but never applies it, and drops the
template's LifecyclePolicy, so a rollback to an expired version works here and not on AWS.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterable
from typing import Any

from moto.ecr.models import Image, Repository, ecr_backends

from ._base import Patch, PeriodicExtension
from .timescale import scaled

EVALUATION_TICK = 0.1
DAY = 86400.0


def _selected(image: Image, selection: dict[str, Any]) -> bool:
    tags = [t for t in image.image_tags if t]
    status = selection.get("tagStatus", "any")
    if status == "untagged":
        return not tags
    if status == "tagged":
        prefixes = selection.get("tagPrefixList") or []
        patterns = selection.get("tagPatternList") or []
        return any(t.startswith(p) for t in tags for p in prefixes) or any(
            fnmatch.fnmatchcase(t, p) for t in tags for p in patterns
        )
    return True


def expired(images: list[Image], policy: dict[str, Any], now: float) -> list[Image]:
    """The images the policy expires now."""
    claimed: set[int] = set()
    result: list[Image] = []
    for rule in sorted(policy.get("rules", []), key=lambda r: int(r.get("rulePriority", 0))):
        selection = rule.get("selection", {})
        matched = [i for i in images if id(i) not in claimed and _selected(i, selection)]
        claimed.update(id(i) for i in matched)
        if selection.get("countType") == "imageCountMoreThan":
            newest_first = sorted(matched, key=lambda i: (i.image_pushed_at, images.index(i)), reverse=True)
            result += newest_first[int(selection["countNumber"]) :]
        elif selection.get("countType") == "sinceImagePushed":
            age = scaled(float(selection["countNumber"]) * DAY)
            result += [i for i in matched if now - float(getattr(i, "_pushed_monotonic", now)) > age]
    return result


class EcrLifecyclePoliciesExpireImages(PeriodicExtension):
    name = "ecr_lifecycle_policies_expire_images"
    thread_name = "ecr-lifecycle"
    tick_seconds = EVALUATION_TICK

    def patches(self) -> Iterable[Patch]:
        create = Repository.create_from_cloudformation_json
        image_init = Image.__init__

        def create_from_cloudformation_json(
            cls: type, resource_name: str, cloudformation_json: Any, account_id: str, region_name: str, **kw: Any
        ) -> Repository:
            repository = create(resource_name, cloudformation_json, account_id, region_name, **kw)
            text = (cloudformation_json["Properties"].get("LifecyclePolicy") or {}).get("LifecyclePolicyText")
            if text:
                repository.lifecycle_policy = text if isinstance(text, str) else json.dumps(text)
            return repository

        def init(image: Image, *args: Any, **kwargs: Any) -> None:
            image_init(image, *args, **kwargs)
            image._pushed_monotonic = time.monotonic()  # ages count on the scaled clock

        yield Repository, "create_from_cloudformation_json", classmethod(create_from_cloudformation_json)
        yield Image, "__init__", init

    def tick(self) -> None:
        for account in list(ecr_backends.keys()):
            for backend in list(ecr_backends[account].values()):
                for repository in list(backend.repositories.values()):
                    if repository.lifecycle_policy:
                        self._apply(repository)

    @staticmethod
    def _apply(repository: Repository) -> None:
        try:
            policy = json.loads(repository.lifecycle_policy or "{}")
        except ValueError:
            return
        for image in expired(list(repository.images), policy, time.monotonic()):
            if image in repository.images:
                repository.images.remove(image)
