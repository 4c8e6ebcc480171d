"""PromptVersion status: validation result, content hash and the Models that bind it."""

from __future__ import annotations

import logging
from typing import Any

from llmops_operator import prompts
from llmops_operator.kube.apply import write_status
from llmops_operator.runtime.context import OperatorContext

log = logging.getLogger("llmops.prompts")


def reconcile_prompt_version(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the status when it changed; an invalid version gets a Warning Event once."""
    desired = prompts.prompt_version_status(obj, ctx.store.models.objects.values())
    current = obj.get("status") or {}
    if all(current.get(k) == v for k, v in desired.items()):
        return
    turned_invalid = not desired["valid"] and current.get("valid") is not False
    write_status(
        ctx, "PromptVersion", obj, desired, ("InvalidPrompt", desired["reason"]) if turned_invalid else None
    )
