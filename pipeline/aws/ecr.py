"""ECR calls: registry login, repository lookup, images by tag."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipeline.aws.clients import aws_call, error_code


@dataclass(frozen=True)
class RegistryLogin:
    endpoint: str  # https://ACCOUNT.dkr.ecr.REGION.amazonaws.com
    username: str
    password: str

    @property
    def host(self) -> str:
        return self.endpoint.split("://", 1)[-1].rstrip("/")

    @property
    def tls(self) -> bool:
        return not self.endpoint.startswith("http://")


@dataclass(frozen=True)
class Image:
    tag: str
    digest: str
    pushed_at: Any
    tags: tuple[str, ...]


def login(ecr: Any) -> RegistryLogin:
    with aws_call("get an ECR authorization token", hint="The role needs ecr:GetAuthorizationToken."):
        data = ecr.get_authorization_token()["authorizationData"][0]
    username, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return RegistryLogin(data["proxyEndpoint"], username, password)


def repository_uri(ecr: Any, name: str) -> str:
    with aws_call(f"find ECR repository {name}", hint="Run `pipeline bootstrap` to create the registry stack."):
        return str(ecr.describe_repositories(repositoryNames=[name])["repositories"][0]["repositoryUri"])


def image_by_tag(ecr: Any, repository: str, tag: str) -> Image | None:
    with aws_call(f"look up {repository}:{tag} in ECR", hint="Run `pipeline bootstrap` to create the registry stack."):
        try:
            found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
        except ClientError as err:
            if error_code(err) == "ImageNotFoundException":
                return None
            raise
    if not found:
        return None
    d = found[0]
    return Image(tag, d["imageDigest"], d.get("imagePushedAt"), tuple(d.get("imageTags", [])))


def images(ecr: Any, repository: str) -> list[Image]:
    with aws_call(f"list images of {repository}"):
        pages = ecr.get_paginator("describe_images").paginate(repositoryName=repository, filter={"tagStatus": "TAGGED"})
        details = [d for page in pages for d in page["imageDetails"]]
    return [
        Image(t, d["imageDigest"], d.get("imagePushedAt"), tuple(d.get("imageTags", [])))
        for d in details
        for t in d.get("imageTags", [])
    ]


MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)


def manifest_digest(ecr: Any, repository: str, tag: str) -> str | None:
    """The sha256 of the manifest ECR serves for `tag` (BatchGetImage), or None when it serves none.
    An image digest *is* that hash, so equal digests mean the complete image a push stored."""
    with aws_call(f"read the manifest of {repository}:{tag}", hint="The role needs ecr:BatchGetImage."):
        found = ecr.batch_get_image(
            repositoryName=repository, imageIds=[{"imageTag": tag}], acceptedMediaTypes=list(MANIFEST_TYPES)
        ).get("images", [])
    if not found or not found[0].get("imageManifest"):
        return None
    return "sha256:" + hashlib.sha256(found[0]["imageManifest"].encode("utf-8")).hexdigest()
