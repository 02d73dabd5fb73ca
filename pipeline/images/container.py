"""One container run for real from an image: `buildah from` (pulling it when needed), `buildah run
--isolation chroot` on the host network, stopped as ECS stops a task (SIGTERM, stop timeout, SIGKILL),
then removed. The pre-push image check and the local AWS's tasks both run images through this.

Measured with buildah 1.28: SIGTERM to the `buildah run` process does not reach the container, buildah
kills it outright ("subprocess exited on terminated"), so a graceful stop signals the container's own
main process (the first process below `buildah run` that is not buildah's), as ECS signals PID 1.
`buildah run` exits with the container's exit code, or 1 after a signal (then read from its output).

Limits ECS applies, as far as this host lets them be applied (measured with buildah 1.28, cgroup v1, root):
- `read_only_root` (ReadonlyRootFilesystem): `buildah run` has no --read-only; the working container's root
  (a plain directory with the vfs driver) is bind-mounted read-only over itself, after creating the mount
  points buildah needs (/dev, /proc, /sys, /etc/hosts, /etc/hostname, /etc/resolv.conf, /run/.containerenv).
  buildah then panics in its cleanup (exit 2) after printing the container's status, which is read instead.
- `memory_mib` (the container's or task's memory): `buildah run` has no --memory and chroot isolation no
  cgroup; the run goes into a memory cgroup of its own (v1, below this process's) with that limit, so the
  kernel kills past it (the OOM killer, exit 137; `oom_killed()` reads memory.oom_control). buildah's own
  process and its chroot helpers (about 65 MB measured) are counted too, so the limit is slightly stricter than on Fargate.
- `task_cpu` / `cpu_shares` (the task's and the container's `cpu`): on Fargate the task's cpu units (1024 = one
  vCPU) cap the whole task, and a container's cpu is its relative share of it (ECS developer guide, "Task CPU
  and memory"; ContainerDefinition `cpu`: docker's --cpu-shares). The run goes into a cpu cgroup (v1) of its
  task (`cpu_group`, below this process's own) whose CFS quota is task_cpu/1024 of each period, and a group
  of its own in it with the container's cpu as cpu.shares, so the kernel throttles the task past its cpu.
The container health check is run by the local ground (local_ground/tasks/container_health.py) through `exec`.
"""

from __future__ import annotations

import atexit
import errno
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import ContainerError, PushError
from pipeline.images import buildah
from pipeline.images.auth import registry_host, split_creds

_POLL = 0.01  # bounded polling of real processes only
# Read-only roots this process mounted and has not unmounted yet: a container whose remove() never ran
# (a launch cut short as the process ends) would otherwise leave its mount behind on the host.
_MOUNTED: set[Path] = set()
_MOUNTED_LOCK = threading.Lock()
# Go's names for the signals that end a container, as `buildah run` reports them.
_SIGNALS = {
    "terminated": signal.SIGTERM,
    "killed": signal.SIGKILL,
    "interrupt": signal.SIGINT,
    "hangup": signal.SIGHUP,
    "aborted": signal.SIGABRT,
    "segmentation fault": signal.SIGSEGV,
}


def free_port() -> int:
    """A free 127.0.0.1 port (for a container's $PORT, or a local server)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class ContainerSpec:
    """What a task definition's container definition asks for, with the image already pullable here."""

    name: str
    image: str
    environment: Mapping[str, str] = field(default_factory=dict)
    entry_point: Sequence[str] | None = None
    command: Sequence[str] | None = None
    essential: bool = True
    user: str | None = None  # the container definition's `user` (buildah run --user)
    read_only_root: bool = False  # readonlyRootFilesystem
    memory_mib: int | None = None  # the hard memory limit: the container's `memory`, else the task's
    task_cpu: int | None = None  # the task's cpu units: a hard cap for the whole task (Fargate)
    cpu_shares: int | None = None  # the container's cpu units: its relative share within the task


