import pytest

from pipeline.errors import InputError
from pipeline.steps.version import parse_version, version_key


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v1.4.0", "1.4.0"), ("1.4.0", "1.4.0"), ("refs/tags/v2.0.1", "2.0.1"), ("v1.0.0-rc.1", "1.0.0-rc.1")],
)
def test_versions_from_tags(tag: str, version: str) -> None:
    assert parse_version(tag) == version


@pytest.mark.parametrize("tag", ["latest", "v1.4", "v01.2.3", "1.4.0.1", "main", "", "v1.4.0 ; rm -rf /"])
def test_anything_else_is_refused(tag: str) -> None:
    with pytest.raises(InputError, match="is not a release version"):
        parse_version(tag)


def test_version_order() -> None:
    assert sorted(["1.10.0", "1.2.0", "1.2.0-rc.1"], key=version_key) == ["1.2.0-rc.1", "1.2.0", "1.10.0"]
