"""The small rules the real-task runner applies, checked without starting anything."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from local_ground.tasks.containers import ProcessRegistry
from local_ground.tasks.runtime import Runtime
from local_ground.tasks.service import failure_threshold
from local_ground.tasks.targets import TargetGroups, matches
from local_ground.tasks.timescale import TimeScale


class Front:
    """The ECR bridge's face to the task runtime: where images are, and a fresh login per pull."""

    host = "127.0.0.1:5000"
    issued = 0

    def login(self) -> tuple[str, str]:
        self.issued += 1
        return "AWS", f"token-{self.issued}"


@pytest.mark.parametrize(("desired", "threshold"), [(1, 3), (4, 3), (7, 4), (10, 5), (1000, 200)])
def test_circuit_breaker_threshold_is_half_the_desired_count_between_3_and_200(desired: int, threshold: int) -> None:
    assert failure_threshold(desired) == threshold


@pytest.mark.parametrize(
    ("matcher", "status", "ok"),
    [("200", 200, True), ("200", 404, False), ("200-299", 204, True), ("200,302", 302, True)],
)
def test_health_check_matcher(matcher: str, status: int, ok: bool) -> None:
    assert matches(matcher, status) is ok


def test_time_scale_shrinks_aws_durations() -> None:
    assert TimeScale(0.02).seconds(300) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        TimeScale(0)


def test_ecr_images_are_pulled_through_the_bridge(tmp_path: Path) -> None:
    runtime = Runtime(TimeScale(1), TargetGroups(), ProcessRegistry(), Front(), tmp_path, "123456789012", "us-east-1")
    pull = runtime.pull_of("123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64)
    assert pull.reference == "127.0.0.1:5000/iris-classifier@sha256:" + "a" * 64
    assert (pull.creds, pull.tls_verify) == ("AWS:token-1", False)
    again = runtime.pull_of("123456789012.dkr.ecr.us-east-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64)
    assert again.creds == "AWS:token-2"  # every pull logs in afresh, as ECS does with the execution role
    assert runtime.pull_of("localhost/task-test:v1").reference == "localhost/task-test:v1"


@pytest.mark.parametrize(
    "image",
    [
        "210987654321.dkr.ecr.us-east-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64,  # another account
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/iris-classifier@sha256:" + "a" * 64,  # another region
    ],
)
def test_an_ecr_image_of_another_account_or_region_cannot_be_pulled_here(tmp_path: Path, image: str) -> None:
    runtime = Runtime(TimeScale(1), TargetGroups(), ProcessRegistry(), Front(), tmp_path, "123456789012", "us-east-1")
    pull = runtime.pull_of(image)
    assert pull.error is not None and pull.error.startswith("CannotPullContainerError: ")
    assert "not found" in pull.error


def test_a_container_runs_as_the_user_its_definition_names(buildah_store: Path, tmp_path: Path) -> None:
    from local_ground.tasks.task import container_specs
    from pipeline.images.container import ContainerProcess
    from tests.images import build as test_images

    image = test_images.build_test_image("healthy")
    definition = SimpleNamespace(container_definitions=[{"name": "model", "image": image.tag, "user": "65534:65534"}])
    runtime = Runtime(TimeScale(1), TargetGroups(), ProcessRegistry(), Front(), tmp_path, "123456789012", "us-east-1")
    [(spec, pull)] = container_specs(definition, runtime.pull_of)
    assert spec.user == "65534:65534"
    container = ContainerProcess(
        spec, "user-test", tmp_path / "user-test.log", creds=pull.creds, tls_verify=pull.tls_verify
    )
    container.pull()
    container.start({"PORT": "18099"})
    try:
        assert container.wait_started(30)
        from pipeline.images.container import descendants

        def server_uid() -> str | None:  # the model server's process, under buildah's chroot helpers
            for pid in descendants(container.pid or 0):
                try:
                    if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"/bin/busybox\x00httpd"):
                        status = Path(f"/proc/{pid}/status").read_text()
                        return next(line.split()[1] for line in status.splitlines() if line.startswith("Uid:"))
                except OSError:
                    continue
            return None

        deadline = time.monotonic() + 10
        while (uid := server_uid()) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert uid == "65534"  # on today's ground the model server ran as root
    finally:
        container.kill()
        container.remove()


def _run_to_exit(spec: Any, tmp_path: Path, name: str) -> Any:
    from pipeline.images.container import ContainerProcess

    container = ContainerProcess(spec, name, tmp_path / f"{name}.log")
    container.pull()
    container.start({})
    deadline = time.monotonic() + 30
    while container.exit_code() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    return container


def _mounts_below(folder: Path) -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if str(folder) in line]


