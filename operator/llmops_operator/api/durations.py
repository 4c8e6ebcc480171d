"""Go-style durations (`30s`, `5m`, `1h30m`): parsing and bounded duration fields.

A duration field is a CEL rule for the API server (which rejects e.g. a pause of `80000000h` at
apply time) mirrored by a pydantic check, so the operator never acts on a value the API server
would refuse.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, Field

DURATION_PATTERN = r"^([0-9]+(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}

MAX_DURATION = timedelta(days=30)
"""Longest duration `parse_duration` accepts; each field has its own, smaller bound."""


def parse_duration(text: str) -> timedelta:
    """'1h30m', '5m', '30s', '500ms' -> timedelta (Go-style, the format users know from kubectl)."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: use e.g. 30s, 5m, 1h30m")
    seconds = sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {text!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def bounded_duration(limit: str) -> Any:
    """A Go-style duration of at most `limit`: a CEL rule for the API server (which rejects e.g.
    a pause of `80000000h` at apply time) mirrored by a pydantic check."""
    maximum = parse_duration(limit)
    message = f"must be a duration such as 30s, 5m or 1h30m, at most {limit}"

    def _check(text: str) -> str:
        try:
            fits = parse_duration(text) <= maximum
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"duration {text[:40]!r} {message}")
        return text

    return Annotated[
        str,
        Field(
            pattern=DURATION_PATTERN,
            max_length=32,
            json_schema_extra={
                "x-kubernetes-validations": [
                    {"rule": f"duration(self) <= duration('{limit}')", "message": message}
                ]
            },
        ),
        AfterValidator(_check),
    ]


Duration = bounded_duration("720h")
"""Any duration up to `MAX_DURATION` (30 days), for fields without a smaller bound of their own."""
