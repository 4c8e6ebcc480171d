"""Revision hash, names and the RollingUpdate lifecycle."""

from __future__ import annotations

import copy
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator import prompts
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.model_status import RevisionRecord
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.revisions import (
    ObservedRevision,
    deployment_name,
    prune_history,
    record_revision,
    revision_hash,
    revision_service_name,
    rolling_update,
    shared_service_name,
)

BASE: dict[str, Any] = {
    "source": {"uri": "hf://meta-llama/Llama-3.1-8B-Instruct", "revision": "abc"},
    "engine": {"type": "vllm", "args": ["--enable-prefix-caching"], "env": [{"name": "A", "value": "1"}]},
    "resources": {"gpus": 2, "gpuProducts": ["NVIDIA-H100-80GB-HBM3"], "cpu": "8", "memory": "64Gi"},
    "serving": {"maxModelLen": 8192, "dtype": "bfloat16"},
    "placement": {"nodeSelector": {"pool": "gpu"}},
    "cache": {"enabled": True, "size": "40Gi"},
    "prompts": [{"name": "support-bot", "version": 3}],
    "replicas": 2,
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def rev(body: dict[str, Any], prompts: str | None = None) -> str:
    return revision_hash(ModelSpec.model_validate(body), prompts)


def with_change(path: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(BASE)
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return body


def shuffled(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [shuffled(v, rng) for v in value]
    return value


def test_hash_is_short_hex() -> None:
    value = rev(BASE)
    assert len(value) == 10 and int(value, 16) >= 0


@given(st.randoms())
def test_hash_is_stable_under_key_order(rng: random.Random) -> None:
    assert rev(shuffled(BASE, rng)) == rev(BASE)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("source.uri", "hf://meta-llama/Llama-3.1-70B-Instruct"),
        ("source.revision", "def"),
        ("source.credentialsSecretRef", {"name": "other"}),
        ("engine.type", "tensorrt-llm"),
        ("engine.image", "registry.example/vllm:1"),
        ("engine.args", ["--enable-prefix-caching", "--enforce-eager"]),
        ("engine.env", [{"name": "A", "value": "2"}]),
        ("resources.gpus", 4),
        ("resources.gpuProducts", ["NVIDIA-A100-SXM4-80GB"]),
        ("resources.memory", "80Gi"),
        ("serving.maxModelLen", 4096),
        ("serving.dtype", "float16"),
        ("serving.gpuMemoryUtilization", 0.8),
        ("placement.nodeSelector", {"pool": "other"}),
        ("placement.priorityClassName", "high"),
        ("cache.enabled", False),
        ("prompts", [{"name": "support-bot", "version": 4}]),
    ],
)
def test_hash_changes_with_anything_that_serves(path: str, value: Any) -> None:
    assert rev(with_change(path, value)) != rev(BASE)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("replicas", 7),
        ("autoscaling", {"minReplicas": 1, "maxReplicas": 4, "target": 3}),
        ("rollout", {"strategy": "RollingUpdate", "revisionHistoryLimit": 9}),
        ("engine.image", None),
        ("serving.dtype", "bfloat16"),
        ("placement.tolerations", []),
        ("cache.accessMode", "ReadWriteMany"),
    ],
)
def test_hash_ignores_scale_rollout_and_spelled_out_defaults(path: str, value: Any) -> None:
    assert rev(with_change(path, value)) == rev(BASE)


def test_default_image_is_part_of_the_hash() -> None:
    from llmops_operator import engines

    explicit = with_change("engine.image", engines.get_engine("vllm").default_image)
    assert rev(explicit) == rev(BASE)


@given(st.integers(0, 100))
def test_replicas_never_change_the_hash(replicas: int) -> None:
    assert rev(with_change("replicas", replicas)) == rev(BASE)


def _bound(content: str) -> PromptVersionSpec:
    return PromptVersionSpec.model_validate(
        {"prompt": "support-bot", "version": 3, "messages": [{"role": "system", "content": content}]}
    )


