"""PromptVersion status: validation result, content hash and the Models that bind it."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from llmops_operator import prompts
from llmops_operator.api.common import API_VERSION
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.handlers.context import OperatorContext
from llmops_operator.kube.client import KubeError, NotFound

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


def reconcile_prompt_version(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the status when it changed; an invalid version gets a Warning Event once."""
    desired = prompt_version_status(obj, ctx.store.models.objects.values())
    current = obj.get("status") or {}
    if all(current.get(k) == v for k, v in desired.items()):
        return
    meta = obj["metadata"]
    try:
        ctx.kube.patch_status("PromptVersion", meta["namespace"], meta["name"], desired)
    except (NotFound, KubeError) as exc:
        log.warning("could not write status of PromptVersion %s/%s: %s", meta["namespace"], meta["name"], exc)
        return
    if not desired["valid"] and current.get("valid") is not False:
        involved = {**obj, "apiVersion": API_VERSION, "kind": "PromptVersion"}
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            ctx.kube.post_event(involved, "Warning", "InvalidPrompt", desired["reason"], stamp)
        except KubeError as exc:
            log.warning(
                "could not post Event on PromptVersion %s/%s: %s", meta["namespace"], meta["name"], exc
            )
