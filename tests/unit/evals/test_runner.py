"""The runner end to end against the real OpenAI stub on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from llmops_operator.api.evals import EvalGateSpec, EvalRunStatus
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.evals.assertions import JUDGE_SCHEMA
from llmops_operator.evals.runner import run_eval
from llmops_sim.openai_stub import BAD_ANSWER, OpenAIStub

ANSWERS = {
    "refund": "You can get a refund within 30 days of purchase.",
    "hours": "We are open Monday to Friday, 9:00 to 17:00.",
    "shipping": "Shipping takes 3 to 5 working days.",
}
QUESTIONS = [("refund", "Can I get a refund?"), ("hours", "What are your opening hours?"),
             ("shipping", "How long does shipping take?")]  # fmt: skip

PROMPT = PromptVersionSpec.model_validate(
    {
        "prompt": "support-bot",
        "version": 3,
        "messages": [
            {"role": "system", "content": "You are {{ company }}'s support assistant."},
            {"role": "user", "content": "{{ question }}"},
        ],
        "variables": [{"name": "company"}, {"name": "question"}],
        "parameters": {"temperature": 0.2, "maxTokens": 128},
    }
)


def gate(
    assertions: list[dict] | None = None, cases: list[dict] | None = None, **extra: object
) -> EvalGateSpec:
    inline = cases or [
        {"id": key, "vars": {"company": "Acme", "question": q}, "expected": ANSWERS[key]}
        for key, q in QUESTIONS
    ]
    return EvalGateSpec.model_validate(
        {
            "prompt": {"name": "support-bot"},
            "dataset": {"inline": inline},
            "assertions": assertions
            or [{"type": "rougeL", "threshold": 0.6}, {"type": "regex", "value": r"\d"}],
            "retries": 1,
            **extra,
        }
    )


@pytest.fixture
def good() -> Iterator[OpenAIStub]:
    with OpenAIStub(answers=ANSWERS) as stub:
        yield stub


@pytest.fixture
def bad() -> Iterator[OpenAIStub]:
    with OpenAIStub(mode="bad") as stub:
        yield stub


def run(g: EvalGateSpec, endpoint: str, **options: object):
    options.setdefault("backoff_seconds", 0.01)
    return run_eval(g, PROMPT, endpoint, options.pop("model_name", "support-llama"), **options)


def test_good_answers_pass_and_status_is_reproducible(good: OpenAIStub) -> None:
    result = run(gate(seed=7), good.url, revision="a14b02")
    assert result.phase == "Passed", result.message
    status = result.to_status()
    EvalRunStatus.model_validate(status)
    assert status["candidate"] == status["candidate"] | {
        "passRate": 1.0,
        "cases": 3,
        "passed": 3,
        "errors": 0,
    }
    assert (
        status["revision"] == "a14b02"
        and len(status["datasetHash"]) == 64
        and len(status["promptHash"]) == 64
    )
    assert [a["name"] for a in status["perAssertion"]] == ["rougeL[0]", "regex[1]"]
    sent = good.last_requests[-1]
    assert sent["model"] == "support-llama" and sent["seed"] == 7
    assert sent["temperature"] == 0.2 and sent["max_tokens"] == 128
    assert sent["messages"][0] == {"role": "system", "content": "You are Acme's support assistant."}
    assert run(gate(seed=7), good.url).dataset_hash == result.dataset_hash


def test_bad_answers_fail_naming_the_assertions(bad: OpenAIStub) -> None:
    result = run(gate(), bad.url)
    assert result.phase == "Failed"
    assert result.failing_assertions == ["rougeL[0]", "regex[1]"]
    assert result.exit_code == 1
    status = result.to_status()
    assert status["cases"][0]["output"] == BAD_ANSWER and status["cases"][0]["failed"] == [
        "rougeL[0]",
        "regex[1]",
    ]


def test_baseline_regression_fails_and_marks_baseline_cases(good: OpenAIStub, bad: OpenAIStub) -> None:
    g = gate(passCriteria={"passRate": 0.0, "maxRegressionVsBaseline": 0.1})
    result = run(g, bad.url, baseline_endpoint=good.url)
    assert result.phase == "Failed" and result.failing_assertions == ["maxRegressionVsBaseline"]
    status = result.to_status()
    assert status["baseline"]["passRate"] == 1.0 and status["candidate"]["passRate"] == 0.0
    assert all(c["baselinePassed"] is True for c in status["cases"])
    assert run(g, good.url, baseline_endpoint=bad.url).phase == "Passed"


def test_unreachable_endpoint_is_error_not_failed() -> None:
    with OpenAIStub() as stub:
        url = stub.url
    result = run(gate(), url)
    assert result.phase == "Error" and result.exit_code == 2
    assert "connection failed" in result.message and "case " in result.message


def test_server_errors_are_retried_then_error() -> None:
    with OpenAIStub(mode="error") as stub:
        result = run(gate(retries=2, passCriteria={"maxErrorRate": 0}), stub.url)
        assert (
            result.phase == "Error" and "HTTP 500" in result.message and "after 3 attempts" in result.message
        )
        assert stub.requests >= 3


def test_flaky_endpoint_passes_thanks_to_retries() -> None:
    with OpenAIStub(answers=ANSWERS, flakyRate=0.3, seed=3) as stub:
        result = run(gate(retries=6), stub.url)
        assert result.phase == "Passed", result.message
        assert stub.requests > 3  # some 429/500 were retried


def test_slow_endpoint_fails_latency_criterion() -> None:
    with OpenAIStub(answers=ANSWERS, delayMs=150) as stub:
        result = run(gate(passCriteria={"latencyP95Ms": 50}), stub.url)
    assert result.phase == "Failed" and result.failing_assertions == ["latencyP95Ms"]


def test_request_timeout_gives_error() -> None:
    with OpenAIStub(answers=ANSWERS, delayMs=600) as stub:
        result = run(gate(requestTimeoutSeconds=0.1, retries=0), stub.url)
    assert result.phase == "Error" and "timed out" in result.message


def test_run_deadline_gives_error() -> None:
    with OpenAIStub(answers=ANSWERS, delayMs=1500) as stub:
        result = run(gate(timeoutSeconds=1), stub.url)
    assert result.phase == "Error" and "timeoutSeconds=1" in result.message


def test_case_missing_a_required_variable_is_error_before_any_request(good: OpenAIStub) -> None:
    g = gate(
        cases=[
            {"id": "ok", "vars": {"company": "A", "question": "q"}},
            {"id": "q2", "vars": {"company": "A"}},
        ]
    )
    result = run(g, good.url)
    assert result.phase == "Error"
    assert "case q2" in result.message and "'question'" in result.message
    assert good.requests == 0


def test_invalid_json_schema_is_error_before_any_request(good: OpenAIStub) -> None:
    result = run(gate([{"type": "jsonSchema", "value": {"type": 12}}]), good.url)
    assert result.phase == "Error" and "invalid JSON schema" in result.message and good.requests == 0


def test_invalid_prompt_is_error(good: OpenAIStub) -> None:
    evil = PROMPT.model_copy(
        update={"messages": [PROMPT.messages[0].model_copy(update={"content": "{{ question.__class__ }}"})]}
    )
    result = run_eval(gate(), evil, good.url, "m", backoff_seconds=0.01)
    assert result.phase == "Error" and "private attribute" in result.message and good.requests == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [(None, "could not be read"), ("", "dataset is empty"), ("{broken", "not valid JSON")],
)
def test_unreadable_configmap_dataset_is_error(good: OpenAIStub, text: str | None, message: str) -> None:
    g = EvalGateSpec.model_validate(
        {
            "prompt": {"name": "support-bot"},
            "dataset": {"configMapRef": {"name": "evals", "key": "cases.jsonl"}},
            "assertions": [{"type": "contains", "value": "x"}],
        }
    )
    result = run(g, good.url, dataset_text=text)
    assert result.phase == "Error" and message in result.message


def test_configmap_jsonl_dataset_runs(good: OpenAIStub) -> None:
    g = EvalGateSpec.model_validate(
        {
            "prompt": {"name": "support-bot"},
            "dataset": {"configMapRef": {"name": "evals", "key": "cases.csv"}},
            "assertions": [{"type": "contains", "value": "refund", "caseInsensitive": True}],
        }
    )
    result = run(g, good.url, dataset_text="company,question\nAcme,Refund please?\n")
    assert result.phase == "Passed", result.message


def judge_gate(judge: dict, threshold: float = 0.7) -> EvalGateSpec:
    return gate(
        [{"type": "llmJudge", "judge": judge, "rubric": "Polite and correct?", "threshold": threshold}]
    )


def test_llm_judge_scores_decide(good: OpenAIStub) -> None:
    with OpenAIStub(mode="judge", judgeScore=0.9) as judge:
        passed = run(judge_gate({"endpoint": judge.url}), good.url)
        assert passed.phase == "Passed", passed.message
        graded = judge.last_requests[-1]
        assert graded["temperature"] == 0 and "Polite and correct?" in graded["messages"][1]["content"]
        assert any(a in graded["messages"][1]["content"] for a in ANSWERS.values())
        judge.configure(judgeScore=0.3)
        failed = run(judge_gate({"endpoint": judge.url}), good.url)
        assert failed.phase == "Failed" and failed.failing_assertions == ["llmJudge[0]"]


def test_llm_judge_model_is_resolved_by_name(good: OpenAIStub) -> None:
    with OpenAIStub(mode="judge", judgeScore=1) as judge:
        result = run(judge_gate({"model": "judge-llm"}), good.url, judge_endpoints={"judge-llm": judge.url})
        assert result.phase == "Passed", result.message
        assert judge.last_requests[-1]["model"] == "judge-llm"


def test_missing_judge_model_is_error_naming_it(good: OpenAIStub) -> None:
    result = run(judge_gate({"model": "no-such-judge"}), good.url)
    assert result.phase == "Error" and "'no-such-judge'" in result.message and good.requests == 0


def test_judge_down_is_error_not_failed(good: OpenAIStub) -> None:
    with OpenAIStub(mode="error") as judge:
        result = run(judge_gate({"endpoint": judge.url, "modelName": "j"}), good.url)
    assert result.phase == "Error" and "judge failed" in result.message


def test_unparseable_judge_is_error(good: OpenAIStub) -> None:
    with OpenAIStub(defaultAnswer="Looks fine to me!") as judge:
        result = run(judge_gate({"endpoint": judge.url}), good.url)
    assert result.phase == "Error" and "no score found" in result.message


def test_model_name_is_discovered_when_not_given(good: OpenAIStub) -> None:
    good.configure(model="served-name")
    result = run_eval(gate(), PROMPT, good.url, None, backoff_seconds=0.01)
    assert result.phase == "Passed" and good.last_requests[-1]["model"] == "served-name"


def test_status_is_truncated_and_clipped(good: OpenAIStub) -> None:
    long_answer = "x" * 5000
    good.configure(defaultAnswer=long_answer)
    cases = [{"id": f"c{i}", "vars": {"company": "A", "question": f"q{i}"}} for i in range(120)]
    result = run(gate([{"type": "contains", "value": "refund"}], cases=cases, concurrency=16), good.url)
    status = result.to_status()
    assert result.phase == "Failed"
    assert len(status["cases"]) == 50 and status["truncated"] == 70
    assert all(len(c["output"]) <= 400 for c in status["cases"])
    assert len(json.dumps(status)) < 100_000


def test_clock_is_injected(good: OpenAIStub) -> None:
    moments = iter([datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, 0, 1, tzinfo=UTC)])
    status = run(gate(), good.url, clock=lambda: next(moments)).to_status()
    assert status["startedAt"] == "2026-01-01T00:00:00Z" and status["completedAt"] == "2026-01-01T00:01:00Z"


def test_judge_is_asked_for_structured_output(good: OpenAIStub) -> None:
    with OpenAIStub(mode="judge", judgeScore=0.9) as judge:
        result = run(judge_gate({"endpoint": judge.url}), good.url)
        asked = judge.last_requests[-1]["response_format"]
    assert result.phase == "Passed", result.message
    assert asked["type"] == "json_schema" and asked["json_schema"]["schema"] == JUDGE_SCHEMA
    details = [a.outcome.detail for c in result.candidate.cases for a in c.assertions]
    assert all("graded against the rubric" in d for d in details), details


@pytest.mark.parametrize(("accepted", "style"), [(["json_object"], "json_object"), ([], None)])
def test_judge_falls_back_when_structured_output_is_refused(
    good: OpenAIStub, accepted: list[str], style: str | None
) -> None:
    with OpenAIStub(mode="judge", judgeScore=0.9, responseFormats=accepted) as judge:
        result = run(judge_gate({"endpoint": judge.url}), good.url)
        last = judge.last_requests[-1]
        judged = judge.requests
    assert result.phase == "Passed", result.message
    assert (last.get("response_format") or {}).get("type") == style
    assert judged <= 3 + 2, "a refused style is dropped for the rest of the run, not retried per case"


def test_structured_score_out_of_range_is_error_keeping_the_raw_answer(good: OpenAIStub) -> None:
    with OpenAIStub(mode="judge", judgeScore=7) as judge:
        result = run(judge_gate({"endpoint": judge.url}), good.url)
    assert result.phase == "Error" and "out of range 0..10" in result.message
    outcome = result.candidate.cases[0].assertions[0].outcome
    assert outcome.error and '"score": 70' in outcome.detail, outcome.detail
