"""templates_parsed_once: not an AWS behaviour, a speed-up that changes none.

moto 5.2.5 parses a template's YAML with PyYAML's pure-Python loader every time it looks at a stack or a
change set: creating one change set parses the same text four to six times (the change set, the stack's
``has_template``, parameter validation, the resolved change list), about 50 ms each for a service template.
This extension parses each distinct text once and hands every caller a deep copy (under 1 ms), so moto
gets the same dict it parsed itself and may change it as before. Errors are not kept: a template that
does not parse raises again, the same way, each time.
"""

from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from moto.cloudformation.models import ChangeSet, Stack

from ._base import Extension, Patch

KEEP = 32  # distinct template texts kept: a few stacks, each with its current and previous template

_lock = threading.Lock()
_parsed: OrderedDict[str, Any] = OrderedDict()


# moto's own parse (YAML with CloudFormation's short-form tags, else JSON), read before any install replaces it:
# nothing patches moto at import time.
moto_parse: Callable[[str], Any] = Stack.parse_template


def parsed(template: str) -> Any:
    """`moto_parse(template)`, parsed once per distinct text; each caller gets its own copy."""
    with _lock:
        if template in _parsed:
            _parsed.move_to_end(template)
            return copy.deepcopy(_parsed[template])
    result = moto_parse(template)  # outside the lock: two threads may parse one text, never wait on each other
    with _lock:
        _parsed[template] = result
        while len(_parsed) > KEEP:
            _parsed.popitem(last=False)
    return copy.deepcopy(result)


class TemplatesParsedOnce(Extension):
    name = "templates_parsed_once"

    def patches(self) -> Iterable[Patch]:
        def change_set_parse(change_set: ChangeSet) -> None:
            change_set.template_dict = parsed(change_set.template)

        yield Stack, "parse_template", staticmethod(parsed)
        yield ChangeSet, "_parse_template", change_set_parse

    def reset(self) -> None:
        with _lock:
            _parsed.clear()
