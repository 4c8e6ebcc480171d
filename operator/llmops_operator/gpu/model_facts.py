"""Model size facts for the planner, read from the Hugging Face Hub (engines.md §5).

`facts_from` is pure: config.json + the safetensors parameter count per dtype -> `ModelFacts`.
`HuggingFaceHub` reads both with short timeouts (safetensors headers only, never the weights).
`FactsCache` asks the Hub once per (repo, revision), remembers failures for a while and never
raises: a Model whose size is unknown is still planned, with the planner's default.

The Hugging Face token is passed explicitly and never appears in errors or logs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import huggingface_hub
import huggingface_hub.constants

from llmops_operator.api.model import HF_URI
from llmops_operator.gpu.planner import ModelFacts

log = logging.getLogger(__name__)

HF_SCHEME = "hf://"
RETRY_AFTER_SECONDS = 600.0
"""How long a failed lookup is remembered before the Hub is asked again."""
HUB_TIMEOUT_SECONDS = 10.0
MAX_ERROR_LENGTH = 300

BYTES_PER_SAFETENSORS_DTYPE: dict[str, float] = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "BF16": 2,
    "F16": 2,
    "I16": 2,
    "U16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "F8_E8M0": 1,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
}
"""Bytes per element of safetensors dtypes (the header's `dtype` strings)."""

_CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers"),
    "num_attention_heads": ("num_attention_heads", "n_head"),
    "num_key_value_heads": ("num_key_value_heads",),
    "head_dim": ("head_dim",),
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "max_position_embeddings": ("max_position_embeddings", "n_positions"),
}
"""config.json keys per fact: the transformers name first, then older GPT-style aliases."""


def _positive_int(value: Any) -> int | None:
    """A usable count from config.json, or None (absent, null, bool, non-integral, <= 0)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, float) and value.is_integer() and value > 0:
        return int(value)
    return None


def _lookup(config: Mapping[str, Any], fact: str) -> int | None:
    for key in _CONFIG_KEYS[fact]:
        found = _positive_int(config.get(key))
        if found is not None:
            return found
    return None


def _text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's part: multimodal configs nest it under `text_config`."""
    nested = config.get("text_config")
    if _lookup(config, "num_hidden_layers") is None and isinstance(nested, Mapping):
        return nested
    return config


def facts_from(config: Mapping[str, Any], parameter_count: Mapping[str, int]) -> ModelFacts:
    """Size facts from config.json and the safetensors parameter count per dtype.

    Total parameters are the sum over dtypes; bytes per parameter are those of the dtype holding
    the most parameters (None when unknown). `head_dim` falls back to hidden_size / heads.
    Raises ValueError when `parameter_count` holds no parameters.
    """
    counts = {dtype: n for dtype, n in parameter_count.items() if isinstance(n, int) and n > 0}
    if not counts:
        raise ValueError("the safetensors metadata counts no parameters")
    dominant = max(counts, key=lambda dtype: (counts[dtype], dtype))
    text = _text_config(config)
    heads = _lookup(text, "num_attention_heads")
    head_dim = _lookup(text, "head_dim")
    hidden = _lookup(text, "hidden_size")
    if head_dim is None and hidden and heads and hidden % heads == 0:
        head_dim = hidden // heads
    return ModelFacts(
        parameter_count=sum(counts.values()),
        num_hidden_layers=_lookup(text, "num_hidden_layers"),
        num_attention_heads=heads,
        num_key_value_heads=_lookup(text, "num_key_value_heads"),
        head_dim=head_dim,
        max_position_embeddings=_lookup(text, "max_position_embeddings"),
        bytes_per_param=BYTES_PER_SAFETENSORS_DTYPE.get(dominant.upper()),
    )


def hf_repo(uri: str) -> str | None:
    """`org/repo` of an `hf://org/repo` URI; None for other schemes or malformed URIs."""
    if not re.match(HF_URI, uri):
        return None
    return uri[len(HF_SCHEME) :]


class HubMetadata(Protocol):
    """Where model metadata comes from (the Hub, or a fake in tests)."""

    def safetensors_parameter_count(
        self, repo: str, revision: str | None, token: str | None
    ) -> dict[str, int]:
        """Parameters per safetensors dtype, e.g. `{"BF16": 8030261248}`."""
        ...

    def config(self, repo: str, revision: str | None, token: str | None) -> dict[str, Any]:
        """The repository's config.json."""
        ...


