"""The case record (bounded, round-trips through a ConfigMap) and the HTML report built from it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator.api.evals import EvalGateSpec, EvalRunStatus
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.evals import case_record, html_report
from llmops_operator.evals.runner import EvalResult, run_eval
from llmops_sim.openai_stub import OpenAIStub

SCRIPT = "<script>document.title='owned'</script><img src=x onerror=alert(1)>"
ANSWERS = {
    "refund": "You can get a refund within 30 days.",
    "hours": f"Sure {SCRIPT} we open at 9.",
    "huge": "blah " * 40_000,
}
PROMPT = PromptVersionSpec.model_validate(
    {
        "prompt": "bot",
        "version": 1,
        "messages": [{"role": "user", "content": "{{ question }}"}],
        "variables": [{"name": "question"}],
    }
)


def gate(max_error_rate: float = 1.0) -> EvalGateSpec:
    cases = [
        {
            "id": "a-refund",
            "vars": {"question": "refund?"},
            "expected": "You can get a refund within 30 days.",
        },
        {"id": "b-hours", "vars": {"question": "hours?"}, "expected": "We open at 9."},
        {"id": "c-huge", "vars": {"question": f"huge {SCRIPT}?"}, "expected": "short"},
    ]
    return EvalGateSpec.model_validate(
        {
            "prompt": {"name": "bot"},
            "dataset": {"inline": cases},
            "assertions": [
                {"name": "mentions-refund", "type": "contains", "value": "refund"},
                {"name": "close", "type": "rougeL", "threshold": 0.5},
            ],
            "passCriteria": {"passRate": 0.5, "maxErrorRate": max_error_rate},
            "retries": 0,
        }
    )


@pytest.fixture(scope="module")
def result() -> Iterator[EvalResult]:
    with (
        OpenAIStub(answers=ANSWERS) as candidate,
        OpenAIStub(answers={**ANSWERS, "hours": "We open at 9."}) as base,
    ):
        yield run_eval(gate(), PROMPT, candidate.url, None, base.url, backoff_seconds=0.01)


def test_record_keeps_every_case_failing_first(result: EvalResult) -> None:
    record = case_record.build(result)
    assert [c["id"] for c in record["cases"]] == ["b-hours", "c-huge", "a-refund"]
    hours = record["cases"][0]
    assert hours["messages"] == [{"role": "user", "content": "hours?"}]
    assert hours["candidate"]["output"] == ANSWERS["hours"]
    assert hours["baseline"]["output"] == "We open at 9."
    assert {a["name"] for a in hours["candidate"]["assertions"]} == {"mentions-refund", "close"}
    assert record["summary"]["phase"] == result.phase and record["criteria"]["passRate"] == 0.5
    assert record["clippedChars"] == case_record.FULL_TEXT_CHARS  # the 200 000-character answer


def test_record_is_bounded_and_round_trips_through_its_config_map(result: EvalResult) -> None:
    record, data = case_record.build_bounded(result, max_bytes=2_000)
    assert len(data) <= 2_000 or record["clippedChars"] == case_record.MIN_CLIP_CHARS
    assert record["clippedChars"] is not None
    huge = next(c for c in record["cases"] if c["id"] == "c-huge")
    assert "[clipped: 200000 characters in all]" in huge["candidate"]["output"]
    run = {"metadata": {"name": "run-1", "namespace": "ns", "uid": "u-1"}}
    cm = case_record.config_map(run, data)
    assert (
        cm["metadata"]["ownerReferences"][0] | {"kind": "EvalRun", "uid": "u-1"}
        == cm["metadata"]["ownerReferences"][0]
    )
    assert case_record.from_config_map(cm) == record
    ref = case_record.reference("run-1", record)
    status = EvalRunStatus.model_validate({"record": ref})
    assert status.record.config_map == "run-1-cases" and status.record.cases == 3


def test_report_escapes_answers_and_inputs_and_loads_nothing(result: EvalResult) -> None:
    page = html_report.render(case_record.build(result))
    assert SCRIPT not in page and "<img" not in page
    assert "&lt;script&gt;document.title=&#39;owned&#39;&lt;/script&gt;" in page
    assert not re.search(r"<[a-z][^>]*\s(src|href)\s*=", page), "no external (or any) asset references"
    assert page.count("<script>") == 1, "only the report's own filter script"
    assert "<svg" in page and "case score" in page and "latency" in page


def test_report_lists_failing_cases_first_with_filters_and_diff(result: EvalResult) -> None:
    page = html_report.render(case_record.build(result))
    ids = re.findall(r'<tbody class="case" data-id="([^"]+)" data-status="(\w+)"', page)
    assert ids == [("b-hours", "fail"), ("c-huge", "fail"), ("a-refund", "pass")]
    assert '<option value="mentions-refund">' in page and '<option value="fail">' in page
    assert "<del>" in page and "<ins>" in page  # candidate vs baseline differ on b-hours


def test_report_from_status_only_says_what_is_missing(result: EvalResult) -> None:
    record = case_record.from_status(result.to_status())
    page = html_report.render(record)
    assert "only the EvalRun status was readable" in page
    assert re.findall(r'data-id="([^"]+)"', page)[0] == "b-hours"


def test_report_of_a_run_that_ran_nothing_still_opens() -> None:
    with OpenAIStub(mode="error") as down:
        failed = run_eval(gate(max_error_rate=0), PROMPT, down.url, None, backoff_seconds=0.01)
    page = html_report.render(case_record.build(failed))
    assert failed.phase == "Error" and 'class="phase phase-Error"' in page
    assert "HTTP 500" in page


def test_histogram_counts_every_value() -> None:
    assert html_report.histogram([0.0, 0.05, 0.5, 1.0, 1.0], 0.0, 1.0) == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
    assert sum(html_report.histogram([5.0] * 3, 0.0, 0.0)) == 3


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=80), st.text(max_size=80))
def test_diff_segments_rebuild_both_answers(old: str, new: str) -> None:
    segments = html_report.diff_segments(old, new)
    assert "".join(t for op, t in segments if op != "insert") == old
    assert "".join(t for op, t in segments if op != "delete") == new
