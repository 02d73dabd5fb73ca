"""The hash-locked requirements stay fresh: they satisfy pyproject.toml, they are closed under their
packages' own dependencies, every pin carries hashes, and the installs (make setup, the workflows) use
them with hash checking. A failure here means: run `make lock` and commit requirements/."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", re.M)
# Linux runners and this machine, Python 3.11 (setup-python in the workflows, the locks' --python-version).
MARKERS = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
}


def pins(name: str) -> dict[str, str]:
    text = (LOCKS / name).read_text()
    found = {canonicalize_name(n): v for n, v, _hashes in PIN.findall(text)}
    requirement_lines = [line for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
    assert len(found) == len(requirement_lines), f"{name}: a pin without hashes, or not pinned with =="
    return found


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def applies(requirement: Requirement, extra: str = "") -> bool:
    return requirement.marker is None or requirement.marker.evaluate({**MARKERS, "extra": extra})


def assert_satisfied(requirements: list[Requirement], locked: dict[str, str], lock: str) -> None:
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in {lock}: run `make lock`"
        assert requirement.specifier.contains(locked[name], prereleases=True), (
            f"{lock} pins {name}=={locked[name]}, outside {requirement}: run `make lock`"
        )


def extra_requirements(extra: str) -> list[Requirement]:
    """An extra's requirements with the package's own extras (ecs-model-pipeline[lint,local]) expanded."""
    project = pyproject()["project"]
    found: list[Requirement] = []
    for line in project["optional-dependencies"][extra]:
        requirement = Requirement(line)
        if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
            for inner in sorted(requirement.extras):
                found += extra_requirements(inner)
        else:
            found.append(requirement)
    return found


def test_every_pin_is_hashed() -> None:
    for name in ("runtime.lock", "dev.lock", "build.lock", "publish.lock"):
        assert pins(name), name


def test_the_runtime_lock_satisfies_the_dependencies() -> None:
    dependencies = [Requirement(line) for line in pyproject()["project"]["dependencies"]]
    assert_satisfied([r for r in dependencies if applies(r)], pins("runtime.lock"), "runtime.lock")


def test_the_dev_lock_satisfies_every_extra_and_runs_the_runtime_versions() -> None:
    dev = pins("dev.lock")
    assert_satisfied([r for r in extra_requirements("dev") if applies(r)], dev, "dev.lock")
    runtime = pins("runtime.lock")
    differ = {name: (version, dev.get(name)) for name, version in runtime.items() if dev.get(name) != version}
    assert differ == {}, "tests must run the versions the workflows install"


def test_the_build_lock_satisfies_the_build_backend() -> None:
    requires = [Requirement(line) for line in pyproject()["build-system"]["requires"]]
    assert_satisfied(requires, pins("build.lock"), "build.lock")


def test_the_publish_lock_is_the_build_frontend_at_the_versions_the_tests_run() -> None:
    """publish.yml builds the tool with these; the tests build it with dev.lock's (tests/workflows)."""
    publish, dev = pins("publish.lock"), pins("dev.lock")
    assert "build" in publish
    assert {name: dev.get(name) for name in publish} == publish


@pytest.mark.parametrize("lock", ["runtime.lock", "dev.lock"])
def test_a_lock_is_exactly_the_closure_of_its_requirements(lock: str) -> None:
    """Every package that pyproject's requirements pull in (through Requires-Dist and the extras asked
    for, read from the installed distributions: make setup installs dev.lock) is locked, and nothing else."""
    locked = pins(lock)
    roots = [Requirement(line) for line in pyproject()["project"]["dependencies"]]
    if lock == "dev.lock":
        roots += extra_requirements("dev")
    wanted: dict[str, set[str]] = {}
    queue = [r for r in roots if applies(r)]
    missing = []
    while queue:
        requirement = queue.pop()
        name = canonicalize_name(requirement.name)
        if name not in locked:
            missing.append(str(requirement))
            continue
        extras = {canonicalize_name(e) for e in requirement.extras}
        if name in wanted and extras <= wanted[name]:
            continue
        wanted[name] = wanted.get(name, set()) | extras
        distribution = metadata.distribution(name)
        assert distribution.version == locked[name], f"{name} {distribution.version} installed, {locked[name]} locked"
        for line in distribution.requires or []:
            inner = Requirement(line)
            if any(applies(inner, extra) for extra in wanted[name] | {""}):
                queue.append(inner)
    assert missing == [], f"{lock} lacks {missing}: run `make lock`"
    assert sorted(set(locked) - set(wanted)) == [], f"{lock} holds packages nothing requires: run `make lock`"


def test_make_setup_installs_the_locks_with_hashes() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "pip install -q --require-hashes --no-deps -r requirements/dev.lock -r requirements/build.lock" in makefile
    assert "pip install -q --no-deps --no-build-isolation -e ." in makefile


@pytest.mark.parametrize("workflow", ["release.yml", "rollback.yml"])
def test_workflows_install_the_lock_before_any_credentials(workflow: str) -> None:
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / workflow).read_text())["jobs"]
    for job_id, job in jobs.items():
        steps = job["steps"]
        install = next(i for i, s in enumerate(steps) if "requirements/runtime.lock" in s.get("run", ""))
        credentials = next(
            i for i, s in enumerate(steps) if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@")
        )
        assert install < credentials, f"{workflow} {job_id}: install code runs before the role is assumed"
        run = steps[install]["run"]
        assert "--require-hashes" in run and "--no-deps --no-build-isolation ." in run, run
        assert not any("pip install" in s.get("run", "") for s in steps[credentials:]), "nothing installed after"
