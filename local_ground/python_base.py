"""A local Python base image, for machines that cannot pull one.

No registry serves base images here, so the example model server's image is built `FROM` a
Debian bookworm rootfs made with `debootstrap --variant=minbase` from the machine's own apt
mirror, with python3-minimal plus the rest of the standard library (python3-minimal alone has
no json, http or dataclasses, so it cannot run an HTTP server), trimmed (apt lists, docs, man
pages, locales) and imported into buildah as `localhost/pipeline-python-base:bookworm`.

Built once: the image is reused when the buildah store has one built from the same recipe
(a label records it), and the rootfs tarball is cached under ~/.cache/ecs-model-pipeline
(or $PIPELINE_CACHE_DIR), so a fresh buildah store (a test session's temp store) only pays
for the import, not for debootstrap.

Verified: debootstrap checks the archive's Release signature against the Debian archive keyring
(`--keyring`, `--force-check-gpg`: without them it only warns and goes on when the keyring is
missing, over plain http); the tarball's sha256 is recorded beside it and checked on every reuse
(a tarball that does not match, or has no record, is discarded and rebuilt); `trim()` resolves
every path as if the rootfs were `/`, so a hostile symlink (`var/log -> /home`) stays inside it.
"""

from __future__ import annotations

import enum
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import BuildError
from pipeline.images.buildah import _env, _error_line, _stream, global_args

IMAGE = "localhost/pipeline-python-base:bookworm"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MIRROR_ENV = "PIPELINE_DEBIAN_MIRROR"
CACHE_ENV = "PIPELINE_CACHE_DIR"
APT_DIR = Path("/etc/apt")
# libpython3-stdlib: json, http.server, dataclasses, socketserver... (not in python3-minimal)
PACKAGES = ("python3-minimal", "libpython3-stdlib")
RECIPE_LABEL = "io.ecs-model-pipeline.base-recipe"
# Debian's archive signing keys (package debian-archive-keyring, installed by scripts/install-system-packages.sh).
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
_SYMLINK_HOPS = 40  # as the kernel's limit: a loop of links is an error, not a hang

Progress = Callable[[str], None]

# Removed from the rootfs: nothing at run time reads them, and they are a third of its size.
TRIM = (
    "var/lib/apt/lists/*",
    "var/cache/apt/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/debconf/*-old",
    "var/log/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/locale/*",
    "usr/share/lintian/*",
    "tmp/*",
)
# Keeps later `apt-get install` layers as trim as the base (Ubuntu's minimal images do the same).
DPKG_EXCLUDES = """\
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
"""


def recipe() -> str:
    """A short hash of what goes into the base: a changed recipe never reuses an old build."""
    text = json.dumps([SUITE, PACKAGES, TRIM, DPKG_EXCLUDES])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class Source(enum.Enum):
    """Where this call got the image from: the cheapest step that had it."""

    STORE = "already in the buildah store"
    TARBALL = "imported from the cached rootfs tarball"
    DEBOOTSTRAP = "debootstrapped, cached and imported"


@dataclass(frozen=True)
class BaseImage:
    name: str
    source: Source
    seconds: float  # this call's wall time
    tarball: Path | None  # the cached rootfs, when there is one
    tarball_bytes: int  # the uncompressed rootfs size, i.e. the image layer's size


def cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ecs-model-pipeline"


