"""PromptVersion and EvalGate status: what cannot work is said at apply time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from llmops_operator.evals.gate import eval_gate_status, eval_run_name
from llmops_operator.prompts import prompt_version_status

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _gate(assertions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "metadata": {"name": "g", "namespace": "ns", "generation": 2},
        "spec": {
            "prompt": {"name": "bot"},
            "dataset": {"inline": [{"id": "a", "vars": {"q": "x"}, "expected": "y"}]},
            "assertions": assertions,
        },
    }


@pytest.mark.parametrize(
    ("assertion", "valid", "fragment"),
    [
        ({"type": "regex", "value": "^Dear "}, "True", "compile"),
        ({"type": "regex", "value": "([unclosed"}, "False", "invalid regex"),
        ({"type": "jsonSchema", "value": {"type": "nonsense"}}, "False", "invalid JSON schema"),
        ({"type": "contains", "value": "refund"}, "True", "compile"),
    ],
)
def test_eval_gate_valid_condition(assertion: dict[str, Any], valid: str, fragment: str) -> None:
    status = eval_gate_status(_gate([assertion]), NOW)
    condition = next(c for c in status["conditions"] if c["type"] == "Valid")
    assert condition["status"] == valid
    assert fragment in condition["message"]
    assert status["observedGeneration"] == 2


def _run(name: str, gate: str, created: str, namespace: str = "ns") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": created},
        "spec": {"gate": gate},
    }


def test_eval_gate_last_run_is_its_newest_eval_run_in_its_namespace() -> None:
    runs = [
        _run("g-old", "g", "2026-11-22T10:00:00Z"),
        _run("g-new", "g", "2026-11-22T11:00:00Z"),
        _run("other-gate", "h", "2026-11-22T11:30:00Z"),
        _run("other-ns", "g", "2026-11-22T11:45:00Z", namespace="elsewhere"),
    ]
    assert eval_gate_status(_gate([]), NOW, runs)["lastRun"] == "g-new"
    assert "lastRun" not in eval_gate_status(_gate([]), NOW, runs[2:])


def test_prompt_version_status_lists_binding_models_only_in_its_namespace() -> None:
    pv = {
        "metadata": {"name": "bot-v1", "namespace": "ns", "generation": 1},
        "spec": {
            "prompt": "bot",
            "version": 1,
            "messages": [{"role": "user", "content": "{{ q }}"}],
            "variables": [{"name": "q", "required": True}],
        },
    }
    models = [
        {"metadata": {"name": "a", "namespace": "ns"}, "spec": {"prompts": [{"name": "bot", "version": 1}]}},
        {"metadata": {"name": "b", "namespace": "ns"}, "spec": {"prompts": [{"name": "bot", "version": 2}]}},
        {
            "metadata": {"name": "c", "namespace": "other"},
            "spec": {"prompts": [{"name": "bot", "version": 1}]},
        },
    ]
    status = prompt_version_status(pv, models, NOW)
    assert status["valid"] is True and status["usedBy"] == ["a"] and status["contentHash"]


def test_eval_run_names_are_stable_per_attempt_and_fresh_on_retry() -> None:
    first = eval_run_name("abc123", "support-quality", 0, NOW)
    assert first == eval_run_name("abc123", "support-quality", 0, NOW)
    assert first != eval_run_name("abc123", "support-quality", 0, NOW.replace(minute=5))
    assert len(eval_run_name("r" * 10, "g" * 200, 31, NOW)) <= 63
