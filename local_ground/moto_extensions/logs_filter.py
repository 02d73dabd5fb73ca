"""filter_log_events_honours_stream_prefix: FilterLogEvents with ``logStreamNamePrefix`` searches only
the streams whose names start with it, and a request that gives both ``logStreamNames`` and
``logStreamNamePrefix`` is refused with InvalidParameterException. AWS: CloudWatch Logs API reference,
FilterLogEvents ("logStreamNamePrefix: Filters the results to include only events from log streams
that have names starting with this prefix. If you specify a value for both logStreamNamePrefix and
logStreamNames, the action returns an InvalidParameterException error."). moto 5.2.5 ignores the
prefix and returns every stream's events, so `pipeline logs` would show other containers' lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from moto.logs.exceptions import InvalidParameterException, ResourceNotFoundException
from moto.logs.responses import LogsResponse

from ._base import Extension, Patch


class FilterLogEventsHonoursStreamPrefix(Extension):
    name = "filter_log_events_honours_stream_prefix"

    def patches(self) -> Iterable[Patch]:
        original = LogsResponse.filter_log_events

        def filter_log_events(response: LogsResponse) -> str:
            prefix = response._get_param("logStreamNamePrefix")
            if prefix is None:
                return original(response)
            if response._get_param("logStreamNames"):
                raise InvalidParameterException("Cannot specify both logStreamNames and logStreamNamePrefix")
            group_name = response._get_param("logGroupName")
            group = response.logs_backend.groups.get(group_name)
            if group is None:
                raise ResourceNotFoundException()
            names = [name for name in group.streams if name.startswith(prefix)]
            if not names:  # moto reads an empty list as "every stream"
                return json.dumps({"events": [], "searchedLogStreams": []})
            events, next_token, searched = response.logs_backend.filter_log_events(
                group_name,
                names,
                response._get_param("startTime"),
                response._get_param("endTime"),
                response._get_param("limit"),
                response._get_param("nextToken"),
                response._get_param("filterPattern"),
                response._get_param("interleaved", False),
            )
            return json.dumps({"events": events, "nextToken": next_token, "searchedLogStreams": searched})

        yield LogsResponse, "filter_log_events", filter_log_events
