"""Container secrets on the local ground: read as the task definition's execution role from Secrets
Manager and SSM Parameter Store into the task's environment (never onto a command line), and refused
as ECS refuses them when that role may not read them (identity enforced); and a task for a CPU
this machine cannot run, refused with a line saying so."""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_ground.aws import ACCESS_KEY, LocalAWS
from local_ground.ecr_bridge import EcrRegistryBridge
from local_ground.iam.enforcement import IdentityEnforcement
from local_ground.moto_extensions import all_extensions
from local_ground.registry import LocalRegistry
from local_ground.tasks import EcsTasksRunForReal
from pipeline import config
from pipeline.images import buildah
from pipeline.templates import render
from pipeline.templates.service import build_service
from tests.local_ground.tasks.task_env import IMAGES, ROOT, SCALE, SERVICE_STACK, Env, wait_for

PASSWORD = "pw-7f3a9c"
TOKEN = "tok-51e0d2"
# Serves as the healthy image does, and its environment at /cgi-bin/env: a CGI script inherits the
# server's variables. (Written at start to /www it would fail: the task's root filesystem is read-only.)
ENTRYPOINT = '["/bin/busybox", "sh", "-c", "exec /bin/busybox httpd -f -p \\"127.0.0.1:${PORT:-8080}\\" -h /www"]'
ENV_CGI = "#!/bin/busybox sh\necho 'Content-Type: text/plain'\necho\n/bin/busybox env\n"


@pytest.fixture(scope="module")
def env_image(buildah_store: Path) -> str:
    from tests.images import build as test_images

    tag = "localhost/task-test:env"
    with tempfile.TemporaryDirectory(prefix="task-image-") as scratch:
        context = Path(scratch) / "context"
        shutil.copytree(IMAGES / "healthy", context)
        text = (context / "Containerfile").read_text()
        (context / "Containerfile").write_text(text.rsplit("ENTRYPOINT", 1)[0] + f"ENTRYPOINT {ENTRYPOINT}\n")
        script = context / "www" / "cgi-bin" / "env"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(ENV_CGI)
        script.chmod(0o755)
        shutil.copy2(test_images.static_busybox(), context / "busybox")
        buildah.build(context, context / "Containerfile", tag)
    return tag


@pytest.fixture()
def enforced(registry: LocalRegistry) -> Iterator[Env]:
    """LocalAWS with real tasks and IAM enforced (the operator's keys are the account's admin)."""
    bridge = EcrRegistryBridge(registry)
    tasks = EcsTasksRunForReal(bridge, time_scale=SCALE)
    identity = IdentityEnforcement(operator_keys=[ACCESS_KEY])
    tasks.identity = identity
    with LocalAWS(extensions=[*all_extensions(), bridge, tasks, identity]) as aws:
        yield Env(aws, bridge, tasks)
        tasks.uninstall()
    assert tasks.live_task_pids() == []


def _stored_secrets(env: Env, kms_key: str | None = None) -> tuple[str, str]:
    """A JSON secret (optionally under a customer-managed key) and a SecureString parameter."""
    extra = {"KmsKeyId": kms_key} if kms_key else {}
    secret = env.client("secretsmanager").create_secret(
        Name="iris/db", SecretString=json.dumps({"password": PASSWORD}), **extra
    )["ARN"]
    env.client("ssm").put_parameter(Name="/iris/api-token", Value=TOKEN, Type="SecureString")
    return secret, f"arn:aws:ssm:us-east-1:{env.aws.account_id}:parameter/iris/api-token"


