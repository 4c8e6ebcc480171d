"""Human and CI views of an EvalResult: a table, JSON (the EvalRun status), JUnit XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from llmops_operator.evals.runner import EvalResult


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [_row(header, widths), _row(["-" * w for w in widths], widths), *(_row(r, widths) for r in rows)]


def _fmt(value: float | None, pattern: str = "{:.3f}") -> str:
    return "-" if value is None else pattern.format(value)


def render_table(result: EvalResult, max_cases: int = 20) -> str:
    """Verdict, scores, per-assertion results and the worst cases, for a terminal."""
    lines = [f"EvalRun {result.phase}: {result.message}"]
    if result.prompt_hash or result.dataset_hash:
        lines.append(
            f"prompt {(result.prompt_hash or '-')[:12]}  dataset {(result.dataset_hash or '-')[:12]}"
        )
    sides = [("candidate", result.candidate), ("baseline", result.baseline)]
    score_rows = [
        [
            label,
            _fmt(side.scores.pass_rate),
            _fmt(side.scores.score),
            f"{side.scores.passed}/{side.scores.cases}",
            str(side.scores.errors),
            _fmt(side.scores.latency_p95_ms, "{:.0f}"),
        ]
        for label, side in sides
        if side is not None
    ]
    if score_rows:
        lines += ["", *_table(["side", "passRate", "score", "passed", "errors", "p95 ms"], score_rows)]
    if result.per_assertion:
        rows = [
            [
                a.name,
                a.type,
                _fmt(a.pass_rate),
                str(a.passed),
                str(a.failed),
                str(a.errors),
                _fmt(a.mean_score),
            ]
            for a in result.per_assertion
        ]
        lines += ["", *_table(["assertion", "type", "passRate", "passed", "failed", "errors", "mean"], rows)]
    if result.candidate is not None:
        bad = [v for v in result.candidate.verdicts if not v.passed]
        rows = [
            [v.id, "ERROR" if v.error else "FAIL", (v.error or ", ".join(v.failed))[:100]]
            for v in bad[:max_cases]
        ]
        if rows:
            lines += ["", *_table(["case", "result", "why"], rows)]
            if len(bad) > max_cases:
                lines.append(f"... and {len(bad) - max_cases} more failing cases")
    if result.failing_assertions:
        lines += ["", f"failing: {', '.join(result.failing_assertions)}"]
    return "\n".join(lines) + "\n"


def render_json(result: EvalResult) -> str:
    """The EvalRun status the Job would write, as JSON."""
    return json.dumps(result.to_status(), indent=2, sort_keys=True) + "\n"


def render_junit(result: EvalResult, suite_name: str = "llmops-eval") -> str:
    """JUnit XML: one testcase per case, failures and errors as CI tools expect."""
    verdicts = result.candidate.verdicts if result.candidate else []
    outcomes = {c.id: c for c in result.candidate.cases} if result.candidate else {}
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        tests=str(max(len(verdicts), 1)),
        failures=str(sum(not v.passed and v.error is None for v in verdicts)),
        errors=str(
            sum(v.error is not None for v in verdicts) or int(result.phase == "Error" and not verdicts)
        ),
    )
    if not verdicts:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name="eval")
        if result.phase == "Error":
            ET.SubElement(case, "error", message=result.message[:500]).text = result.message
    for v in verdicts:
        latency = outcomes[v.id].latency_ms
        case = ET.SubElement(
            suite, "testcase", classname=suite_name, name=v.id, time=f"{(latency or 0) / 1000:.3f}"
        )
        if v.error:
            ET.SubElement(case, "error", message=v.error[:500]).text = v.error
        elif not v.passed:
            ET.SubElement(case, "failure", message=f"failed: {', '.join(v.failed)}").text = (
                outcomes[v.id].output or ""
            )[:2000]
    properties = ET.Element("properties")
    suite.insert(0, properties)
    for key, value in [
        ("phase", result.phase),
        ("message", result.message),
        ("promptHash", result.prompt_hash or ""),
        ("datasetHash", result.dataset_hash or ""),
        ("failingAssertions", ",".join(result.failing_assertions)),
    ]:
        ET.SubElement(properties, "property", name=key, value=value)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
