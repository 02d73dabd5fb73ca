"""The local Python base image: apt mirror discovery, rootfs trimming, build-once caching."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from local_ground import python_base
from local_ground.python_base import Source, debian_mirror, ensure_python_base, trim
from pipeline.errors import BuildError
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


# --- trim never leaves the rootfs ---------------------------------------------------------------


def test_trim_resolves_hostile_symlinks_inside_the_rootfs(tmp_path: Path) -> None:
    rootfs, host = tmp_path / "rootfs", tmp_path / "host"
    (host / "logs").mkdir(parents=True)
    (host / "logs" / "precious.txt").write_text("the host's")
    (host / "etc-dpkg").mkdir()
    (rootfs / "var").mkdir(parents=True)
    (rootfs / "usr/share").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    # Absolute links, as a rootfs from the network could hold: inside the rootfs they mean rootfs/<target>.
    (rootfs / "var/log").symlink_to(host / "logs")
    (rootfs / "etc/dpkg").symlink_to(host / "etc-dpkg")
    # A relative link that climbs past the top: chroot stops `..` at `/`.
    (rootfs / "usr/share/man").symlink_to("../../../../host/logs")
    inner = rootfs / str(host / "logs").lstrip("/")
    inner.mkdir(parents=True)
    (inner / "old.log").write_text("x")

    trim(rootfs)

    assert (host / "logs" / "precious.txt").read_text() == "the host's"  # never followed out
    assert sorted(p.name for p in (host / "etc-dpkg").iterdir()) == []
    assert not (inner / "old.log").exists()  # the link's target inside the rootfs was trimmed
    assert (rootfs / str(host / "etc-dpkg").lstrip("/") / "dpkg.cfg.d" / "excludes").is_file()
    assert python_base.inside(rootfs, "usr/share/man/x") == rootfs / "host" / "logs" / "x"


def test_a_symlink_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var/log").symlink_to("/var/log")
    with pytest.raises(BuildError, match="too many symlinks resolving var/log"):
        trim(tmp_path)


# --- the cached tarball is checked on reuse -----------------------------------------------------


def test_a_tarball_is_reused_only_when_it_matches_its_recorded_sha256(tmp_path: Path) -> None:
    tarball = tmp_path / "base.tar"
    tarball.write_bytes(b"rootfs")
    said: list[str] = []

    assert not python_base.tarball_is_intact(tarball, said.append)  # no record: not trusted
    digest = python_base.record_checksum(tarball)
    assert python_base.checksum_path(tarball).read_text() == f"{digest}  base.tar\n"  # sha256sum's format
    assert python_base.tarball_is_intact(tarball, said.append)

    tarball.write_bytes(b"rootfs with a backdoor")
    assert not python_base.tarball_is_intact(tarball, said.append)
    assert "no recorded sha256" in said[0] and "does not match its recorded sha256" in said[1]


# --- debootstrap refuses what Debian did not sign -------------------------------------------------


def test_no_keyring_no_debootstrap(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="Debian archive keyring .* is missing") as refused:
        python_base.build_rootfs_tarball(tmp_path / "x.tar", "http://127.0.0.1:9", print, keyring=tmp_path / "none.gpg")
    assert "debian-archive-keyring" in (refused.value.hint or "")


@contextmanager
def mirror(folder: Path) -> Iterator[str]:
    """A Debian mirror on 127.0.0.1 serving `folder` (http.server, as plain as a real one)."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *args: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian"
    finally:
        server.shutdown()
        server.server_close()


APT_INRELEASE = Path("/var/lib/apt/lists")


def _real_inrelease() -> bytes:
    found = sorted(APT_INRELEASE.glob("*_dists_bookworm_InRelease"))
    if not found:
        pytest.skip("no signed bookworm InRelease in /var/lib/apt/lists to tamper with (run apt-get update)")
    return found[0].read_bytes()


def _unsigned(dists: Path) -> None:
    (dists / "Release").write_bytes(b"Origin: Debian\nSuite: stable\nCodename: bookworm\nComponents: main\n")


def _tampered(dists: Path) -> None:
    signed = _real_inrelease()  # Debian's own clearsigned Release: the signature is real
    (dists / "InRelease").write_bytes(signed.replace(b"Codename: bookworm", b"Codename: bookworm\nX-Evil: 1", 1))


@pytest.mark.parametrize(
    ("make", "says"),
    [
        pytest.param(_unsigned, "Failed getting release signature file", id="unsigned"),
        pytest.param(_tampered, "Invalid Release signature", id="tampered"),
    ],
)
def test_debootstrap_refuses_an_unsigned_or_tampered_archive(tmp_path: Path, make: Any, says: str) -> None:
    if shutil.which("debootstrap") is None or os.geteuid() != 0:
        pytest.skip("needs debootstrap and root")
    if not python_base.KEYRING.is_file():
        pytest.skip("needs debian-archive-keyring (scripts/install-system-packages.sh installs it)")
    dists = tmp_path / "mirror" / "debian" / "dists" / "bookworm"
    dists.mkdir(parents=True)
    make(dists)
    tarball = tmp_path / "cache" / "base.tar"
    tarball.parent.mkdir()

    with mirror(tmp_path / "mirror") as url:
        with pytest.raises(BuildError) as refused:
            python_base.build_rootfs_tarball(tarball, url, lambda _: None)

    message = str(refused.value)
    assert message.startswith(f"debootstrap of Debian bookworm from {url} failed: ") and "\n" not in message
    assert says in message, message
    assert not tarball.exists() and not python_base.checksum_path(tarball).exists()
    assert list(tarball.parent.iterdir()) == []  # the scratch rootfs is gone too