def _release(env: Env, image: str, secret: str, parameter: str) -> dict[str, str]:
    raw: dict[str, Any] = copy.deepcopy(tomllib.loads((ROOT / "pipeline.toml").read_text()))
    raw["environments"]["staging"]["secrets"] = {"DB_PASSWORD": f"{secret}:password::", "API_TOKEN": parameter}
    settings = config.parse(raw, root=ROOT)
    env.create_registry_stack()
    env.client("cloudformation").create_stack(
        StackName=SERVICE_STACK,
        TemplateBody=render(build_service(settings, "staging")),
        Parameters=[
            {"ParameterKey": "ImageUri", "ParameterValue": env.push(image, "1.0.0")},
            {"ParameterKey": "Version", "ParameterValue": "1.0.0"},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    return env.outputs()


def _cmdlines() -> str:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            found.append(cmdline.read_bytes().decode(errors="replace"))
        except OSError:
            continue  # gone meanwhile
    return "\n".join(found)


def test_secrets_reach_the_task_environment_and_no_command_line(enforced: Env, env_image: str) -> None:
    secret, parameter = _stored_secrets(enforced)
    outputs = _release(enforced, env_image, secret, parameter)
    wait_for(lambda: enforced.target_states() == ["healthy"])
    with urllib.request.urlopen(outputs["ServiceUrl"] + "/cgi-bin/env", timeout=5) as answer:
        variables = dict(line.split("=", 1) for line in answer.read().decode().splitlines() if "=" in line)
    assert variables["DB_PASSWORD"] == PASSWORD  # the JSON key of the secret
    assert variables["API_TOKEN"] == TOKEN  # the parameter, decrypted
    assert variables["MODEL_EXPECTED_FEATURES"].startswith("sepal_length_cm")  # plain variables still there
    cmdlines = _cmdlines()
    assert PASSWORD not in cmdlines and TOKEN not in cmdlines


def test_a_secret_the_execution_role_cannot_decrypt_stops_the_task(enforced: Env, env_image: str) -> None:
    """Encrypted under a customer-managed key the settings do not name: no kms:Decrypt, as on AWS."""
    key = enforced.client("kms").create_key()["KeyMetadata"]["Arn"]
    secret, parameter = _stored_secrets(enforced, kms_key=key)
    _release(enforced, env_image, secret, parameter)
    stopped = wait_for(lambda: enforced.tasks_of("STOPPED"))
    reason = stopped[0]["stoppedReason"]
    assert reason.startswith("ResourceInitializationError: unable to pull secrets or registry auth: ")
    assert "unable to retrieve secret from asm" in reason and "AccessDeniedException: User: arn:aws:sts::" in reason
    assert f"is not authorized to perform: kms:Decrypt on resource: {key}" in reason
    assert stopped[0]["stopCode"] == "TaskFailedToStart"


def test_a_task_for_a_cpu_this_machine_cannot_run_is_refused_with_a_line(enforced: Env, env_image: str) -> None:
    """On AWS an ARM64 task runs on an ARM64 host; the local ground runs tasks on its own CPU."""
    from pipeline.steps.build import missing_emulator

    other = "ARM64" if missing_emulator("ARM64") else "X86_64"
    if not missing_emulator(other):
        pytest.skip("this machine runs both CPUs")
    raw: dict[str, Any] = copy.deepcopy(tomllib.loads((ROOT / "pipeline.toml").read_text()))
    raw["image"]["architecture"] = other
    settings = config.parse(raw, root=ROOT)
    enforced.create_registry_stack()
    enforced.client("cloudformation").create_stack(
        StackName=SERVICE_STACK,
        TemplateBody=render(build_service(settings, "staging")),
        Parameters=[
            {"ParameterKey": "ImageUri", "ParameterValue": enforced.push(env_image, "1.0.0")},
            {"ParameterKey": "Version", "ParameterValue": "1.0.0"},
        ],
        Capabilities=["CAPABILITY_IAM"],
    )
    stopped = wait_for(lambda: enforced.tasks_of("STOPPED"))
    assert stopped[0]["stoppedReason"].startswith(
        f"CannotStartContainerError: the local ground cannot run {other} tasks"
    )
    assert "binfmt handler" in stopped[0]["stoppedReason"] and stopped[0]["stopCode"] == "TaskFailedToStart"
