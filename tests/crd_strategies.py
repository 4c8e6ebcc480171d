"""Hypothesis strategies for objects a CRD's structural schema accepts.

hypothesis-jsonschema would be the library for this, but its last release (0.23.1) uses
Hypothesis internals that Hypothesis 6.1xx removed. Structural schemas (what Kubernetes requires
of a CRD) use a small part of JSON Schema, so this covers exactly that part: object properties
and required keys, arrays, enums, patterns, lengths, numeric bounds, int-or-string, and
preserve-unknown-fields. CEL rules are not applied: generated objects are a superset of what the
API server admits, which only makes a "never raises" property stronger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hypothesis import strategies as st

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
DATE_TIME = st.datetimes(min_value=datetime(1970, 1, 1)).map(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"))


GO_DURATIONS = st.builds(
    lambda n, unit: f"{n}{unit}",
    st.one_of(st.integers(0, 120), st.integers(0, 10**15)),
    st.sampled_from(["ms", "s", "m", "h"]),
)
"""Go-style durations of every magnitude (a random digit string is rarely absurdly long, and
absurd lengths are what break date arithmetic)."""


def from_crd_schema(schema: dict[str, Any], max_items: int = 3) -> st.SearchStrategy[Any]:
    """Values the structural schema accepts (up to `max_items` per array or map)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if schema.get("x-kubernetes-int-or-string"):
        return st.integers(min_value=-10, max_value=10**6) | _string(schema)
    kind = schema.get("type")
    if kind == "object":
        return _object(schema, max_items)
    if kind == "array":
        items = from_crd_schema(schema.get("items") or {}, max_items)
        low = int(schema.get("minItems", 0))
        high = min(int(schema.get("maxItems", max_items)), max(low, max_items))
        return st.lists(items, min_size=low, max_size=high)
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(
            min_value=schema.get("minimum"),
            max_value=schema.get("maximum"),
            allow_nan=False,
            allow_infinity=False,
        )
    if kind == "boolean":
        return st.booleans()
    return ANY_JSON


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    if schema.get("format") == "date-time":
        return DATE_TIME
    low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
    if "pattern" in schema:
        strings = st.from_regex(schema["pattern"], fullmatch=True)
        if "(ms|s|m|h)" in schema["pattern"]:
            strings = GO_DURATIONS | strings
        return strings.filter(lambda s: low <= len(s) <= (high if high is not None else len(s)))
    return st.text(min_size=low, max_size=min(int(high), 40) if high is not None else 40)


def _object(schema: dict[str, Any], max_items: int) -> st.SearchStrategy[dict[str, Any]]:
    properties = schema.get("properties") or {}
    if not properties:
        values = schema.get("additionalProperties")
        if isinstance(values, dict):
            return st.dictionaries(
                st.text(min_size=1, max_size=12), from_crd_schema(values, max_items), max_size=max_items
            )
        return st.dictionaries(st.text(max_size=8), ANY_JSON, max_size=max_items)
    required = set(schema.get("required") or ())
    return st.fixed_dictionaries(
        {k: from_crd_schema(v, max_items) for k, v in properties.items() if k in required},
        optional={k: from_crd_schema(v, max_items) for k, v in properties.items() if k not in required},
    )