class HuggingFaceHub:
    """`HubMetadata` from the Hugging Face Hub: safetensors headers (HTTP range reads) and
    config.json. Refuses to go online when `HF_HUB_OFFLINE` is set."""

    def __init__(
        self,
        endpoint: str | None = None,
        timeout: float = HUB_TIMEOUT_SECONDS,
        offline: bool | None = None,
        cache_dir: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.offline = (
            (huggingface_hub.constants.HF_HUB_OFFLINE or _env_true("HF_HUB_OFFLINE"))
            if offline is None
            else offline
        )
        self.cache_dir = cache_dir

    def _check_online(self) -> None:
        if self.offline:
            raise RuntimeError("HF_HUB_OFFLINE is set: the Hub is not consulted")

    def safetensors_parameter_count(
        self, repo: str, revision: str | None, token: str | None
    ) -> dict[str, int]:
        self._check_online()
        api = huggingface_hub.HfApi(endpoint=self.endpoint, token=token or False)
        metadata = api.get_safetensors_metadata(
            repo, revision=revision, token=token or False, timeout=self.timeout
        )
        return dict(metadata.parameter_count)

    def config(self, repo: str, revision: str | None, token: str | None) -> dict[str, Any]:
        self._check_online()
        path = huggingface_hub.hf_hub_download(
            repo,
            "config.json",
            revision=revision,
            token=token or False,
            etag_timeout=self.timeout,
            endpoint=self.endpoint,
            cache_dir=self.cache_dir,
        )
        with open(str(path), encoding="utf-8") as handle:
            loaded = json.load(handle)
        if not isinstance(loaded, dict):
            raise ValueError("config.json is not a JSON object")
        return loaded


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def describe_error(error: BaseException, token: str | None) -> str:
    """One line for status and logs: the exception's type and message, token masked."""
    text = " ".join(f"{type(error).__name__}: {error}".split())
    if token:
        text = text.replace(token, "***")
    if len(text) > MAX_ERROR_LENGTH:
        text = text[: MAX_ERROR_LENGTH - 3] + "..."
    return text


@dataclass(frozen=True)
class _Entry:
    facts: ModelFacts | None
    error: str | None
    retry_at: float | None
    """When a failed lookup may be tried again; None for successes (kept for good)."""


class FactsCache:
    """Model facts per (repo, revision), looked up once; failures are remembered for
    `retry_after` seconds. Thread-safe; a lookup of one key never blocks others."""

    def __init__(
        self,
        hub: HubMetadata,
        now: Callable[[], float] = time.monotonic,
        retry_after: float = RETRY_AFTER_SECONDS,
    ) -> None:
        self._hub = hub
        self._now = now
        self._retry_after = retry_after
        self._entries: dict[tuple[str, str | None], _Entry] = {}
        self._locks: dict[tuple[str, str | None], threading.Lock] = {}
        self._guard = threading.Lock()

    def get(self, uri: str, revision: str | None = None, token: str | None = None) -> ModelFacts | None:
        """Facts of an hf:// model, or None (other schemes, or the lookup failed: see
        `last_error`). Never raises."""
        repo = hf_repo(uri)
        if repo is None:
            return None
        key = (repo, revision)
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            entry = self._entries.get(key)
            if entry is None or (entry.retry_at is not None and self._now() >= entry.retry_at):
                entry = self._lookup(repo, revision, token)
                self._entries[key] = entry
        return entry.facts

    def last_error(self, uri: str, revision: str | None = None) -> str | None:
        """Why the last lookup of this model failed; None if it succeeded or never ran."""
        repo = hf_repo(uri)
        entry = self._entries.get((repo, revision)) if repo else None
        return entry.error if entry else None

    def _lookup(self, repo: str, revision: str | None, token: str | None) -> _Entry:
        try:
            counts = self._hub.safetensors_parameter_count(repo, revision, token)
            config = self._hub.config(repo, revision, token)
            return _Entry(facts_from(config, counts), None, None)
        except Exception as error:  # any failure means "size unknown", never a crash
            reason = describe_error(error, token)
            log.warning("model facts of hf://%s@%s unavailable: %s", repo, revision or "main", reason)
            return _Entry(None, reason, self._now() + self._retry_after)
