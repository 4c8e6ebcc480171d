"""Weight loader run by the cache Job: fills the cache volume once, so serving pods start offline."""

from __future__ import annotations

import logging
from pathlib import Path

import huggingface_hub

from llmops_operator.api.model import SourceSpec

log = logging.getLogger("llmops.loader")
COMPLETE_MARKER = ".llmops-complete"


def load_weights(uri: str, revision: str | None, dest: str) -> int:
    """Download into `dest`; resumable (huggingface-hub skips finished files) and idempotent."""
    source = SourceSpec(uri=uri, revision=revision)
    target = Path(dest)
    marker = target / COMPLETE_MARKER
    if marker.exists() and marker.read_text().strip() == f"{uri}@{revision or ''}":
        log.info("cache already complete for %s", uri)
        return 0
    target.mkdir(parents=True, exist_ok=True)
    if source.scheme == "hf":
        # The token is read by huggingface-hub from HF_TOKEN (set from the Secret); never logged.
        huggingface_hub.snapshot_download(repo_id=source.location, revision=revision, local_dir=str(target))
    elif source.scheme == "pvc":
        log.info("pvc source %s needs no download", uri)
    else:
        log.error("the %s:// scheme is not supported by the loader yet; use hf:// or pvc://", source.scheme)
        return 2
    marker.write_text(f"{uri}@{revision or ''}")
    log.info("loaded %s (revision %s) into %s", uri, revision or "default", target)
    return 0
