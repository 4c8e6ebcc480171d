"""kubectl llmops: each control command is exactly the documented status patch; `get` and `list`
render recorded object sets exactly as their golden outputs, within 100 columns."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from llmops_operator.cli import kubectl_plugin
from llmops_operator.cli.kubectl_plugin import (
    COMMANDS,
    WIDTH,
    Snapshot,
    control_patch,
    render_list,
    render_status,
    render_tree,
)
from llmops_operator.kube.client import KubeError, NotFound


@pytest.mark.parametrize(
    ("command", "full", "patch"),
    [
        ("abort", False, {"rollout": {"abort": True}}),
        ("retry", False, {"rollout": {"abort": False}}),
        ("promote", False, {"rollout": {"pauseConditions": []}}),
        ("promote", True, {"rollout": {"promoteFull": True, "pauseConditions": []}}),
    ],
)
def test_control_patches(command: str, full: bool, patch: dict) -> None:
    assert control_patch(command, full) == patch


def test_retry_of_a_gate_that_errored_clears_its_run() -> None:
    errored = {"rollout": {"pauseConditions": [{"reason": "EvalGateError", "message": "judge down"}]}}
    assert control_patch("retry", status=errored) == {"rollout": {"abort": False, "evalRun": None}}
    paused = {"rollout": {"pauseConditions": [{"reason": "PausedStep"}]}}
    assert control_patch("retry", status=paused) == {"rollout": {"abort": False}}


def test_render_status_shows_steps_weight_and_analysis() -> None:
    model = {
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {"rollout": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]}}},
        "status": {
            "phase": "Paused",
            "stableRevision": "aaa",
            "canaryRevision": "bbb",
            "readyReplicas": 3,
            "replicas": 3,
            "rollout": {
                "stepIndex": 1,
                "weight": 10,
                "pauseConditions": [{"reason": "PausedStep", "startTime": "t"}],
                "analysis": {
                    "measurements": [
                        {"metric": "ttft", "phase": "Successful", "value": 0.2},
                        {
                            "metric": "ttft",
                            "phase": "Failed",
                            "confidence": 0.95,
                            "message": "ttft: p95 1.34x stable [1.21, 1.49] at 95%, n=2,140/8,530: Failed",
                        },
                    ]
                },
            },
            "conditions": [{"type": "Ready", "status": "True", "reason": "Serving", "message": "ok"}],
        },
    }
    text = render_status(model)
    assert "stable: aaa" in text and "canary: bbb" in text and "weight: 10%" in text
    assert "ok 0: setWeight 10" in text
    assert "-> 1: pause" in text
    assert "paused: PausedStep" in text
    assert "ttft: Successful" in text
    assert "    ttft: p95 1.34x stable [1.21, 1.49] at 95%, n=2,140/8,530: Failed" in text.splitlines()
    assert "Ready=True Serving: ok" in text


def test_render_status_shows_quality_trend_and_cost() -> None:
    model = {
        "metadata": {"name": "m", "namespace": "ns"},
        "spec": {},
        "status": {
            "phase": "Ready",
            "stableRevision": "abc",
            "quality": [
                {
                    "gate": "g",
                    "lastPhase": "Failed",
                    "lastScore": 0.4,
                    "baselineScore": 1.0,
                    "failingAssertions": ["no-rudeness"],
                }
            ],
            "cost": {
                "currency": "USD",
                "costPerMillionOutputTokens": 1.5,
                "outputTokensPerSecond": 1000.0,
                "revisions": [
                    {
                        "revision": "abc",
                        "readyReplicas": 2,
                        "gpus": 1,
                        "gpuHours": 3.25,
                        "gpuProduct": "NVIDIA-L4",
                        "outputTokensPerSecond": 1000.0,
                    }
                ],
            },
        },
    }
    text = render_status(model)
    assert "quality g: last Failed score=0.4" in text and "atPromotion=1 " in text
    assert "failing: no-rudeness" in text
    assert "cost: 1.5 USD/M output tokens, 1000.0 output tokens/s" in text
    assert "abc: 2x1 NVIDIA-L4, 3.25 GPU-hours" in text


# --- get / list: golden output on object sets recorded from the dev cluster ------------------

RECORDINGS = Path(__file__).resolve().parents[1] / "testdata" / "plugin"
DOCS = Path(__file__).resolve().parents[3] / "docs" / "rollouts.md"
CASES = sorted(p.stem for p in RECORDINGS.glob("*.json"))
ANSI = re.compile(r"\033\[[0-9;]*m")


def _snapshot(case: str) -> Snapshot:
    return Snapshot(**json.loads((RECORDINGS / f"{case}.json").read_text()))


def test_recordings_cover_a_canary_with_analysis_a_rollback_and_an_eval_pause() -> None:
    assert {"canary-analysis", "paused-eval-error"} <= set(CASES)
    assert any(case.startswith("rolled-back") for case in CASES)


@pytest.mark.parametrize("case", CASES)
def test_tree_matches_its_golden_output(case: str) -> None:
    text = render_tree(_snapshot(case)) + "\n"
    golden = RECORDINGS / f"{case}.txt"
    if os.environ.get("LLMOPS_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"run with LLMOPS_UPDATE_GOLDEN=1 to accept:\n{text}"
    assert all(len(line) <= WIDTH for line in text.splitlines())
    assert "\033" not in text


def test_tree_shows_revisions_deployments_pods_per_node_step_eval_run_and_analysis() -> None:
    text = render_tree(_snapshot("canary-analysis"))
    snap = _snapshot("canary-analysis")
    status = snap.model["status"]
    assert f"revision {status['canaryRevision']}  canary  weight 50%" in text
    assert f"revision {status['stableRevision']}  stable  weight 50%" in text
    for deployment in snap.deployments:
        assert f"Deployment {deployment['metadata']['name']}" in text
    for node, product in snap.node_products.items():
        assert f"{node}  {product}  " in text
    assert "▶ " in text and "Analysis (latest per metric):" in text
    assert "EvalRun" in render_tree(_snapshot("paused-eval-error"))


def test_colour_only_when_asked_and_never_wider_than_the_terminal() -> None:
    for case in CASES:
        coloured = render_tree(_snapshot(case), color=True)
        assert "\033[" in coloured
        assert ANSI.sub("", coloured) == render_tree(_snapshot(case))
        assert all(len(ANSI.sub("", line)) <= WIDTH for line in coloured.splitlines())


def test_list_has_one_row_per_model_with_phase_weight_and_last_decision() -> None:
    models = [_snapshot(case).model for case in CASES]
    text = render_list(models)
    lines = text.splitlines()
    assert lines[0].split()[:6] == ["NAME", "PHASE", "STABLE", "CANARY", "WEIGHT", "READY"]
    assert len(lines) == 1 + len(models)
    assert all(len(line) <= WIDTH for line in lines)
    canary = _snapshot("canary-analysis").model
    row = next(line for line in lines if line.startswith(canary["metadata"]["name"] + " "))
    assert "50%" in row and canary["status"]["canaryRevision"] in row


def test_docs_show_the_recorded_tree() -> None:
    assert render_tree(_snapshot("canary-analysis")) in DOCS.read_text()


def test_subcommands_are_registered_in_one_table() -> None:
    assert {"get", "list", "status", "promote", "abort", "retry"} <= set(COMMANDS)


class _Gone:
    """A Kube whose every object is missing, or whose server refuses (`error`)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def get(self, *args: object, **kwargs: object) -> dict:
        raise self.error

    list = patch_status = get


@pytest.mark.parametrize(
    ("argv", "error", "message"),
    [
        (["status", "chat"], NotFound(), "error: model team-a/chat not found"),
        (["abort", "chat"], NotFound(), "error: model team-a/chat not found"),
        (["report", "run-1"], NotFound(), "error: evalrun team-a/run-1 not found"),
        (["report", "run-1"], KubeError(403, "forbidden"), "error: 403: forbidden"),
    ],
)
def test_a_missing_object_or_refused_call_is_one_error_line_naming_it(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    error: Exception,
    message: str,
) -> None:
    monkeypatch.setattr(kubectl_plugin, "load_api_client", lambda: None)
    monkeypatch.setattr(kubectl_plugin, "Kube", lambda _client: _Gone(error))
    assert kubectl_plugin.main(["-n", "team-a", *argv]) == 1
    assert capsys.readouterr().err.strip() == message
