"""The awslogs log driver: what a task's container writes to stdout and stderr becomes CloudWatch Logs
events in the group its `logConfiguration` names, stream `PREFIX/CONTAINER/TASK-ID`.

AWS ("Send Amazon ECS logs to CloudWatch", awslogs-stream-prefix: "the log stream name format is
prefix-name/container-name/ecs-task-id"). The stream is created when the container starts; a group
that does not exist fails the task before its containers run ("ResourceInitializationError: failed
to validate logger args: ... The specified log group does not exist") unless `awslogs-create-group`
is "true". Lines are shipped as the container writes them (the driver buffers a few seconds on
AWS; here a short poll of the container's output file).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from moto.logs.exceptions import ResourceAlreadyExistsException
from moto.logs.models import logs_backends

from pipeline.images.container import ContainerError

SHIP_INTERVAL = 0.1  # seconds between reads of the container's output
MAX_EVENT_BYTES = 256 * 1024 - 26  # CloudWatch Logs' event size limit (with its 26-byte overhead)


@dataclass(frozen=True)
class AwsLogsTarget:
    account_id: str
    region: str
    group: str
    stream: str
    create_group: bool

    @classmethod
    def of(cls, definition: dict[str, Any], task_id: str, account_id: str, region: str) -> AwsLogsTarget | None:
        """The awslogs target of one container definition, or None when it uses another driver."""
        config = definition.get("logConfiguration") or {}
        if config.get("logDriver") != "awslogs":
            return None
        options = config.get("options") or {}
        prefix = options.get("awslogs-stream-prefix")
        stream = f"{prefix}/{definition['name']}/{task_id}" if prefix else f"{definition['name']}-{task_id}"
        return cls(
            account_id,
            options.get("awslogs-region") or region,
            options.get("awslogs-group", ""),
            stream,
            str(options.get("awslogs-create-group", "")).lower() == "true",
        )


class AwsLogsShipper:
    """Tails one container's output file into its CloudWatch Logs stream until stopped."""

    def __init__(self, target: AwsLogsTarget, source: Path) -> None:
        self.target = target
        self.source = source
        self._offset = 0
        self._partial = b""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Create the stream (and the group when asked to), as the driver does before the container runs."""
        backend = logs_backends[self.target.account_id][self.target.region]
        if self.target.group not in backend.groups:
            if not self.target.create_group:
                raise ContainerError(
                    "ResourceInitializationError: failed to validate logger args: create stream has been retried "
                    "1 times: failed to create Cloudwatch log stream: ResourceNotFoundException: The specified "
                    "log group does not exist. : exit status 1"
                )
            try:
                backend.create_log_group(self.target.group, {})
            except ResourceAlreadyExistsException:
                pass
        try:
            backend.create_log_stream(self.target.group, self.target.stream)
        except ResourceAlreadyExistsException:
            pass

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"awslogs-{self.target.stream[-12:]}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Ship what is left (the container has exited) and end the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._ship(final=True)

    def _run(self) -> None:
        while not self._stop.wait(SHIP_INTERVAL):
            self._ship()

    def _ship(self, final: bool = False) -> None:
        try:
            with self.source.open("rb") as log:
                log.seek(self._offset)
                data = log.read()
        except OSError:
            return
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = b"" if final else lines.pop()
        now = int(time.time() * 1000)
        events = [
            {"timestamp": now, "message": line.decode(errors="replace")[:MAX_EVENT_BYTES]}
            for line in lines
            if line.strip()
        ]
        if not events:
            return
        backend = logs_backends[self.target.account_id][self.target.region]
        group = backend.groups.get(self.target.group)
        if group is None or self.target.stream not in group.streams:
            return  # the stack (and its log group) was deleted under a running task: the driver drops lines
        backend.put_log_events(self.target.group, self.target.stream, events)
