"""PromptVersion status: validation result, content hash and the Models that bind it."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from llmops_operator import prompts
from llmops_operator.kube.apply import status_unchanged, write_status
from llmops_operator.runtime.context import OperatorContext

log = logging.getLogger("llmops.prompts")


def reconcile_prompt_version(ctx: OperatorContext, obj: dict[str, Any]) -> None:
    """Write the status when it changed; an invalid version gets a Warning Event once."""
    desired = prompts.prompt_version_status(obj, ctx.store.models.objects.values(), datetime.now(UTC))
    current = obj.get("status") or {}
    if status_unchanged(current, desired):
        return
    turned_invalid = not desired["valid"] and current.get("valid") is not False
    write_status(
        ctx, "PromptVersion", obj, desired, ("InvalidPrompt", desired["reason"]) if turned_invalid else None
    )