@pytest.mark.parametrize("read_only", [True, False])
def test_a_read_only_root_refuses_writes_as_readonlyrootfilesystem_does(
    buildah_store: Path, tmp_path: Path, read_only: bool
) -> None:
    from pipeline.images.container import ContainerSpec, read_only_mounts
    from tests.images import build as test_images

    image = test_images.build_test_image("healthy")
    writes = ["/bin/busybox", "sh", "-c", "echo warm > /model-cache"]
    spec = ContainerSpec("model", image.tag, entry_point=writes, read_only_root=read_only)
    before = _mounts_below(buildah_store)
    container = _run_to_exit(spec, tmp_path, f"ro-{read_only}")
    try:
        if read_only:
            assert container.exit_code() == 1
            assert "can't create /model-cache: Read-only file system" in container.output()
        else:
            assert container.exit_code() == 0
    finally:
        container.remove()
    assert read_only_mounts() == set()
    assert _mounts_below(buildah_store) == before  # the read-only bind mount went with the container


@pytest.mark.parametrize("memory_mib", [256, None])
def test_a_container_past_its_memory_is_killed_by_the_oom_killer(
    buildah_store: Path, tmp_path: Path, memory_mib: int | None
) -> None:
    from pipeline.images.container import ContainerSpec
    from tests.images import build as test_images

    image = test_images.build_test_image("healthy")
    loads = ["/bin/busybox", "sh", "-c", "/bin/busybox dd if=/dev/zero of=/dev/null bs=600M count=1"]  # a 600 MB buffer
    spec = ContainerSpec("model", image.tag, entry_point=loads, memory_mib=memory_mib)
    container = _run_to_exit(spec, tmp_path, f"mem-{memory_mib}")
    try:
        if memory_mib is not None:
            assert (container.exit_code(), container.oom_killed()) == (137, True)
        else:
            assert (container.exit_code(), container.oom_killed()) == (0, False)
    finally:
        container.remove()


def test_a_tasks_containers_share_its_cpu_cap_each_with_its_share(buildah_store: Path, tmp_path: Path) -> None:
    """Fargate caps the task's cpu, not each container's: two busy containers of a 256-unit task are held
    together to a quarter of a cpu, and each container's `cpu` is its relative share inside that cap."""
    from pipeline.images.container import ContainerProcess, ContainerSpec
    from tests.images import build as test_images

    image = test_images.build_test_image("healthy")
    busy = ["/bin/busybox", "sh", "-c", "while :; do :; done & /bin/busybox sleep 1; kill $!"]  # 1 s of spinning
    task = f"ecs-{uuid.uuid4().hex[:12]}"
    containers = [
        ContainerProcess(
            ContainerSpec(name, image.tag, entry_point=busy, task_cpu=256, cpu_shares=shares),
            f"{task}-{name}",
            tmp_path / f"{name}.log",
            cpu_group=task,
        )
        for name, shares in (("model", 192), ("sidecar", 64))
    ]
    try:
        for container in containers:
            container.pull()
            container.start({})
        deadline = time.monotonic() + 30
        while any(c.exit_code() is None for c in containers) and time.monotonic() < deadline:
            time.sleep(0.05)
        model, sidecar = containers
        assert model.exit_code() is not None and sidecar.exit_code() is not None
        assert model.cpu_cgroup is not None and sidecar.cpu_cgroup is not None
        group = model.cpu_cgroup.parent
        assert sidecar.cpu_cgroup.parent == group and group.name == task  # one group for the task
        assert (group / "cpu.cfs_quota_us").read_text().strip() == "25000"  # 256/1024 of each 100 ms period
        for container, shares in ((model, "192"), (sidecar, "64")):
            assert container.cpu_cgroup is not None
            assert (container.cpu_cgroup / "cpu.cfs_quota_us").read_text().strip() == "-1"  # no cap of its own
            assert (container.cpu_cgroup / "cpu.shares").read_text().strip() == shares
        assert model.task_cpu_stat()["nr_throttled"] > 0  # the kernel held the two together to the task's quota
        model.remove()
        assert group.is_dir()  # the sidecar still runs in the task's group
        sidecar.remove()
        assert not group.exists()  # the task's group went with its last container
    finally:
        for container in containers:
            container.remove()


@pytest.mark.parametrize("task_cpu", [256, None])
def test_a_task_past_its_cpu_is_throttled_as_fargate_caps_it(
    buildah_store: Path, tmp_path: Path, task_cpu: int | None
) -> None:
    """Fargate's task cpu is a hard cap: 256 units are a quarter of a cpu, however idle the host is."""
    from pipeline.images.container import ContainerSpec
    from tests.images import build as test_images

    image = test_images.build_test_image("healthy")
    busy = ["/bin/busybox", "sh", "-c", "while :; do :; done & /bin/busybox sleep 0.5; kill $!"]  # 0.5 s of spinning
    spec = ContainerSpec("model", image.tag, entry_point=busy, task_cpu=task_cpu, cpu_shares=128 if task_cpu else None)
    container = _run_to_exit(spec, tmp_path, f"cpu-{task_cpu}")
    try:
        assert container.exit_code() is not None
        throttled = container.cpu_stat().get("nr_throttled", 0)
        if task_cpu is not None:
            assert throttled > 0  # the kernel held it to its quota (today: it ran unbounded)
        else:
            assert throttled == 0 and container.cpu_stat() == {}  # no cpu limit: no cgroup, nothing held back
    finally:
        container.remove()
