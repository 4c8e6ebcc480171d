"""EvalGate status: the Valid condition, said at apply time, and the gate's last EvalRun."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from llmops_operator.conditions import VALID, Reason
from llmops_operator.evals.gate import eval_gate_status
from llmops_operator.kube.apply import status_unchanged, write_status
from llmops_operator.runtime.context import OperatorContext


def reconcile_eval_gate(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the status when the Valid condition or the last run changed; a Warning Event when
    the gate turns invalid."""
    now = datetime.now(UTC)
    desired = eval_gate_status(obj, now, ctx.store.eval_runs.objects.values())
    if status_unchanged(obj.get("status") or {}, desired):
        return
    after = next(c for c in desired["conditions"] if c["type"] == VALID)
    warning = (Reason.INVALID_ASSERTION, after["message"]) if after["status"] == "False" else None
    write_status(ctx, "EvalGate", obj, desired, warning)
