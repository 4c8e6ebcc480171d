"""Evaluation datasets: JSONL, CSV or inline cases, parsed into one shape and hashed."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from llmops_operator.api.evals import EvalCase
from llmops_operator.hashing import digest

MAX_CASES = 10_000
RESERVED_KEYS = ("id", "vars", "expected", "metadata")


class DatasetError(ValueError):
    """The dataset cannot be used; the message names the line or case."""


@dataclass(frozen=True)
class Case:
    """One case: prompt variables, the reference answer, and anything else the assertions read."""

    id: str
    vars: dict[str, Any] = field(default_factory=dict)
    expected: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def field_value(self, name: str) -> Any:
        """`expected`, a metadata key, or a variable: what `expectedField` may name."""
        if name == "expected":
            return self.expected
        if name in self.metadata:
            return self.metadata[name]
        return self.vars.get(name)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "vars": self.vars, "expected": self.expected, "metadata": self.metadata}


def _expected_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _case_from_mapping(row: dict[str, Any], position: int) -> Case:
    """`vars` when given; otherwise every non-reserved key is a variable."""
    case_id = str(row["id"]) if row.get("id") not in (None, "") else f"case-{position}"
    if "vars" in row:
        if not isinstance(row["vars"], dict):
            raise DatasetError(f"{case_id}: vars must be an object")
        variables = dict(row["vars"])
        metadata = {k: v for k, v in row.items() if k not in RESERVED_KEYS}
        metadata.update(row.get("metadata") or {})
    else:
        variables = {k: v for k, v in row.items() if k not in RESERVED_KEYS}
        metadata = dict(row.get("metadata") or {})
    return Case(id=case_id, vars=variables, expected=_expected_text(row.get("expected")), metadata=metadata)


def _check(cases: list[Case]) -> list[Case]:
    if not cases:
        raise DatasetError("dataset is empty: add at least one case")
    if len(cases) > MAX_CASES:
        raise DatasetError(f"dataset has {len(cases)} cases; at most {MAX_CASES} are supported")
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise DatasetError(f"case id {case.id!r} appears more than once")
        seen.add(case.id)
    return cases


def parse_jsonl(text: str) -> list[Case]:
    """One JSON object per line; blank lines are skipped."""
    cases: list[Case] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"line {lineno}: not valid JSON: {exc.msg}") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"line {lineno}: expected a JSON object, got {type(row).__name__}")
        cases.append(_case_from_mapping(row, len(cases) + 1))
    return _check(cases)


def parse_csv(text: str) -> list[Case]:
    """Header row first; `id` and `expected` columns are special, `metadata.x` goes to metadata."""
    try:
        return _parse_csv_rows(csv.DictReader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise DatasetError(f"not valid CSV: {exc}") from exc


def _parse_csv_rows(reader: csv.DictReader) -> list[Case]:
    if not reader.fieldnames:
        raise DatasetError("dataset is empty: CSV needs a header row and at least one case")
    cases: list[Case] = []
    for row in reader:
        if None in row:
            raise DatasetError(f"line {reader.line_num}: more columns than the header")
        variables: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        for key, value in row.items():
            if key in ("id", "expected"):
                continue
            if key.startswith("metadata."):
                metadata[key.removeprefix("metadata.")] = value
            else:
                variables[key.removeprefix("vars.")] = value
        position = len(cases) + 1
        case_id = row.get("id") or f"case-{position}"
        cases.append(
            Case(id=case_id, vars=variables, expected=row.get("expected") or None, metadata=metadata)
        )
    return _check(cases)


def parse_text(text: str, key: str) -> list[Case]:
    """Parse a ConfigMap value, choosing the format from the key's extension (JSONL unless .csv)."""
    if key.lower().endswith(".csv"):
        return parse_csv(text)
    return parse_jsonl(text)


def from_inline(cases: list[EvalCase]) -> list[Case]:
    """Cases written in the gate itself."""
    return _check(
        [
            Case(
                id=c.id or f"case-{i}",
                vars=dict(c.vars),
                expected=c.expected,
                metadata=dict(c.metadata),
            )
            for i, c in enumerate(cases, start=1)
        ]
    )


def dataset_hash(cases: list[Case]) -> str:
    """sha256 over the parsed cases, so equal content hashes equal whatever the file format."""
    return digest([c.to_dict() for c in cases])
