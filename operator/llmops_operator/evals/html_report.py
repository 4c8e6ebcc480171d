"""One self-contained HTML page for an EvalRun record (see case_record.py): open it offline.

Everything a model or a dataset wrote is escaped by jinja2's autoescape; the only markup not
from the template is the SVG chart, built here from numbers alone. No external assets: styles,
script and chart are inline.
"""

from __future__ import annotations

import difflib
import math
import re
from importlib import resources
from typing import Any

import jinja2
from markupsafe import Markup

BINS = 10
MAX_DIFF_CHARS = 4000
"""The diff view compares this much of each answer (difflib is quadratic in the worst case)."""
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FunctionLoader(
            lambda name: resources.files("llmops_operator.evals").joinpath("templates", name).read_text()
        ),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def diff_segments(old: str | None, new: str | None) -> list[tuple[str, str]]:
    """Word-level diff of baseline (`old`) and candidate (`new`): (equal|delete|insert, text) pairs."""
    a, b = _TOKENS.findall((old or "")[:MAX_DIFF_CHARS]), _TOKENS.findall((new or "")[:MAX_DIFF_CHARS])
    segments: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if op == "equal":
            segments.append(("equal", "".join(a[i1:i2])))
            continue
        if i2 > i1:
            segments.append(("delete", "".join(a[i1:i2])))
        if j2 > j1:
            segments.append(("insert", "".join(b[j1:j2])))
    return segments


def histogram(values: list[float], lo: float, hi: float, bins: int = BINS) -> list[int]:
    """Counts of `values` in `bins` equal bins over [lo, hi]; the top edge goes to the last bin."""
    counts = [0] * bins
    width = (hi - lo) / bins or 1.0
    for value in values:
        counts[min(bins - 1, max(0, int((value - lo) / width)))] += 1
    return counts


def _bars_svg(title: str, counts: list[int], lo: float, hi: float, unit: str) -> str:
    """A small bar chart; every value in it is a number formatted here, so it is safe markup."""
    w, h, pad = 300, 120, 20
    peak = max(counts) or 1
    bar = (w - 2 * pad) / len(counts)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h + 30}" role="img">',
        f'<text x="{pad}" y="14" class="chart-title">{title}</text>',
    ]
    for i, count in enumerate(counts):
        height = (h - 30) * count / peak
        x, y = pad + i * bar, h - height
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar - 2:.1f}" height="{height:.1f}" class="bar">'
            f"<title>{count}</title></rect>"
        )
        if count:
            parts.append(f'<text x="{x + bar / 2 - 4:.1f}" y="{y - 3:.1f}" class="count">{count}</text>')
    parts.append(f'<line x1="{pad}" y1="{h}" x2="{w - pad}" y2="{h}" class="axis"/>')
    parts.append(f'<text x="{pad}" y="{h + 16}" class="tick">{lo:g}{unit}</text>')
    parts.append(f'<text x="{w - pad - 40}" y="{h + 16}" class="tick">{hi:g}{unit}</text>')
    parts.append("</svg>")
    return "".join(parts)


def charts(cases: list[dict[str, Any]]) -> Markup:
    """Inline SVG: the candidate's case scores (0..1) and latencies."""
    sides = [c.get("candidate") or {} for c in cases]
    scores = [float(s["score"]) for s in sides if s.get("score") is not None and not s.get("error")]
    latencies = [float(s["latencyMs"]) for s in sides if s.get("latencyMs") is not None]
    top = float(math.ceil(max(latencies, default=1.0))) or 1.0
    svg = _bars_svg("case score", histogram(scores, 0.0, 1.0), 0.0, 1.0, "")
    svg += _bars_svg("latency", histogram(latencies, 0.0, top), 0.0, top, " ms")
    return Markup(svg)


def _status(side: dict[str, Any] | None) -> str:
    if not side:
        return "missing"
    if side.get("error"):
        return "error"
    return "pass" if side.get("passed") else "fail"


def render(record: dict[str, Any], title: str | None = None) -> str:
    """The report page of a record."""
    cases = record.get("cases") or []
    rows = []
    for case in cases:
        candidate, baseline = case.get("candidate"), case.get("baseline")
        rows.append(
            {
                "case": case,
                "status": _status(candidate),
                "baseline_status": _status(baseline) if baseline else None,
                "failed": sorted(
                    {a["name"] for a in (candidate or {}).get("assertions", []) if not a.get("passed")}
                    | set((candidate or {}).get("failed") or [])
                ),
                "diff": diff_segments(baseline.get("output"), candidate.get("output"))
                if baseline and candidate and baseline.get("output") is not None
                else None,
            }
        )
    summary = record.get("summary") or {}
    names = [a["name"] for a in summary.get("perAssertion") or []]
    for row in rows:
        names += [n for n in row["failed"] if n not in names]
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            title=title or "EvalRun report",
            summary=summary,
            criteria=record.get("criteria") or {},
            rows=rows,
            assertion_names=names,
            charts=charts(cases),
            clipped=record.get("clippedChars"),
            partial=record.get("partial"),
            counts={s: sum(r["status"] == s for r in rows) for s in ("pass", "fail", "error")},
        )
    )
