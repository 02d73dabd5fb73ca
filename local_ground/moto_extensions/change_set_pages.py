"""change_sets_described_in_pages: DescribeChangeSet lists a large change set's Changes in pages,
each answer with a NextToken until the last, as CloudFormation does.

AWS: DescribeChangeSet "NextToken: If the output exceeds 1 MB, a string that identifies the next page
of changes" (https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_DescribeChangeSet.html).
A reader that takes the first answer only misses changes. moto 5.2.5 ignores NextToken and answers
every change at once. Pages here hold `page_size` changes: smaller than AWS's 1 MB, so every change set
of a real service stack spans pages and a reader that stops early fails here (stricter, never more
lenient). The backend is left whole: only the API answer is paged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from moto.cloudformation.responses import CloudFormationResponse
from moto.core.responses import ActionResult

from ._base import Extension, Patch


class _Page:
    """One page of a change set: its own `changes` and `next_token`, everything else from the change set."""

    def __init__(self, change_set: Any, changes: list[Any], next_token: str | None) -> None:
        self._change_set = change_set
        self.changes = changes
        self.next_token = next_token

    def __getattr__(self, name: str) -> Any:
        return getattr(self._change_set, name)


class ChangeSetsDescribedInPages(Extension):
    name = "change_sets_described_in_pages"
    page_size: ClassVar[int] = 10

    def patches(self) -> Iterable[Patch]:
        page_size = self.page_size

        def describe_change_set(response: CloudFormationResponse) -> ActionResult:
            change_set = response.cloudformation_backend.describe_change_set(
                change_set_name=response._get_param("ChangeSetName")
            )
            token = response._get_param("NextToken")
            start = int(token) if token and token.isdigit() else 0
            changes = list(change_set.changes)
            end = start + page_size
            return ActionResult(_Page(change_set, changes[start:end], str(end) if end < len(changes) else None))

        yield CloudFormationResponse, "describe_change_set", describe_change_set
