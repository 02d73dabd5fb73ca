"""The local Python base image: apt mirror discovery, rootfs trimming, build-once caching."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from local_ground import python_base
from local_ground.python_base import Source, debian_mirror, ensure_python_base, trim
from pipeline.images import buildah


@pytest.fixture
def apt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv(python_base.MIRROR_ENV, raising=False)
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


def test_mirror_from_deb822_sources_skips_security(apt_dir: Path) -> None:
    (apt_dir / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n"
        "URIs: http://deb.debian.org/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "\n"
        "Types: deb\n"
        "# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
        "URIs: http://mirror.example/debian/\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
    )
    assert debian_mirror(apt_dir) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources_with_options(apt_dir: Path) -> None:
    (apt_dir / "sources.list").write_text(
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://ftp.example/debian bookworm main contrib\n"
    )
    assert debian_mirror(apt_dir) == "http://ftp.example/debian"


def test_disabled_and_foreign_entries_are_ignored(apt_dir: Path) -> None:
    (apt_dir / "sources.list.d" / "a.sources").write_text(
        "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n"
    )
    (apt_dir / "sources.list.d" / "b.list").write_text("deb https://deb.nodesource.com/node_20.x nodistro main\n")
    (apt_dir / "sources.list.d" / "c.list.disabled").write_text("deb http://disabled.example/debian bookworm main\n")
    assert debian_mirror(apt_dir) == python_base.DEFAULT_MIRROR


def test_mirror_env_overrides(apt_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(python_base.MIRROR_ENV, "http://proxy.local:3142/debian/")
    assert debian_mirror(apt_dir) == "http://proxy.local:3142/debian"


def test_trim_removes_docs_and_indexes_but_keeps_licences(tmp_path: Path) -> None:
    for path in (
        "var/lib/apt/lists/deb.debian.org_Packages",
        "var/cache/apt/pkgcache.bin",
        "usr/share/doc/libc6/changelog.gz",
        "usr/share/doc/libc6/copyright",
        "usr/share/man/man1/ls.1.gz",
        "usr/share/locale/de/LC_MESSAGES/x.mo",
        "usr/lib/python3.11/json/__init__.py",
    ):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")

    trim(tmp_path)

    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "etc/dpkg/dpkg.cfg.d/excludes",
        "usr/lib/python3.11/json/__init__.py",
        "usr/share/doc/libc6/copyright",
    ]
    assert "path-exclude=/usr/share/doc/*" in (tmp_path / "etc/dpkg/dpkg.cfg.d/excludes").read_text()


def test_recipe_names_the_cached_tarball_and_is_stable() -> None:
    assert python_base.recipe() == python_base.recipe()
    assert len(python_base.recipe()) == 12


@pytest.mark.slow
def test_built_once_then_reused_from_the_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for tool in ("buildah", "debootstrap"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    if os.geteuid() != 0:
        pytest.skip("debootstrap needs root")
    monkeypatch.setenv(buildah.ROOT_ENV, str(tmp_path / "store"))  # a fresh store: the import must happen
    lines: list[str] = []

    first = ensure_python_base(lines.append)  # the rootfs tarball stays in the user's cache
    second = ensure_python_base(lines.append)

    assert first.source in (Source.TARBALL, Source.DEBOOTSTRAP)
    assert second.source is Source.STORE and second.seconds < 2
    assert first.tarball is not None and 50e6 < first.tarball_bytes < 200e6
    assert any("importing" in line for line in lines)
    config = buildah.inspect_config(python_base.IMAGE)
    assert config["Cmd"] == ["python3"] and "LANG=C.UTF-8" in config["Env"]
