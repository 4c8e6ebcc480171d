"""EvalGate status: the Valid condition, said at apply time, and the gate's last EvalRun."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmops_operator.conditions import VALID, Reason
from llmops_operator.evals.gate import eval_gate_status
from llmops_operator.kube.apply import write_status
from llmops_operator.runtime.context import OperatorContext


def reconcile_eval_gate(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the status when the Valid condition or the last run changed; a Warning Event when
    the gate turns invalid."""
    now = datetime.now(UTC)
    desired = eval_gate_status(obj, now, ctx.store.eval_runs.objects.values())
    current = obj.get("status") or {}
    before = {c.get("type"): c for c in current.get("conditions") or []}.get(VALID) or {}
    after = desired["conditions"][[c["type"] for c in desired["conditions"]].index(VALID)]
    unchanged = (before.get("status"), before.get("message")) == (after["status"], after["message"])
    if (
        unchanged
        and current.get("observedGeneration") == desired["observedGeneration"]
        and current.get("lastRun") == desired.get("lastRun")
    ):
        return
    warning = (Reason.INVALID_ASSERTION, after["message"]) if after["status"] == "False" else None
    write_status(ctx, "EvalGate", obj, desired, warning)
