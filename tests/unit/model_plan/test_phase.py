"""The Model phase is derived from status alone (Argo `CalculateRolloutPhase`): a table."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from llmops_operator.model_plan.status import phase
from llmops_operator.model_plan.world import Pass, World

NOW = datetime(2026, 1, 1, tzinfo=UTC)
PAUSED = [{"reason": "PausedStep", "startTime": NOW.isoformat()}]


def _condition(type_: str, status: str, reason: str = "R") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "lastTransitionTime": NOW.isoformat()}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({}, "Pending"),
        ({"conditions": [_condition("Ready", "False", "InvalidSpec")]}, "Failed"),
        ({"stableRevision": "a", "readyReplicas": 1}, "Progressing"),
        ({"stableRevision": "a", "readyReplicas": 1, "conditions": [_condition("Ready", "True")]}, "Ready"),
        ({"stableRevision": "a", "canaryRevision": "b", "readyReplicas": 1}, "Progressing"),
        (
            {"stableRevision": "a", "readyReplicas": 1, "rollout": {"revision": "b", "abort": True}},
            "Degraded",
        ),
        (
            {
                "stableRevision": "a",
                "readyReplicas": 1,
                "rollout": {"revision": "b", "pauseConditions": PAUSED},
            },
            "Paused",
        ),
        ({"stableRevision": "a", "readyReplicas": 0}, "Degraded"),
        (
            {
                "stableRevision": "a",
                "readyReplicas": 1,
                "conditions": [_condition("Available", "False", "PodsNeverReady")],
            },
            "Degraded",
        ),
        (
            {"stableRevision": "a", "readyReplicas": 1, "conditions": [_condition("Progressing", "False")]},
            "Degraded",
        ),
    ],
)
def test_phase(status: dict[str, Any], expected: str) -> None:
    model = {"metadata": {"name": "m", "namespace": "ns"}, "spec": {}, "status": status}
    assert phase(Pass.start(World(model=model, now=NOW, operator_image="op"))) == expected
