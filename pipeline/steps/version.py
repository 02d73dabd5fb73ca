"""Versions come from git tags: `v1.4.0` (or `refs/tags/v1.4.0`) is version 1.4.0."""

from __future__ import annotations

import re

from pipeline.errors import InputError

SEMVER = re.compile(
    r"^(?:refs/tags/)?v?(?P<version>(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z][0-9A-Za-z.-]*)?)$"
)


def parse_version(text: str) -> str:
    """The version in a tag, or a clear refusal before any work is done."""
    match = SEMVER.match(text.strip())
    if not match:
        raise InputError(
            f"{text!r} is not a release version",
            hint="Tag releases as vMAJOR.MINOR.PATCH, e.g. v1.4.0.",
        )
    return match.group("version")


def version_key(version: str) -> tuple[int, int, int, str]:
    major, minor, patch = version.split("-", 1)[0].split(".")
    pre = version.split("-", 1)[1] if "-" in version else "~"  # a release sorts after its pre-releases
    return int(major), int(minor), int(patch), pre