def children(pid: int) -> list[int]:
    """Children of every thread: Go programs such as buildah fork from any of their threads."""
    found: list[int] = []
    try:
        threads = list(Path(f"/proc/{pid}/task").glob("*"))
    except OSError:  # the process ended between the check and the listing (glob lets that through)
        return found
    for thread in threads:
        try:
            found += [int(p) for p in (thread / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        for child in children(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def _is_buildah(pid: int) -> bool:
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0]
    except OSError:
        return True
    return os.path.basename(argv0).startswith(b"buildah")


class ContainerProcess:
    """One working container and its `buildah run` process."""

    def __init__(
        self,
        spec: ContainerSpec,
        working_name: str,
        log_path: Path,
        creds: str | None = None,
        tls_verify: bool = True,
        cpu_group: str | None = None,
    ) -> None:
        """`creds` (`user:password`) reach buildah through a private auth file, never its arguments.
        `cpu_group` names the cpu cgroup a task's containers share (its cpu caps them together); by default
        the container's own."""
        self.spec = spec
        self.working_name = working_name
        self._cpu_group = cpu_group or working_name
        self.log_path = log_path
        self._creds = creds
        self._tls_verify = tls_verify
        self._process: subprocess.Popen[bytes] | None = None
        self._created = False
        self._read_only_root: Path | None = None  # the root bind-mounted read-only, unmounted on remove
        self._cgroup: Path | None = None  # the run's memory cgroup
        self._cpu_cgroup: Path | None = None  # the run's cpu cgroup (below its task's)
        self._environment: dict[str, str] = {}  # what the run got with --env, for `exec`
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def pull(self) -> None:
        """`buildah from`: pull the image if missing and make the working container."""
        command = buildah.global_args() + [
            "from",
            "--name",
            self.working_name,
            f"--tls-verify={'true' if self._tls_verify else 'false'}",
        ]
        if not self._creds:
            self._from(command)
            return
        username, password = split_creds(self._creds)
        try:
            with buildah.login(registry_host(self.spec.image), username, password, self._tls_verify) as authfile:
                self._from(command + ["--authfile", str(authfile)])
        except PushError as error:  # the login itself was refused
            raise ContainerError(f"CannotPullContainerError: {error}") from None

    def _from(self, command: list[str]) -> None:
        done = subprocess.run(
            command + [self.spec.image],
            capture_output=True,
            text=True,
            env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
            check=False,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise ContainerError(f"CannotPullContainerError: {lines[-1] if lines else 'pull failed'}")
        self._created = True
        if self.spec.read_only_root:
            self._mount_root_read_only()

    def _mount_root_read_only(self) -> None:
        mounted = subprocess.run(
            buildah.global_args() + ["mount", self.working_name], capture_output=True, text=True, check=False
        )
        root = Path(mounted.stdout.strip())
        if mounted.returncode != 0 or not root.is_dir():
            raise ContainerError(f"CannotStartContainerError: no root filesystem for {self.spec.name}")
        for folder in ("dev", "proc", "sys", "etc", "run"):
            (root / folder).mkdir(exist_ok=True)
        for file in ("etc/hosts", "etc/hostname", "etc/resolv.conf", "run/.containerenv"):
            (root / file).touch(exist_ok=True)
        for options in (["--bind"], ["-o", "remount,ro,bind"]):
            done = subprocess.run(
                ["mount", *options, str(root), str(root)], capture_output=True, text=True, check=False
            )
            if done.returncode != 0:
                raise ContainerError(f"CannotStartContainerError: read-only root: {done.stderr.strip()}")
            self._read_only_root = root
            with _MOUNTED_LOCK:
                _MOUNTED.add(root)

    def set_secret_environment(self, values: Mapping[str, str]) -> None:
        """Secrets into the working container's environment, never onto a command line: `buildah config
        --env NAME` takes NAME's value from its own environment. Call after pull(), before start()."""
        if not values:
            return
        command = buildah.global_args() + ["config"]
        for name in sorted(values):
            command += ["--env", name]
        done = subprocess.run(
            command + [self.working_name],
            capture_output=True,
            text=True,
            env={**os.environ, **values, "BUILDAH_ISOLATION": "chroot"},
            check=False,
        )
        if done.returncode != 0:
            lines = [line for line in done.stderr.splitlines() if line.strip()]
            raise ContainerError(f"CannotStartContainerError: {lines[-1] if lines else 'secrets not set'}")

    def argv(self) -> list[str]:
        """ECS semantics: entryPoint/command override the image's ENTRYPOINT/CMD (buildah run applies neither)."""
        config = buildah.inspect_config(self.spec.image)
        entry = list(self.spec.entry_point) if self.spec.entry_point is not None else list(config["Entrypoint"])
        if self.spec.command is not None:
            cmd = list(self.spec.command)
        else:
            cmd = [] if self.spec.entry_point is not None else list(config["Cmd"])
        if not entry + cmd:
            raise ContainerError(f"CannotStartContainerError: no command for container {self.spec.name}")
        return entry + cmd

    def start(self, environment: Mapping[str, str]) -> None:
        """Run the container on the host network; returns at once (the process is registered by the caller)."""
        argv = self.argv()
        self._environment = {**self.spec.environment, **environment}
        command = self._run_command(argv)
        if self.spec.memory_mib is not None:
            self._cgroup = memory_cgroup(self.working_name, self.spec.memory_mib)
        if self.spec.task_cpu or self.spec.cpu_shares:
            self._cpu_cgroup = cpu_cgroup(self._cpu_group, self.working_name, self.spec.task_cpu, self.spec.cpu_shares)
        groups = [str(group) for group in (self._cgroup, self._cpu_cgroup) if group is not None]
        if groups:
            # The shell joins the cgroups, then becomes buildah: everything the run starts is inside from the start.
            joins = "".join(f'echo $$ > "${n}/cgroup.procs" && ' for n in range(1, len(groups) + 1))
            command = ["/bin/sh", "-c", f'{joins}shift {len(groups)} && exec "$@"', "sh", *groups, *command]
        with self._lock, open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
                start_new_session=True,
            )

    def _run_command(self, argv: Sequence[str]) -> list[str]:
        command = buildah.global_args() + ["run", "--isolation", "chroot"]
        if self.spec.user:
            command += ["--user", self.spec.user]
        for key, value in self._environment.items():
            command += ["--env", f"{key}={value}"]
        return command + [self.working_name, "--", *argv]

    def exec(self, argv: Sequence[str], timeout: float) -> int | None:
        """Run `argv` inside the running container as its user, with its environment (as `docker exec` runs a
        health check); its exit code, or None when it ran past `timeout` (it is then killed)."""
        with tempfile.TemporaryFile() as output:
            process = subprocess.Popen(
                self._run_command(argv),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
                start_new_session=True,
            )
            try:
                code = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_tree(process)
                return None

            def printed() -> str:
                output.seek(0)
                return output.read().decode(errors="replace")

            return _container_status(code, printed)

    def main_pid(self) -> int | None:
        """The container's own first process (ECS's PID 1), once buildah has started it."""
        if self._process is None:
            return None
        return next((p for p in descendants(self._process.pid) if not _is_buildah(p)), None)

    def wait_started(self, timeout: float) -> bool:
        """Bounded wait until the container's process runs (False: it exited or never appeared)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.exit_code() is not None:
                return False
            if self.main_pid() is not None:
                return True
            time.sleep(_POLL)
        return False

    def exit_code(self) -> int | None:
        """None while running; else the container's exit code (128+signal when a signal ended it)."""
        if self._process is None:
            return None
        code = self._process.poll()
        if code is None:
            return None
        status = _container_status(code, self.output)
        if status == code and code in (1, 2) and self.oom_killed():
            # The OOM killer took one of buildah's own processes of the run (its chroot helper, under
            # load), so buildah reports its own failure: the run ended as an OOM kill (Docker: 137, OOMKilled).
            return 128 + int(signal.SIGKILL)
        return status

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer ended a process of this run (its memory limit was reached)."""
        if self._cgroup is None:
            return False
        try:
            control = (self._cgroup / "memory.oom_control").read_text()
        except OSError:
            return False
        for line in control.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return value.strip() != "0"
        return False

    @property
    def cpu_cgroup(self) -> Path | None:
        """The run's cpu cgroup (v1): inside its task's group, or the task's group itself when the run is
        alone in it; None without a cpu limit."""
        return self._cpu_cgroup

    def cpu_stat(self) -> dict[str, int]:
        """The run's cpu.stat (nr_periods, nr_throttled, throttled_time ns): how often its cpu held it back;
        empty without a cpu limit."""
        return _cpu_stat(self._cpu_cgroup)

    def task_cpu_stat(self) -> dict[str, int]:
        """The cpu.stat of the task's group, whose quota caps all the task's containers together."""
        group = self._cpu_cgroup
        return _cpu_stat(group.parent if group is not None and group.name != self._cpu_group else group)

    def app_output(self) -> str:
        """What the container itself wrote: the output up to buildah's own report of how it ended (after
        which come buildah's lines: its exit status, and with a read-only root its cleanup panic)."""
        text = self.output()
        cuts = [i for i in (text.find("subprocess exited"), text.find("panic: runtime error")) if i >= 0]
        return text[: min(cuts)] if cuts else text

    def output(self, limit: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-limit:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self, stop_timeout: float) -> int | None:
        """SIGTERM to the container's main process, up to `stop_timeout` to exit, then SIGKILL."""
        process = self._process
        if process is None or process.poll() is not None:
            return self.exit_code()
        main = self.main_pid()
        try:
            os.kill(main if main is not None else process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.exit_code()

    def kill(self) -> None:
        """SIGKILL everything under `buildah run`, then the process itself; waits for it (bounded)."""
        try:
            if self._process is not None:
                _kill_tree(self._process)
        finally:
            self._remove_cgroups()  # a killed task is not always removed (the ground's uninstall)

    def _remove_cgroups(self) -> None:
        """Remove the run's cgroups (empty once it ended); a task's cpu group goes with its last container."""
        # Read each group once: kill() and remove() may run at once (a task stopped while the ground
        # uninstalls), and the other may clear the attribute while _rmdir waits for the group to empty.
        memory, cpu = self._cgroup, self._cpu_cgroup
        if memory is not None and _rmdir(memory):
            self._cgroup = None
        if cpu is not None and _rmdir(cpu):
            if cpu.parent.name == self._cpu_group:
                _rmdir(cpu.parent, wait=0)  # refused while another container of the task is in it
            self._cpu_cgroup = None

    def remove(self) -> None:
        """Remove the working container (the pulled image stays, as on a container instance)."""
        if self._read_only_root is not None:
            _unmount(self._read_only_root)
            self._read_only_root = None
        self._remove_cgroups()
        if not self._created:
            return
        subprocess.run(buildah.global_args() + ["rm", self.working_name], capture_output=True, check=False)
        self._created = False


def _container_status(code: int, output: Callable[[], str]) -> int:
    """The container's exit code from `buildah run`'s (128+signal when a signal ended it), reading its
    `output` when buildah's own code hides the container's."""
    if code < 0:  # buildah itself was killed by a signal (e.g. the OOM killer): so was the container
        return 128 - code
    if code in (1, 2):  # buildah's own failures: 1 after a signal, 2 its cleanup panic (read-only root)
        printed = output()
        for name, number in _SIGNALS.items():
            if f"subprocess exited on {name}" in printed:
                return 128 + int(number)
        status = _STATUS.findall(printed)
        if code == 2 and status:  # the container's own status, printed before the panic
            return int(status[0])
        if code == 2 and "panic: runtime error" in printed:  # the panic alone: buildah prints no status 0
            return 0
    return code


def _kill_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL everything under a `buildah run`, then the process itself; waits for it (bounded)."""
    if process.poll() is not None:
        return
    for pid in reversed(descendants(process.pid)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def _rmdir(group: Path, wait: float = 2.0) -> bool:
    """Remove a cgroup once empty: the processes of a run just killed take a moment to leave it (bounded)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            group.rmdir()
        except FileNotFoundError:
            return True
        except OSError as error:
            if error.errno != errno.EBUSY or time.monotonic() > deadline:
                return False
            time.sleep(_POLL)
            continue
        return True


def _unmount(root: Path) -> None:
    subprocess.run(["umount", str(root)], capture_output=True, check=False)
    with _MOUNTED_LOCK:
        _MOUNTED.discard(root)


@atexit.register
def _unmount_leftovers() -> None:
    for root in list(_MOUNTED):
        _unmount(root)


def read_only_mounts() -> set[Path]:
    """The read-only roots still mounted by this process (none once every container is removed)."""
    with _MOUNTED_LOCK:
        return set(_MOUNTED)


_STATUS = re.compile(r"subprocess exited with status (\d+)")
CGROUP_MEMORY = Path("/sys/fs/cgroup/memory")


def memory_cgroup(name: str, memory_mib: int) -> Path:
    """A memory cgroup (v1) below this process's own, limited to `memory_mib` (swap included)."""
    own = next(
        (line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines() if ":memory:" in line),
        None,
    )
    if own is None or not CGROUP_MEMORY.is_dir():
        raise ContainerError("CannotStartContainerError: no memory cgroup (v1) to apply the memory limit")
    group = CGROUP_MEMORY / own.lstrip("/") / name
    try:
        group.mkdir(exist_ok=True)
        limit = str(memory_mib * 1024 * 1024)
        (group / "memory.limit_in_bytes").write_text(limit)
        memsw = group / "memory.memsw.limit_in_bytes"
        if memsw.exists():
            memsw.write_text(limit)
    except OSError as error:
        raise ContainerError(f"CannotStartContainerError: memory limit: {error}") from None
    return group


CGROUP_CPU = Path("/sys/fs/cgroup/cpu")
CFS_PERIOD_US = 100_000  # the kernel's default CFS period


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup (v1) in the hierarchy holding `controller` (it may be mounted with others)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


def _cpu_stat(group: Path | None) -> dict[str, int]:
    if group is None:
        return {}
    try:
        lines = (group / "cpu.stat").read_text().splitlines()
    except OSError:
        return {}
    return {key: int(value) for key, _, value in (line.partition(" ") for line in lines) if value.isdigit()}


def cpu_cgroup(task_group: str, name: str, task_cpu: int | None, cpu_shares: int | None) -> Path:
    """A cpu cgroup (v1) `name` inside the task's `task_group` (below this process's own): the task's cpu units
    as the task group's CFS quota (1024 units = one cpu's whole period), the container's as its cpu.shares."""
    own = _own_cgroup("cpu")
    if own is None or not CGROUP_CPU.is_dir():
        raise ContainerError("CannotStartContainerError: no cpu cgroup (v1) to apply the cpu limit")
    task = CGROUP_CPU / own.lstrip("/") / task_group
    group = task / name if name != task_group else task
    try:
        task.mkdir(exist_ok=True)
        if task_cpu:
            (task / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (task / "cpu.cfs_quota_us").write_text(str(max(1000, task_cpu * CFS_PERIOD_US // 1024)))
        group.mkdir(exist_ok=True)
        if cpu_shares:
            (group / "cpu.shares").write_text(str(max(2, cpu_shares)))  # the kernel's least share is 2
    except OSError as error:
        raise ContainerError(f"CannotStartContainerError: cpu limit: {error}") from None
    return group
