"""kubectl llmops: each control command is exactly the documented status patch."""

from __future__ import annotations

import pytest

from llmops_operator.cli.kubectl_plugin import control_patch, render_status


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
