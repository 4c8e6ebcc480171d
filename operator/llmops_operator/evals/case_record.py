"""The full per-case record of an EvalRun: every prompt, answer and assertion outcome.

The EvalRun status keeps at most 50 clipped cases; this record keeps them all, so a person can
read the run case by case (`kubectl llmops report`). In a cluster the eval Job stores it gzipped
in a ConfigMap owned by the EvalRun, bounded to fit: when it does not, long texts are clipped
(the record says where) rather than dropped.
"""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from llmops_operator.api.common import API_VERSION, LABEL_COMPONENT
from llmops_operator.evals import scoring
from llmops_operator.evals.runner import EvalResult, SideResult

RECORD_VERSION = 1
RECORD_KEY = "cases.json.gz"
RECORD_COMPONENT = "eval-record"
MAX_RECORD_BYTES = 900 * 1024
"""Compressed size limit, below the API server's 1 MiB per object with room for metadata."""
FULL_TEXT_CHARS = 50_000
"""Even the uncompressed record clips single texts here: a runaway answer stays readable."""
MIN_CLIP_CHARS = 200


class _Clipper:
    """Clips texts at `limit` characters and counts how many it clipped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.clipped = 0

    def __call__(self, text: str | None) -> str | None:
        if text is None or len(text) <= self.limit:
            return text
        self.clipped += 1
        return text[: self.limit] + f"… [clipped: {len(text)} characters in all]"


def _side_case(outcome: scoring.CaseOutcome, verdict: scoring.CaseVerdict, clip: _Clipper) -> dict[str, Any]:
    return {
        "output": clip(outcome.output),
        "latencyMs": None if outcome.latency_ms is None else round(outcome.latency_ms, 1),
        "passed": verdict.passed,
        "score": round(verdict.score, 4),
        "failed": verdict.failed,
        "error": clip(verdict.error),
        "assertions": [
            {
                "name": a.name,
                "type": a.type,
                "passed": a.outcome.passed,
                "score": round(a.outcome.score, 4),
                "detail": clip(a.outcome.detail),
                "error": clip(a.outcome.error),
            }
            for a in outcome.assertions
        ],
    }


def _by_id(side: SideResult | None) -> dict[str, tuple[scoring.CaseOutcome, scoring.CaseVerdict]]:
    if side is None:
        return {}
    verdicts = {v.id: v for v in side.verdicts}
    return {c.id: (c, verdicts[c.id]) for c in side.cases}


def case_order(case: dict[str, Any]) -> tuple[int, str]:
    """Errors first, then failures, then passes; by id within each."""
    candidate = case.get("candidate") or {}
    rank = 0 if candidate.get("error") else 1 if not candidate.get("passed") else 2
    return rank, str(case.get("id"))


def build(result: EvalResult, limit: int = FULL_TEXT_CHARS) -> dict[str, Any]:
    """The record of a run, texts clipped at `limit` characters."""
    status = result.to_status(max_cases=0)
    clip = _Clipper(limit)
    candidate, baseline = _by_id(result.candidate), _by_id(result.baseline)
    cases = []
    for case_id in candidate or result.inputs:
        item = result.inputs.get(case_id)
        entry: dict[str, Any] = {
            "id": case_id,
            "vars": {
                k: clip(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))
                for k, v in item.case.vars.items()
            }
            if item
            else {},
            "messages": [{**m, "content": clip(m["content"])} for m in item.messages] if item else [],
            "expected": clip(item.case.expected) if item else None,
            "candidate": _side_case(*candidate[case_id], clip) if case_id in candidate else None,
            "baseline": _side_case(*baseline[case_id], clip) if case_id in baseline else None,
        }
        cases.append(entry)
    cases.sort(key=case_order)
    return {
        "version": RECORD_VERSION,
        "summary": {k: v for k, v in status.items() if k not in ("cases", "truncated")},
        "criteria": result.criteria,
        "cases": cases,
        "clippedChars": limit if clip.clipped else None,
    }


def encode(record: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(record, ensure_ascii=False, sort_keys=True).encode(), mtime=0)


def decode(data: bytes) -> dict[str, Any]:
    return json.loads(gzip.decompress(data))


def build_bounded(result: EvalResult, max_bytes: int = MAX_RECORD_BYTES) -> tuple[dict[str, Any], bytes]:
    """The record and its gzipped bytes, texts clipped shorter until it fits in `max_bytes`."""
    limit = FULL_TEXT_CHARS
    while True:
        record = build(result, limit)
        data = encode(record)
        if len(data) <= max_bytes or limit <= MIN_CLIP_CHARS:
            return record, data
        limit = max(MIN_CLIP_CHARS, limit // 2)


def config_map_name(eval_run_name: str) -> str:
    return f"{eval_run_name[:245]}-cases"


def config_map(eval_run: dict[str, Any], data: bytes) -> dict[str, Any]:
    """The record's ConfigMap, owned by the EvalRun so it goes when the run goes."""
    meta = eval_run["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": config_map_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": {LABEL_COMPONENT: RECORD_COMPONENT},  # not managed-by: the operator never caches it
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "EvalRun",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "binaryData": {RECORD_KEY: base64.b64encode(data).decode()},
    }


def reference(eval_run_name: str, record: dict[str, Any]) -> dict[str, Any]:
    """The EvalRun status field that says where the record is."""
    ref: dict[str, Any] = {
        "configMap": config_map_name(eval_run_name),
        "key": RECORD_KEY,
        "cases": len(record["cases"]),
    }
    if record.get("clippedChars"):
        ref["clippedChars"] = record["clippedChars"]
    return ref


def from_config_map(obj: dict[str, Any], key: str = RECORD_KEY) -> dict[str, Any]:
    """The record kept in a ConfigMap (raises KeyError or ValueError when it is not one)."""
    return decode(base64.b64decode((obj.get("binaryData") or {})[key]))


def from_status(status: dict[str, Any]) -> dict[str, Any]:
    """A record from the EvalRun status alone (clipped outcomes), when no full record was kept."""
    cases = [
        {
            "id": c.get("id"),
            "vars": {},
            "messages": [],
            "expected": None,
            "candidate": {
                "output": c.get("output"),
                "latencyMs": c.get("latencyMs"),
                "passed": c.get("passed", False),
                "score": c.get("score", 0.0),
                "failed": c.get("failed") or [],
                "error": c.get("error"),
                "assertions": [],
            },
            "baseline": None
            if c.get("baselinePassed") is None
            else {"passed": c.get("baselinePassed"), "assertions": [], "failed": []},
        }
        for c in status.get("cases") or []
    ]
    cases.sort(key=case_order)
    summary = {k: v for k, v in status.items() if k not in ("cases", "truncated")}
    return {
        "version": RECORD_VERSION,
        "summary": summary,
        "criteria": {},
        "cases": cases,
        "clippedChars": None,
        "partial": f"only the EvalRun status was readable: {len(cases)} cases, "
        f"{status.get('truncated', 0)} more left out, answers clipped",
    }
