"""push: log in to ECR, refuse a version that is already there, push, and deploy by digest only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipeline.aws import ecr as ecr_api
from pipeline.errors import InputError, PushError
from pipeline.steps.build import ImageBuilder

Echo = Callable[[str], None]


def digest_of(image_uri: str) -> str:
    """The digest an image URI is pinned to (REPOSITORY@sha256:...), or "" when it is not pinned."""
    return image_uri.split("@", 1)[1] if "@" in image_uri else ""


@dataclass(frozen=True)
class PushedImage:
    version: str
    digest: str
    repository_uri: str

    @classmethod
    def from_uri(cls, version: str, image_uri: str) -> PushedImage:
        return cls(version, digest_of(image_uri), image_uri.split("@", 1)[0])

    @property
    def image_uri(self) -> str:
        """What the task definition runs: the repository pinned by digest, never by tag."""
        return f"{self.repository_uri}@{self.digest}"


def refuse_existing_version(ecr: Any, repository: str, version: str) -> None:
    existing = ecr_api.image_by_tag(ecr, repository, version)
    if existing is not None:
        raise PushError(
            f"version {version} is already in ECR ({existing.digest}); tags are immutable",
            hint=f"Tag a new version, or run `pipeline rollback --env ENV {version}` to deploy it again.",
        )


def push_image(
    ecr: Any, builder: ImageBuilder, local_image: str, repository: str, version: str, echo: Echo
) -> PushedImage:
    refuse_existing_version(ecr, repository, version)
    uri = ecr_api.repository_uri(ecr, repository)
    login = ecr_api.login(ecr)
    destination = f"{login.host}/{repository}:{version}"
    echo(f"pushing {local_image} to {destination}")
    digest = builder.push(local_image, destination, login.username, login.password, login.tls)
    found = ecr_api.image_by_tag(ecr, repository, version)
    if found is None or found.digest != digest:
        raise PushError(
            f"pushed {repository}:{version} but ECR reports {found.digest if found else 'no image'} instead of {digest}",
            hint="Retry the release; do not deploy an image whose digest is not confirmed.",
        )
    echo(f"pushed {repository}:{version} as {digest}")
    return PushedImage(version, digest, uri)


def find_release(ecr: Any, repository: str, version: str) -> PushedImage:
    """A version already in ECR, for rollback: refused before anything changes when it is missing."""
    found = ecr_api.image_by_tag(ecr, repository, version)
    if found is None:
        known = sorted({i.tag for i in ecr_api.images(ecr, repository)})
        raise InputError(  # bad input, as a version `release` cannot promote: exit 2
            f"version {version} is not in ECR repository {repository}",
            hint=f"Known versions: {', '.join(known[-10:]) or 'none'}.",
        )
    return PushedImage(version, found.digest, ecr_api.repository_uri(ecr, repository))
