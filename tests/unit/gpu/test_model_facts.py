"""Model facts: config.json + safetensors counts -> ModelFacts, and the Hub lookup cache."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.model import ModelSpec
from llmops_operator.gpu import model_facts
from llmops_operator.gpu.model_facts import (
    FactsCache,
    HuggingFaceHub,
    describe_error,
    facts_from,
    hf_repo,
    read_bounded,
)
from llmops_operator.gpu.planner import GIB, OVERHEAD, ModelFacts, estimate_memory_gib, plan

KIB = 1024

# Config numbers from engines.md §5. Llama-3.1-70B states head_dim; the others derive it.
LLAMA_8B_CONFIG = {
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "hidden_size": 4096,
    "max_position_embeddings": 131072,
}
LLAMA_70B_CONFIG = {
    "num_hidden_layers": 80,
    "num_attention_heads": 64,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "hidden_size": 8192,
    "max_position_embeddings": 131072,
}
MIXTRAL_CONFIG = {
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "hidden_size": 4096,
    "max_position_embeddings": 32768,
    "num_local_experts": 8,
}
QWEN_7B_CONFIG = {
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "hidden_size": 3584,
    "max_position_embeddings": 131072,
}

MODELS = [
    # (name, config, parameter_count, expected facts, KV bf16 bytes per token from the table)
    (
        "llama-3.1-8b",
        LLAMA_8B_CONFIG,
        {"BF16": 8_030_261_248},
        ModelFacts(8_030_261_248, 32, 32, 8, 128, 131072, 2),
        128 * KIB,
    ),
    (
        "llama-3.1-70b",
        LLAMA_70B_CONFIG,
        {"BF16": 70_553_706_496},
        ModelFacts(70_553_706_496, 80, 64, 8, 128, 131072, 2),
        320 * KIB,
    ),
    (
        "mixtral-8x7b",
        MIXTRAL_CONFIG,
        {"BF16": 46_702_792_704},
        ModelFacts(46_702_792_704, 32, 32, 8, 128, 32768, 2),
        128 * KIB,
    ),
    (
        "qwen2.5-7b",
        QWEN_7B_CONFIG,
        {"BF16": 7_615_616_512},
        ModelFacts(7_615_616_512, 28, 28, 4, 128, 131072, 2),
        56 * KIB,
    ),
]


def make_spec(**serving: Any) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "source": {"uri": "hf://org/repo"},
            "engine": {"type": "vllm"},
            "resources": {"gpus": "auto", "gpuProducts": ["NVIDIA-H100-80GB-HBM3"]},
            "serving": serving,
        }
    )


@pytest.mark.parametrize(("name", "config", "counts", "expected", "kv_per_token"), MODELS)
def test_facts_from_known_models(
    name: str, config: dict[str, Any], counts: dict[str, int], expected: ModelFacts, kv_per_token: int
) -> None:
    facts = facts_from(config, counts)
    assert facts == expected
    assert facts.head_dim and facts.num_hidden_layers and facts.num_key_value_heads and facts.bytes_per_param
    by_formula = (
        2 * facts.num_hidden_layers * facts.num_key_value_heads * facts.head_dim * facts.bytes_per_param
    )
    assert by_formula == kv_per_token
    # The planner's KV estimate (weights left out) over 128k tokens, dtype taken from the facts.
    context = 131072
    kv_only = dataclasses.replace(facts, parameter_count=0)
    expected_gib = round(kv_per_token * context * OVERHEAD / GIB, 1)
    assert estimate_memory_gib(make_spec(maxModelLen=context), kv_only) == expected_gib


def test_facts_size_gpus_auto() -> None:
    """With facts, 70B bf16 at 16k context needs more than one H100; without, the default."""
    facts = facts_from(LLAMA_70B_CONFIG, {"BF16": 70_553_706_496})
    spec = make_spec(maxModelLen=16384)
    assert plan(spec, None, facts).gpus == 4
    assert plan(spec, None, None).gpus == 1


@pytest.mark.parametrize(
    ("counts", "total", "bytes_per_param"),
    [
        ({"BF16": 100}, 100, 2),
        ({"F16": 100}, 100, 2),
        ({"F32": 100}, 100, 4),
        ({"F8_E4M3": 90, "BF16": 10}, 100, 1),
        ({"I8": 70, "F32": 30}, 100, 1),
        ({"BF16": 900, "F32": 100}, 1000, 2),
        ({"BF16": 0, "F32": 5}, 5, 4),
        ({"MYSTERY": 10}, 10, None),
    ],
)
def test_total_is_the_sum_and_bytes_follow_the_dominant_dtype(
    counts: dict[str, int], total: int, bytes_per_param: float | None
) -> None:
    facts = facts_from(LLAMA_8B_CONFIG, counts)
    assert (facts.parameter_count, facts.bytes_per_param) == (total, bytes_per_param)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        # head_dim: null in config.json -> derived
        ({"num_attention_heads": 32, "hidden_size": 4096, "head_dim": None}, 128),
        # stated head_dim wins over hidden_size / heads (e.g. Gemma)
        ({"num_attention_heads": 8, "hidden_size": 3072, "head_dim": 256}, 256),
        # hidden not divisible by heads: unknown, not a rounded guess
        ({"num_attention_heads": 7, "hidden_size": 100}, None),
        ({"hidden_size": 4096}, None),
        ({}, None),
    ],
)
def test_head_dim_fallback(config: dict[str, Any], expected: int | None) -> None:
    assert facts_from(config, {"BF16": 1}).head_dim == expected


def test_multimodal_config_reads_the_text_config() -> None:
    config = {
        "architectures": ["X"],
        "text_config": QWEN_7B_CONFIG,
        "vision_config": {"num_hidden_layers": 4},
    }
    facts = facts_from(config, {"BF16": 8})
    assert (facts.num_hidden_layers, facts.num_key_value_heads, facts.head_dim) == (28, 4, 128)


def test_gpt_style_config_keys() -> None:
    facts = facts_from(
        {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_positions": 1024}, {"F32": 124_000_000}
    )
    assert facts == ModelFacts(124_000_000, 12, 12, None, 64, 1024, 4)


def test_missing_kv_heads_stays_unknown() -> None:
    assert facts_from({"num_attention_heads": 16}, {"BF16": 1}).num_key_value_heads is None


@pytest.mark.parametrize("counts", [{}, {"BF16": 0}])
def test_no_parameters_is_an_error(counts: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="no parameters"):
        facts_from(LLAMA_8B_CONFIG, counts)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
config_keys = st.sampled_from(
    [
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "hidden_size",
        "max_position_embeddings",
        "text_config",
        "n_layer",
        "n_head",
        "n_embd",
    ]
)


@given(
    config=st.dictionaries(config_keys | st.text(max_size=5), json_values, max_size=8),
    counts=st.dictionaries(
        st.text(max_size=8), st.integers(min_value=1, max_value=10**12), min_size=1, max_size=4
    ),
)
def test_any_config_gives_positive_or_unknown_facts(config: dict[str, Any], counts: dict[str, int]) -> None:
    """config.json is someone else's file: odd values become unknown, never a crash."""
    facts = facts_from(config, counts)
    assert facts.parameter_count == sum(counts.values())
    for field in dataclasses.fields(facts):
        value = getattr(facts, field.name)
        assert value is None or (
            isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
        )


