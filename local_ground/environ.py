"""Process environment set for the length of a block, then put back as it was.

The demo and the benchmarks point boto3 and PyGithub at the local ground through the same
variables a user would export; this restores them afterwards so nothing leaks past the ground's life.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager


@contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
