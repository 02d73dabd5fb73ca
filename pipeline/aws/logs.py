"""CloudWatch Logs calls `pipeline logs` makes, with plain data out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.aws.clients import aws_call


@dataclass(frozen=True)
class LogEvent:
    event_id: str
    timestamp: int  # milliseconds since the epoch, as CloudWatch Logs stores it
    stream: str
    message: str


def filter_events(logs: Any, group: str, stream_prefix: str, start_ms: int) -> list[LogEvent]:
    """Every event of the streams starting with `stream_prefix` from `start_ms` on, oldest first."""
    args: dict[str, Any] = {"logGroupName": group, "logStreamNamePrefix": stream_prefix, "startTime": start_ms}
    events: list[LogEvent] = []
    with aws_call(f"read log group {group}", hint="Check that the environment is deployed and its log group exists."):
        while True:
            page = logs.filter_log_events(**args)
            events += [
                LogEvent(str(e.get("eventId", "")), int(e["timestamp"]), e.get("logStreamName", ""), e["message"])
                for e in page.get("events", [])
            ]
            token = page.get("nextToken")
            if not token or token == args.get("nextToken"):
                break
            args["nextToken"] = token
    events.sort(key=lambda e: (e.timestamp, e.event_id))
    return events