@pytest.mark.parametrize(
    ("uri", "repo"),
    [
        ("hf://meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
        ("s3://bucket/prefix", None),
        ("pvc://claim/path", None),
        ("hf://no-repo", None),
        ("hf://org/repo/extra", None),
    ],
)
def test_hf_repo(uri: str, repo: str | None) -> None:
    assert hf_repo(uri) == repo


@given(st.text(max_size=60))
def test_hf_repo_never_raises(uri: str) -> None:
    repo = hf_repo(uri)
    assert repo is None or uri == f"hf://{repo}"


# ---------------------------------------------------------------------------------------------
# FactsCache with a fake Hub
# ---------------------------------------------------------------------------------------------

TOKEN = "hf_SecretTokenValue1234567890"


class FakeHub:
    """Answers from dicts; records calls; can fail (echoing the token, as a careless library might)."""

    def __init__(self, models: dict[tuple[str, str | None], tuple[dict[str, Any], dict[str, int]]]) -> None:
        self.models = models
        self.calls: list[tuple[str, str, str | None, str | None]] = []
        self.failure: Exception | None = None

    def safetensors_parameter_count(
        self, repo: str, revision: str | None, token: str | None
    ) -> dict[str, int]:
        self.calls.append(("counts", repo, revision, token))
        if self.failure:
            raise self.failure
        if (repo, revision) not in self.models:
            raise LookupError(f"404 for {repo}@{revision} with Authorization: Bearer {token}")
        return self.models[(repo, revision)][1]

    def config(self, repo: str, revision: str | None, token: str | None) -> dict[str, Any]:
        self.calls.append(("config", repo, revision, token))
        return self.models[(repo, revision)][0]


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


LLAMA = "hf://meta-llama/Llama-3.1-8B"
LLAMA_KEY = ("meta-llama/Llama-3.1-8B", None)


def make_cache() -> tuple[FactsCache, FakeHub, Clock]:
    hub = FakeHub({LLAMA_KEY: (LLAMA_8B_CONFIG, {"BF16": 8_030_261_248})})
    clock = Clock()
    return FactsCache(hub, now=clock, retry_after=600), hub, clock


def test_cache_looks_up_once_per_repo_and_revision() -> None:
    cache, hub, clock = make_cache()
    first = cache.get(LLAMA, None, TOKEN)
    clock.t += 10_000
    second = cache.get(LLAMA, None, TOKEN)
    assert first == second == MODELS[0][3]
    assert [call[0] for call in hub.calls] == ["counts", "config"]
    assert hub.calls[0] == ("counts", "meta-llama/Llama-3.1-8B", None, TOKEN)
    assert cache.last_error(LLAMA) is None


def test_cache_keys_on_revision() -> None:
    cache, hub, _ = make_cache()
    hub.models[("meta-llama/Llama-3.1-8B", "abc123")] = (LLAMA_70B_CONFIG, {"BF16": 70})
    assert cache.get(LLAMA, "abc123") == ModelFacts(70, 80, 64, 8, 128, 131072, 2)
    assert cache.get(LLAMA) == MODELS[0][3]
    assert len(hub.calls) == 4


def test_failure_is_cached_then_retried_after_the_interval() -> None:
    cache, hub, clock = make_cache()
    hub.failure = TimeoutError("read timed out")
    assert cache.get(LLAMA, None, TOKEN) is None
    assert cache.last_error(LLAMA) == "TimeoutError: read timed out"
    clock.t += 599
    assert cache.get(LLAMA, None, TOKEN) is None
    assert len(hub.calls) == 1, "a failure within the interval is answered from the cache"

    hub.failure = None
    clock.t += 1
    assert cache.get(LLAMA, None, TOKEN) == MODELS[0][3]
    assert cache.last_error(LLAMA) is None
    assert len(hub.calls) == 3


def test_bad_metadata_is_a_cached_failure_not_a_crash() -> None:
    cache, hub, _ = make_cache()
    hub.models[LLAMA_KEY] = (LLAMA_8B_CONFIG, {})
    assert cache.get(LLAMA) is None
    assert "no parameters" in (cache.last_error(LLAMA) or "")


@pytest.mark.parametrize("uri", ["s3://bucket/llama", "pvc://weights/llama", "hf://malformed", ""])
def test_non_hf_sources_have_no_facts_and_never_reach_the_hub(uri: str) -> None:
    cache, hub, _ = make_cache()
    assert cache.get(uri, None, TOKEN) is None
    assert cache.last_error(uri) is None
    assert hub.calls == []


def test_token_never_appears_in_the_error() -> None:
    cache, _, _ = make_cache()
    missing = "hf://meta-llama/Private"
    assert cache.get(missing, "main", TOKEN) is None
    error = cache.last_error(missing, "main")
    assert error is not None and error.startswith("LookupError: 404 for meta-llama/Private@main")
    assert TOKEN not in error
    assert "***" in error


def test_token_never_appears_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    cache, _, _ = make_cache()
    with caplog.at_level("DEBUG"):
        cache.get("hf://meta-llama/Private", None, TOKEN)
    assert caplog.records, "the failure is logged"
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


def test_describe_error_is_one_bounded_line() -> None:
    text = describe_error(RuntimeError("line one\nline two " + "x" * 1000), None)
    assert "\n" not in text and len(text) == 300 and text.startswith("RuntimeError: line one line two")


def test_offline_hub_fails_without_network_and_the_cache_says_why() -> None:
    cache = FactsCache(HuggingFaceHub(offline=True), now=Clock())
    assert cache.get(LLAMA, None, TOKEN) is None
    assert "HF_HUB_OFFLINE" in (cache.last_error(LLAMA) or "")


def test_hub_reads_hf_hub_offline_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert HuggingFaceHub().offline is True
    assert HuggingFaceHub(offline=False).offline is False


class HeldHub(FakeHub):
    """A Hub whose answers wait until the test releases them (a slow or hanging Hub)."""

    def __init__(self) -> None:
        super().__init__({LLAMA_KEY: (LLAMA_8B_CONFIG, {"BF16": 8_030_261_248})})
        self.release = threading.Event()

    def safetensors_parameter_count(
        self, repo: str, revision: str | None, token: str | None
    ) -> dict[str, int]:
        assert self.release.wait(10), "the test never released the Hub"
        return super().safetensors_parameter_count(repo, revision, token)


def test_with_an_executor_a_lookup_never_blocks_and_wakes_its_waiters() -> None:
    """Given a Hub that has not answered yet, When two Models ask, Then both get None at once
    with `pending`, one lookup runs, and both are handed back once the answer is in."""
    hub, clock, ready = HeldHub(), Clock(), threading.Event()
    woken: list[set[Any]] = []
    with ThreadPoolExecutor(1) as pool:
        cache = FactsCache(hub, now=clock, executor=pool, on_ready=lambda w: (woken.append(w), ready.set()))
        assert cache.get(LLAMA, None, waiter=("ns", "a")) is None
        assert cache.get(LLAMA, None, waiter=("ns", "b")) is None
        assert cache.pending(LLAMA) and cache.last_error(LLAMA) is None
        hub.release.set()
        assert ready.wait(10)
    assert woken == [{("ns", "a"), ("ns", "b")}]
    assert cache.get(LLAMA) == MODELS[0][3] and not cache.pending(LLAMA)
    assert [c[0] for c in hub.calls] == ["counts", "config"]


def test_a_lookup_past_its_deadline_is_reported_as_failed() -> None:
    hub, clock = HeldHub(), Clock()
    with ThreadPoolExecutor(1) as pool:
        cache = FactsCache(hub, now=clock, executor=pool, deadline=30)
        cache.get(LLAMA)
        clock.t += 31
        assert not cache.pending(LLAMA)
        assert "did not answer within 30s" in (cache.last_error(LLAMA) or "")
        hub.release.set()


def test_an_oversized_config_is_refused_without_reading_the_rest() -> None:
    read: list[int] = []

    def chunks() -> Iterator[bytes]:
        for i in range(100):
            read.append(i)
            yield b"x" * 1024

    with pytest.raises(ValueError, match="larger than 4096 bytes"):
        read_bounded(chunks(), 4096)
    assert len(read) == 5
    assert read_bounded(iter([b'{"a":', b" 1}"]), 4096) == b'{"a": 1}'


def test_facts_are_kept_for_a_bounded_number_of_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every revision a Model ever named would stay otherwise; the one in use is never dropped."""
    monkeypatch.setattr(model_facts, "MAX_ENTRIES", 16)
    cache, hub, _ = make_cache()
    for i in range(2_000):
        assert cache.get(LLAMA) is not None  # in use: stays
        assert cache.get(LLAMA, f"rev{i}") is None  # unknown revision: a remembered failure
    assert len(cache._entries) == 16
    calls = len(hub.calls)
    cache.get(LLAMA)
    assert len(hub.calls) == calls  # still cached
    cache.get(LLAMA, "rev0")
    assert len(hub.calls) == calls + 1  # dropped: looked up again
