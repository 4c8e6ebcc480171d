"""PromptVersion and EvalGate status: validation results, content hash, and the Models that bind them."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from llmops_operator import prompts
from llmops_operator.api.common import API_VERSION, Condition
from llmops_operator.api.evals import EvalGateSpec
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.conditions import set_condition
from llmops_operator.evals.assertions import AssertionConfigError, check_assertion
from llmops_operator.kube.client import KubeError, NotFound
from llmops_operator.runtime.context import OperatorContext

log = logging.getLogger("llmops.prompts")


def prompt_version_status(obj: dict[str, Any], models: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The status a PromptVersion should have (pure)."""
    meta = obj["metadata"]
    try:
        spec = PromptVersionSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        return {
            "valid": False,
            "reason": f"invalid spec: {exc.errors()[0]['msg']}",
            "observedGeneration": meta.get("generation"),
        }
    result = prompts.validate(spec)
    used_by = sorted(
        m["metadata"]["name"]
        for m in models
        if m["metadata"]["namespace"] == meta["namespace"]
        and any(
            p.get("name") == spec.prompt and p.get("version") == spec.version
            for p in (m.get("spec") or {}).get("prompts") or []
        )
    )
    return {
        "contentHash": prompts.content_hash(spec),
        "valid": result.valid,
        "reason": result.reason,
        "usedBy": used_by,
        "observedGeneration": meta.get("generation"),
    }


def _write_status(
    ctx: OperatorContext,
    kind: str,
    obj: dict[str, Any],
    status: dict[str, Any],
    warning: tuple[str, str] | None,
) -> None:
    """Patch the status, then post the Warning Event (reason, message) if there is one."""
    meta = obj["metadata"]
    try:
        ctx.kube.patch_status(kind, meta["namespace"], meta["name"], status)
        if warning is not None:
            involved = {**obj, "apiVersion": API_VERSION, "kind": kind}
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            ctx.kube.post_event(involved, "Warning", warning[0], warning[1], stamp)
    except (NotFound, KubeError) as exc:
        log.warning("could not write status of %s %s/%s: %s", kind, meta["namespace"], meta["name"], exc)


def reconcile_prompt_version(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the status when it changed; an invalid version gets a Warning Event once."""
    desired = prompt_version_status(obj, ctx.store.models.objects.values())
    current = obj.get("status") or {}
    if all(current.get(k) == v for k, v in desired.items()):
        return
    turned_invalid = not desired["valid"] and current.get("valid") is not False
    _write_status(
        ctx, "PromptVersion", obj, desired, ("InvalidPrompt", desired["reason"]) if turned_invalid else None
    )


def eval_gate_status(obj: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The Valid condition of an EvalGate: what would make every run an Error, said at apply time."""
    meta = obj["metadata"]
    problem = ""
    try:
        spec = EvalGateSpec.model_validate(obj.get("spec") or {})
        for index, assertion in enumerate(spec.assertions):
            check_assertion(assertion, assertion.name or f"{assertion.type}[{index}]")
    except ValidationError as exc:
        problem = f"invalid spec: {exc.errors()[0]['msg']}"
    except AssertionConfigError as exc:
        problem = str(exc)
    current = [Condition.model_validate(c) for c in (obj.get("status") or {}).get("conditions") or []]
    conditions = set_condition(
        current,
        "Valid",
        "False" if problem else "True",
        "InvalidAssertion" if problem else "Validated",
        problem or "assertions compile",
        now,
        meta.get("generation"),
    )
    return {
        "conditions": [c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in conditions],
        "observedGeneration": meta.get("generation"),
    }


def reconcile_eval_gate(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the Valid condition when it changed; a Warning Event when the gate turns invalid."""
    now = datetime.now(UTC)
    desired = eval_gate_status(obj, now)
    current = obj.get("status") or {}
    before = {c.get("type"): c for c in current.get("conditions") or []}.get("Valid") or {}
    after = desired["conditions"][[c["type"] for c in desired["conditions"]].index("Valid")]
    if (before.get("status"), before.get("message")) == (after["status"], after["message"]) and current.get(
        "observedGeneration"
    ) == desired["observedGeneration"]:
        return
    warning = ("InvalidAssertion", after["message"]) if after["status"] == "False" else None
    _write_status(ctx, "EvalGate", obj, desired, warning)
