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
from llmops_operator.conditions import READY, set_condition, set_progress
from llmops_operator.evals.assertions import AssertionConfigError, check_assertion
from llmops_operator.handlers.context import OperatorContext
from llmops_operator.kube.client import KubeError, NotFound

log = logging.getLogger("llmops.prompts")


def validity_conditions(
    obj: dict[str, Any],
    problem: str,
    valid: tuple[str, str],
    invalid_reason: str,
    now: datetime,
    types: tuple[str, ...] = (READY,),
) -> list[dict[str, Any]]:
    """`types` (Ready, and e.g. Valid) from a validation result, plus Stalled when invalid (only
    a new spec fixes it); unchanged conditions keep lastTransitionTime. `valid` is the
    (reason, message) of a valid object."""
    conditions = [Condition.model_validate(c) for c in (obj.get("status") or {}).get("conditions") or []]
    generation = obj["metadata"].get("generation")
    reason, message = (invalid_reason, problem) if problem else valid
    for type_ in types:
        status = "False" if problem else "True"
        conditions = set_condition(conditions, type_, status, reason, message, now, generation)
    progress = "Stalled" if problem else "Current"
    conditions = set_progress(conditions, progress, reason, message, now, generation)
    return [c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in conditions]


def prompt_version_status(
    obj: dict[str, Any], models: Iterable[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """The status a PromptVersion should have (pure)."""
    meta = obj["metadata"]
    valid = ("Validated", "templates compile")
    try:
        spec = PromptVersionSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        problem = f"invalid spec: {exc.errors()[0]['msg']}"
        return {
            "valid": False,
            "reason": problem,
            "conditions": validity_conditions(obj, problem, valid, "InvalidPrompt", now),
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
        "conditions": validity_conditions(
            obj, "" if result.valid else result.reason or "invalid", valid, "InvalidPrompt", now
        ),
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


def _unchanged(current: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether writing `desired` would change nothing but condition timestamps."""

    def summary(status: dict[str, Any]) -> dict[str, Any]:
        conditions = sorted(
            (c.get("type"), c.get("status"), c.get("reason"), c.get("message"), c.get("observedGeneration"))
            for c in status.get("conditions") or []
        )
        return {**status, "conditions": conditions}

    return all(summary(current).get(k) == v for k, v in summary(desired).items())


def reconcile_prompt_version(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the status when it changed; an invalid version gets a Warning Event once."""
    desired = prompt_version_status(obj, ctx.store.models.objects.values(), datetime.now(UTC))
    current = obj.get("status") or {}
    if _unchanged(current, desired):
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
    conditions = validity_conditions(
        obj, problem, ("Validated", "assertions compile"), "InvalidAssertion", now, ("Valid", READY)
    )
    return {"conditions": conditions, "observedGeneration": meta.get("generation")}


def reconcile_eval_gate(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the Valid condition when it changed; a Warning Event when the gate turns invalid."""
    now = datetime.now(UTC)
    desired = eval_gate_status(obj, now)
    current = obj.get("status") or {}
    if _unchanged(current, desired):
        return
    after = next(c for c in desired["conditions"] if c["type"] == "Valid")
    warning = ("InvalidAssertion", after["message"]) if after["status"] == "False" else None
    _write_status(ctx, "EvalGate", obj, desired, warning)
