"""Process environment set for the length of a block, then put back as it was; the ground's switches.

The demo and the benchmarks point boto3 and PyGithub at the local ground through the same
variables a user would export; this restores them afterwards so nothing leaks past the ground's life.
The switches live here, not in ground.py, so `pipeline local up --detach` checks them without importing moto.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from pipeline.errors import ConfigError

# `LOCAL_GROUND_IDENTITY=off` runs a whole suite without identity enforcement (it must pass both ways).
IDENTITY_SWITCH = "LOCAL_GROUND_IDENTITY"
_ON = ("on", "1", "true", "yes")
_OFF = ("off", "0", "false", "no")


def identity_enforced(environ: Mapping[str, str]) -> bool:
    """$LOCAL_GROUND_IDENTITY: on (the default) or off (1/true/yes and 0/false/no too). Anything else is
    refused, so a typo never leaves enforcement on while its author believes it off."""
    raw = environ.get(IDENTITY_SWITCH, "")
    text = raw.strip().lower()
    if not text or text in _ON:
        return True
    if text in _OFF:
        return False
    raise ConfigError(
        IDENTITY_SWITCH, f"{raw!r} is neither on nor off", hint="Use off to stop enforcing identity, or unset it."
    )


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