def test_prompt_content_changes_the_hash() -> None:
    """The revision hash takes the bundle hash production computes (`prompts.bundle`)."""
    a = prompts.bundle([_bound("Be brief.")])[1]
    b = prompts.bundle([_bound("Be thorough.")])[1]
    assert rev(BASE, a) != rev(BASE, b) != rev(BASE)
    assert prompts.bundle([_bound("Be brief.")])[1] == a


@given(st.from_regex(r"[a-z]([-a-z0-9]{0,80}[a-z0-9])?", fullmatch=True))
def test_names_fit_a_dns_label_and_keep_the_hash(model: str) -> None:
    revision = "0123456789"
    for name in (deployment_name(model, revision), revision_service_name(model, revision)):
        assert len(name) <= 63
        assert name.endswith("-" + revision)
        assert not name.startswith("-") and "--" + revision not in name
    assert len(shared_service_name(model)) <= 63


def test_short_names_are_not_truncated() -> None:
    assert deployment_name("support-llama", "abc") == "support-llama-abc"
    assert shared_service_name("support-llama") == "support-llama"


def obs(ready: int, spec: int | None = None) -> ObservedRevision:
    return ObservedRevision(spec if spec is not None else ready, ready)


@pytest.mark.parametrize(
    ("case", "desired", "observed", "stable", "replicas", "superseded", "complete", "next_stable"),
    [
        ("first deploy, nothing yet", "b", {}, None, {"b": 3}, [], False, None),
        ("first deploy ready", "b", {"b": obs(3)}, None, {"b": 3}, [], True, "b"),
        ("new revision starting", "b", {"a": obs(3), "b": obs(0)}, "a", {"b": 3, "a": 3}, [], False, "a"),
        ("one new ready", "b", {"a": obs(3), "b": obs(1, 3)}, "a", {"b": 3, "a": 2}, [], False, "a"),
        ("new fully ready", "b", {"a": obs(1), "b": obs(3)}, "a", {"b": 3}, ["a"], True, "b"),
        (
            "abandoned intermediate",
            "c",
            {"a": obs(3), "b": obs(1), "c": obs(0)},
            "a",
            {"c": 3, "a": 3},
            ["b"],
            False,
            "a",
        ),
        ("reverted to stable", "a", {"a": obs(2, 3), "b": obs(1)}, "a", {"a": 3}, ["b"], False, "a"),
        ("stable deployment gone", "b", {"b": obs(1)}, "a", {"b": 3}, [], False, "a"),
        ("steady state", "a", {"a": obs(3)}, "a", {"a": 3}, [], True, "a"),
    ],
)
def test_rolling_update(
    case: str,
    desired: str,
    observed: dict[str, ObservedRevision],
    stable: str | None,
    replicas: dict[str, int],
    superseded: list[str],
    complete: bool,
    next_stable: str | None,
) -> None:
    result = rolling_update(desired, observed, 3, stable)
    assert result.replicas == replicas, case
    assert result.superseded == superseded, case
    assert result.complete is complete, case
    assert result.stable_revision == next_stable, case


@given(
    desired_replicas=st.integers(0, 10),
    new_ready=st.integers(0, 10),
    old_ready=st.integers(0, 10),
)
def test_rolling_update_never_drops_ready_capacity_below_target(
    desired_replicas: int, new_ready: int, old_ready: int
) -> None:
    new_ready = min(new_ready, desired_replicas)
    result = rolling_update("b", {"a": obs(old_ready), "b": obs(new_ready)}, desired_replicas, "a")
    kept_old = result.replicas.get("a", 0)
    assert new_ready + kept_old >= desired_replicas or result.complete
    assert result.complete == (new_ready >= desired_replicas)


def test_history_records_and_prunes_but_keeps_stable_and_canary() -> None:
    history: list[RevisionRecord] = []
    for index in range(8):
        history = record_revision(history, f"r{index}", NOW + timedelta(minutes=index))
    history = record_revision(history, "r0", NOW + timedelta(hours=1), outcome="Stable")
    assert history[-1].revision == "r0" and history[-1].outcome == "Stable"
    assert history[-1].created_at == NOW
    pruned = prune_history(history, limit=3, keep=["r0", "r7"])
    assert [r.revision for r in pruned] == ["r7", "r6", "r5", "r4", "r0"]
    assert prune_history(history, limit=0, keep=[None]) == []