def ensure_python_base(
    progress: Progress | None = None,
    *,
    image: str = IMAGE,
    cache: Path | None = None,
    mirror: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> BaseImage:
    """Make sure `image` is in the buildah store (see module doc); build only what is missing."""
    say = progress or (lambda line: None)
    cache = cache or cache_dir()
    cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    tarball = cache / f"python-base-{SUITE}-{_arch()}-{recipe()}.tar"
    began = clock()

    def result(source: Source) -> BaseImage:
        size = tarball.stat().st_size if tarball.exists() else 0
        return BaseImage(image, source, clock() - began, tarball if size else None, size)

    with _locked(cache / ".python-base.lock"):  # parallel test workers build it once
        if image_is_current(image):
            say(f"base image {image} is already in the buildah store")
            return result(Source.STORE)
        source = Source.TARBALL
        if tarball.exists() and not tarball_is_intact(tarball, say):
            tarball.unlink()
        if not tarball.exists():
            mirror = mirror or debian_mirror()
            say(f"debootstrapping Debian {SUITE} with {', '.join(PACKAGES)} from {mirror} (about 40 s)")
            build_rootfs_tarball(tarball, mirror, say)
            source = Source.DEBOOTSTRAP
            for stale in cache.glob(f"python-base-{SUITE}-{_arch()}-*.tar"):  # older recipes
                if stale != tarball:
                    stale.unlink()
                    checksum_path(stale).unlink(missing_ok=True)
        say(f"importing {tarball} ({tarball.stat().st_size / 1e6:.0f} MB) as {image}")
        import_tarball(tarball, image)
        done = result(source)
        say(f"base image {image} ready in {done.seconds:.1f}s ({source.value})")
        return done


def image_is_current(image: str) -> bool:
    """True when the store has `image` and it was built from this module's recipe."""
    if shutil.which("buildah") is None:
        raise BuildError("buildah is not installed", hint="install the buildah package (apt-get install buildah)")
    done = subprocess.run(
        global_args() + ["inspect", "--type", "image", image], capture_output=True, env=_env(), check=False
    )
    if done.returncode != 0:
        return False
    config = json.loads(done.stdout).get("Docker", {}).get("config") or {}
    return bool((config.get("Labels") or {}).get(RECIPE_LABEL) == recipe())


# --- apt sources -----------------------------------------------------------------------------


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The Debian archive this machine's apt uses ($PIPELINE_DEBIAN_MIRROR overrides it).

    Reads one-line `.list` and deb822 `.sources` files and takes the first `deb` entry for a
    bookworm suite that is not the security archive (debootstrap needs the main archive).
    """
    if os.environ.get(MIRROR_ENV):
        return os.environ[MIRROR_ENV].rstrip("/")
    for uri, suite in _apt_entries(apt_dir):
        if suite.split("-")[0] == SUITE and "security" not in uri and "security" not in suite:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def _apt_entries(apt_dir: Path) -> Iterator[tuple[str, str]]:
    """(uri, suite) pairs of enabled `deb` entries, in apt's reading order."""
    files = [apt_dir / "sources.list"] + sorted((apt_dir / "sources.list.d").glob("*"))
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.suffix == ".sources":
            yield from _deb822_entries(text)
        elif path.suffix == ".list" or path.name == "sources.list":
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    yield words[1], words[2]


def _deb822_entries(text: str) -> Iterator[tuple[str, str]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                yield uri, suite


# --- the cached tarball's checksum ----------------------------------------------------------------


def checksum_path(tarball: Path) -> Path:
    return tarball.with_name(tarball.name + ".sha256")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_checksum(tarball: Path) -> str:
    """Write `sha256sum`'s line for `tarball` beside it; returns the digest."""
    digest = _sha256(tarball)
    checksum_path(tarball).write_text(f"{digest}  {tarball.name}\n")
    return digest


def tarball_is_intact(tarball: Path, say: Progress) -> bool:
    """True when `tarball` matches the sha256 recorded when it was built (none recorded: not trusted)."""
    try:
        recorded = checksum_path(tarball).read_text().split()[0]
    except (OSError, IndexError):
        say(f"{tarball.name} has no recorded sha256 (built before they were recorded, or tampered with); rebuilding")
        return False
    actual = _sha256(tarball)
    if actual != recorded:
        say(
            f"{tarball.name} does not match its recorded sha256 ({actual[:12]}... is not {recorded[:12]}...); rebuilding"
        )
        return False
    return True


# --- rootfs ------------------------------------------------------------------------------------


def build_rootfs_tarball(tarball: Path, mirror: str, say: Progress, keyring: Path = KEYRING) -> None:
    """debootstrap a minimal bookworm with Python (its Release signature checked against `keyring`),
    trim it, tar it to `tarball` and record the tarball's sha256 beside it."""
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed", hint="apt-get install debootstrap")
    if not keyring.is_file():
        raise BuildError(
            f"the Debian archive keyring {keyring} is missing, so the archive's signature cannot be checked",
            hint="apt-get install debian-archive-keyring (scripts/install-system-packages.sh does)",
        )
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root to build the Python base image", hint="run as root")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    rootfs = work / "rootfs"
    try:
        command = [
            "debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", "--components=main",
            f"--keyring={keyring}", "--force-check-gpg",
            SUITE, str(rootfs), mirror,
        ]  # fmt: skip
        code, tail = _stream(command, say)
        if code != 0:
            raise BuildError(
                f"debootstrap of Debian {SUITE} from {mirror} failed: {_debootstrap_error(tail)}",
                hint=f"check that apt can reach {mirror} and that it is a signed Debian archive, or set {MIRROR_ENV}",
            )
        trim(rootfs)
        say(f"rootfs trimmed to {_du(rootfs) / 1e6:.0f} MB; writing {tarball.name}")
        partial = work / "rootfs.tar"
        # --numeric-owner: the rootfs's uids are Debian's, not this host's.
        done = subprocess.run(
            ["tar", "--numeric-owner", "--xattrs", "-C", str(rootfs), "-cf", str(partial),
             "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", "."],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise BuildError(f"cannot archive the rootfs: {_error_line(done.stderr.splitlines())}")
        checksum_path(tarball).unlink(missing_ok=True)
        partial.replace(tarball)  # atomic: a cached tarball is always a whole one
        record_checksum(tarball)
    finally:
        _remove_tree(work)


def _debootstrap_error(tail: list[str]) -> str:
    """debootstrap's own `E:` line (e.g. "Invalid Release signature"), else the last line."""
    errors = [line.removeprefix("E:").strip() for line in tail if line.startswith("E:")]
    return errors[-1] if errors else _error_line(tail)


def inside(rootfs: Path, relative: str) -> Path:
    """`relative` resolved as if `rootfs` were `/` (as chroot would): every symlink, absolute or
    relative, is followed within `rootfs`, and `..` stops at its top. The result never leaves it."""
    parts, resolved, hops = list(Path(relative).parts), [], _SYMLINK_HOPS
    while parts:
        part = parts.pop(0)
        if part in ("/", "", "."):
            continue
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = rootfs.joinpath(*resolved, part)
        if candidate.is_symlink():
            hops -= 1
            if hops < 0:
                raise BuildError(f"too many symlinks resolving {relative} in {rootfs}")
            target = Path(os.readlink(candidate))
            if target.is_absolute():
                resolved = []
            parts = list(target.parts) + parts
            continue
        resolved.append(part)
    return rootfs.joinpath(*resolved)


def _remove(path: Path) -> None:
    """Delete one entry without following it: a symlink goes, never what it points at."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)  # does not follow symlinks inside it
    else:
        path.unlink()


def _matching(directory: Path, pattern: str) -> list[Path]:
    if not directory.is_dir() or directory.is_symlink():
        return []
    return [directory / name for name in sorted(os.listdir(directory)) if fnmatch.fnmatchcase(name, pattern)]


def trim(rootfs: Path) -> None:
    """Remove what a server never reads; keep /usr/share/doc/*/copyright (the licences).

    Paths are resolved inside the rootfs (`inside`): debootstrap's rootfs comes from a network
    archive, and a `var/log -> /home/you` link must not make this delete the host's files.
    """
    for entry in TRIM:
        folder, pattern = entry.rsplit("/", 1)
        for path in _matching(inside(rootfs, folder), pattern):
            _remove(path)
    for doc in _matching(inside(rootfs, "usr/share/doc"), "*"):
        if doc.is_dir() and not doc.is_symlink():
            for item in _matching(doc, "*"):
                if item.name != "copyright":
                    _remove(item)
    folder = inside(rootfs, "etc/dpkg/dpkg.cfg.d")
    folder.mkdir(parents=True, exist_ok=True)
    excludes = folder / "excludes"
    if excludes.is_symlink():
        excludes.unlink()
    excludes.write_text(DPKG_EXCLUDES)


def _remove_tree(path: Path) -> None:
    """Delete a scratch rootfs, after making sure debootstrap left nothing (/proc, /sys) mounted in it."""
    prefix = str(path.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        inside = [fields[1] for fields in (line.split() for line in mounts) if fields[1].startswith(prefix)]
    for mountpoint in sorted(inside, key=len, reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True, check=False)
    with open("/proc/self/mounts") as mounts:
        if any(line.split()[1].startswith(prefix) for line in mounts):
            raise BuildError(f"{path} still has mounts in it; not deleting it", hint=f"umount them and remove {path}")
    shutil.rmtree(path, ignore_errors=True)


def _du(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


# --- buildah import ------------------------------------------------------------------------------


def import_tarball(tarball: Path, image: str) -> None:
    """`FROM scratch`, add the rootfs tarball (buildah unpacks it), set run defaults, commit."""
    container = _buildah("from", "--name", f"python-base-{os.getpid()}-{time.monotonic_ns()}", "scratch").strip()
    try:
        _buildah("add", container, str(tarball), "/")
        _buildah(
            "config",
            "--os", "linux",
            "--arch", _arch(),
            "--env", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "--env", "LANG=C.UTF-8",
            "--cmd", '["python3"]',
            "--label", f"org.opencontainers.image.description=Debian {SUITE} minbase + {' '.join(PACKAGES)} (local base)",
            "--label", "org.opencontainers.image.base.name=scratch",
            "--label", f"{RECIPE_LABEL}={recipe()}",
            container,
        )  # fmt: skip
        _buildah("commit", "--format", "docker", "--rm", container, image)
    except BuildError:
        subprocess.run(global_args() + ["rm", container], capture_output=True, env=_env(), check=False)
        raise


def _buildah(*args: str) -> str:
    done = subprocess.run(global_args() + list(args), capture_output=True, text=True, env=_env(), check=False)
    if done.returncode != 0:
        raise BuildError(f"buildah {args[0]} failed: {_error_line(done.stderr.splitlines())}")
    return done.stdout


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
