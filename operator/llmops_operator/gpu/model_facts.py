"""Model size facts for the planner, read from the Hugging Face Hub (engines.md §5).

`facts_from` is pure: config.json + the safetensors parameter count per dtype -> `ModelFacts`.
`HuggingFaceHub` reads both with short timeouts (safetensors headers only, never the weights).
`FactsCache` asks the Hub once per (repo, revision), remembers failures for a while and never
raises: a Model whose size is unknown is still planned, with the planner's default. In the
operator the lookups run on their own threads, off the reconcile workers: a pass never waits on
the Hub; it sees "pending" (and holds a new revision briefly) and is queued again when the
answer is in. A lookup still running after `LOOKUP_DEADLINE_SECONDS` counts as failed.

The Hugging Face token is passed explicitly and never appears in errors or logs.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Protocol

import huggingface_hub
import huggingface_hub.constants
from huggingface_hub.utils import build_hf_headers

from llmops_operator.api.model import HF_URI
from llmops_operator.gpu.planner import ModelFacts
from llmops_operator.lru import recall, remember

log = logging.getLogger(__name__)

HF_SCHEME = "hf://"
RETRY_AFTER_SECONDS = 600.0
"""How long a failed lookup is remembered before the Hub is asked again."""
HUB_TIMEOUT_SECONDS = 10.0
"""Per HTTP request to the Hub."""
LOOKUP_DEADLINE_SECONDS = 30.0
"""A lookup not done by then is reported as failed (the planner goes on with its default)."""
MAX_ENTRIES = 1024
"""Models (repo, revision) whose facts are kept; one dropped is looked up again if named again."""
MAX_CONFIG_BYTES = 1 << 20
"""config.json larger than this is refused (a real one is a few KiB); safetensors headers are
bounded by huggingface_hub itself (SAFETENSORS_MAX_HEADER_LENGTH)."""
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
        url = huggingface_hub.hf_hub_url(repo, "config.json", revision=revision, endpoint=self.endpoint)
        headers = build_hf_headers(token=token or False)
        with huggingface_hub.get_session().stream(
            "GET", url, headers=headers, timeout=self.timeout, follow_redirects=True
        ) as response:
            response.raise_for_status()
            body = read_bounded(response.iter_bytes(), MAX_CONFIG_BYTES)
        loaded = json.loads(body)
        if not isinstance(loaded, dict):
            raise ValueError("config.json is not a JSON object")
        return loaded


def read_bounded(chunks: Iterable[bytes], limit: int) -> bytes:
    """The whole body, or ValueError as soon as it passes `limit` bytes (nothing more is read)."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise ValueError(f"config.json is larger than {limit} bytes")
    return bytes(body)


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
    `retry_after` seconds. Thread-safe. Without an `executor` a lookup runs in the caller (unit
    tests, the CLI); with one, `get` never blocks: it starts the lookup, answers None (see
    `pending`) and calls `on_ready` with the waiters once the answer is in."""

    def __init__(
        self,
        hub: HubMetadata,
        now: Callable[[], float] = time.monotonic,
        retry_after: float = RETRY_AFTER_SECONDS,
        executor: Executor | None = None,
        on_ready: Callable[[set[Hashable]], None] | None = None,
        deadline: float = LOOKUP_DEADLINE_SECONDS,
    ) -> None:
        self._hub = hub
        self._now = now
        self._retry_after = retry_after
        self._executor = executor
        self._on_ready = on_ready
        self._deadline = deadline
        self._entries: OrderedDict[tuple[str, str | None], _Entry] = OrderedDict()
        """Least recently used first, at most `MAX_ENTRIES` (every revision a Model ever named
        would stay otherwise: issue 15)."""
        self._started: dict[tuple[str, str | None], float] = {}
        """Lookups in flight -> when they started."""
        self._waiters: dict[tuple[str, str | None], set[Hashable]] = {}
        self._guard = threading.Lock()

    def get(
        self, uri: str, revision: str | None = None, token: str | None = None, waiter: Hashable = None
    ) -> ModelFacts | None:
        """Facts of an hf:// model, or None (other schemes, the lookup failed: see `last_error`,
        or it is still running: see `pending`). Never raises."""
        repo = hf_repo(uri)
        if repo is None:
            return None
        key = (repo, revision)
        with self._guard:
            entry = recall(self._entries, key)
            fresh = entry is not None and (entry.retry_at is None or self._now() < entry.retry_at)
            if fresh or key in self._started:
                if not fresh and waiter is not None:
                    self._waiters.setdefault(key, set()).add(waiter)
                return entry.facts if fresh and entry else None
            self._started[key] = self._now()
            if waiter is not None:
                self._waiters.setdefault(key, set()).add(waiter)
        if self._executor is None:
            self._finish(key, self._lookup(repo, revision, token))
            return self._entries[key].facts if key in self._entries else None
        self._executor.submit(lambda: self._finish(key, self._lookup(repo, revision, token)))
        return None

    def pending(self, uri: str, revision: str | None = None) -> bool:
        """Whether a lookup of this model is running and still within its deadline."""
        repo = hf_repo(uri)
        with self._guard:
            started = self._started.get((repo, revision)) if repo else None
        return started is not None and self._now() - started < self._deadline

    def last_error(self, uri: str, revision: str | None = None) -> str | None:
        """Why the last lookup of this model failed (or that it is overdue); None if it
        succeeded, never ran or is still within its deadline."""
        repo = hf_repo(uri)
        if repo is None:
            return None
        with self._guard:
            entry = self._entries.get((repo, revision))
            started = self._started.get((repo, revision))
        if started is not None and self._now() - started >= self._deadline:
            return f"the Hugging Face Hub did not answer within {self._deadline:.0f}s"
        return entry.error if entry else None

    def _finish(self, key: tuple[str, str | None], entry: _Entry) -> None:
        with self._guard:
            remember(self._entries, key, entry, MAX_ENTRIES)
            self._started.pop(key, None)
            waiters = self._waiters.pop(key, set())
        if waiters and self._on_ready is not None:
            self._on_ready(waiters)

    def _lookup(self, repo: str, revision: str | None, token: str | None) -> _Entry:
        try:
            counts = self._hub.safetensors_parameter_count(repo, revision, token)
            config = self._hub.config(repo, revision, token)
            return _Entry(facts_from(config, counts), None, None)
        except Exception as error:  # any failure means "size unknown", never a crash
            reason = describe_error(error, token)
            log.warning("model facts of hf://%s@%s unavailable: %s", repo, revision or "main", reason)
            return _Entry(None, reason, self._now() + self._retry_after)
