"""Each engine's container follows its real conventions; user overrides win; no secret in args."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmops_operator import engines
from llmops_operator.api.model import ModelSpec
from llmops_operator.engines import EngineInputs
from llmops_operator.engines.base import STARTUP_FAILURE_THRESHOLD, STARTUP_PERIOD_SECONDS, merge_args
from llmops_operator.gpu.planner import Plan

PLAN_TP2 = Plan(2, "NVIDIA-H100-80GB-HBM3", 2, 19.0, "")
PLAN_CPU = Plan(0, None, 1, None, "")


def make_spec(engine_type: str = "vllm", **extra: Any) -> ModelSpec:
    body: dict[str, Any] = {
        "source": {
            "uri": "hf://meta-llama/Llama-3.1-8B-Instruct",
            "credentialsSecretRef": {"name": "hf-token", "key": "token"},
        },
        "engine": {"type": engine_type},
        "serving": {"maxModelLen": 8192, "dtype": "bfloat16"},
        "cache": {"enabled": True},
    }
    for key, value in extra.items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    return ModelSpec.model_validate(body)


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def flag_value(args: list[str], flag: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == flag:
            return args[index + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


@pytest.mark.parametrize(
    ("engine", "weights", "command", "expected_flags", "ready", "image_prefix"),
    [
        (
            "vllm",
            "/cache/abc",
            ["vllm", "serve"],
            {
                "--served-model-name": "support",
                "--tensor-parallel-size": "2",
                "--max-model-len": "8192",
                "--dtype": "bfloat16",
                "--port": "8000",
                "--host": "0.0.0.0",
            },
            "/health",
            "vllm/vllm-openai:",
        ),
        (
            "tensorrt-llm",
            "/cache/abc",
            ["trtllm-serve"],
            {"--tp_size": "2", "--max_seq_len": "8192", "--host": "0.0.0.0", "--port": "8000"},
            "/health",
            "nvcr.io/nvidia/tensorrt-llm/release:",
        ),
        (
            "onnxruntime",
            "/cache/abc",
            ["tritonserver"],
            {
                "--model-repository": "/cache/abc",
                "--http-port": "8000",
                "--grpc-port": "8001",
                "--metrics-port": "8002",
            },
            "/v2/health/ready",
            "nvcr.io/nvidia/tritonserver:",
        ),
    ],
)
def test_engine_conventions(
    engine: str,
    weights: str,
    command: list[str],
    expected_flags: dict[str, str],
    ready: str,
    image_prefix: str,
) -> None:
    out = engines.build(EngineInputs(make_spec(engine), "support", PLAN_TP2, "/etc/llmops/prompts", weights))
    container = out["container"]
    assert container["command"] == command
    assert container["image"].startswith(image_prefix)
    for flag, value in expected_flags.items():
        assert flag_value(container["args"], flag) == value, flag
    if engine != "onnxruntime":
        assert container["args"][0] == weights  # model positional
    assert container["readinessProbe"]["httpGet"]["path"] == ready
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60
    assert (STARTUP_PERIOD_SECONDS * STARTUP_FAILURE_THRESHOLD) >= 30 * 60
    assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in out["volumes"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    env = env_of(container)
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["HF_TOKEN"] == {"secretKeyRef": {"name": "hf-token", "key": "token"}}
    info = engines.get_engine(engine)
    assert {p["containerPort"] for p in container["ports"]} >= {info.http_port, info.metrics_port}


def test_engine_facts_for_services_and_scraping() -> None:
    assert engines.get_engine("vllm").metrics_path == "/metrics"
    assert engines.get_engine("tensorrt-llm").metrics_path == "/prometheus/metrics"
    assert engines.get_engine("onnxruntime").metrics_port == 8002
    assert engines.get_engine("onnxruntime").openai_port is None
    assert engines.get_engine("vllm").openai_port == 8000


def test_unknown_engine_names_the_known_ones() -> None:
    with pytest.raises(engines.EngineConfigError, match="vllm, tensorrt-llm, onnxruntime"):
        engines.get_engine("tgi")


def test_vllm_without_cache_downloads_the_pinned_revision() -> None:
    spec = ModelSpec.model_validate(
        {"source": {"uri": "hf://org/repo", "revision": "abc123"}, "engine": {"type": "vllm"}}
    )
    container = engines.build(EngineInputs(spec, "m", PLAN_TP2))["container"]
    assert container["args"][0] == "org/repo"
    assert flag_value(container["args"], "--revision") == "abc123"
    assert "HF_HUB_OFFLINE" not in env_of(container)
    assert "HF_TOKEN" not in env_of(container)


def test_user_overrides_image_args_and_env() -> None:
    spec = make_spec(
        engine={
            "type": "vllm",
            "image": "registry.example/vllm:custom",
            "args": ["--max-model-len=4096", "--enable-prefix-caching"],
            "env": [{"name": "HF_HOME", "value": "/data/hf"}, {"name": "EXTRA", "value": "1"}],
        }
    )
    container = engines.build(EngineInputs(spec, "m", PLAN_TP2, None, "/cache/x"))["container"]
    assert container["image"] == "registry.example/vllm:custom"
    assert container["args"].count("--max-model-len") == 0
    assert "--max-model-len=4096" in container["args"]
    assert container["args"][-1] == "--enable-prefix-caching"
    env = env_of(container)
    assert env["HF_HOME"] == "/data/hf" and env["EXTRA"] == "1"
    assert [e["name"] for e in container["env"]].count("HF_HOME") == 1


def test_triton_user_flag_replaces_ours() -> None:
    spec = make_spec("onnxruntime", engine={"type": "onnxruntime", "args": ["--http-port=9000"]})
    args = engines.build(EngineInputs(spec, "m", PLAN_CPU, None, "/cache/x"))["container"]["args"]
    assert flag_value(args, "--http-port") == "9000"
    assert sum(a.startswith("--http-port") for a in args) == 1


@pytest.mark.parametrize(
    ("engine", "weights", "plan", "message"),
    [
        ("onnxruntime", None, PLAN_CPU, "local Triton model repository"),
        ("tensorrt-llm", None, PLAN_TP2, "cannot pin source.revision"),
        ("tensorrt-llm", "/cache/x", PLAN_CPU, "needs GPUs"),
    ],
)
def test_engine_refuses_what_it_cannot_serve(
    engine: str, weights: str | None, plan: Plan, message: str
) -> None:
    spec = ModelSpec.model_validate(
        {
            "source": {"uri": "hf://org/repo", "revision": "abc"},
            "engine": {"type": engine},
            "cache": {"enabled": True},
        }
    )
    with pytest.raises(engines.EngineConfigError, match=message):
        engines.build(EngineInputs(spec, "m", plan, None, weights))


def test_vllm_on_cpu_asks_for_the_cpu_device() -> None:
    spec = make_spec()
    args = engines.build(EngineInputs(spec, "m", PLAN_CPU, None, "/cache/x"))["container"]["args"]
    assert flag_value(args, "--device") == "cpu"


@pytest.mark.parametrize("engine", ["vllm", "tensorrt-llm", "onnxruntime"])
def test_the_hf_token_comes_only_from_the_secret(engine: str) -> None:
    container = engines.build(EngineInputs(make_spec(engine), "m", PLAN_TP2, None, "/cache/x"))["container"]
    token_env = [e for e in container["env"] if e["name"] == "HF_TOKEN"]
    assert token_env == [
        {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}
    ]
    assert not any("token" in arg.lower() for arg in container["args"])


@given(
    ours=st.lists(
        st.tuples(st.sampled_from(["--a", "--b", "--c"]), st.one_of(st.none(), st.just("1"))),
        unique_by=lambda t: t[0],
    ),
    user=st.lists(st.sampled_from(["--a", "--b=2", "x", "--d"]), max_size=4),
)
def test_merge_args_user_flags_win_and_come_last(ours: list[tuple[str, str | None]], user: list[str]) -> None:
    merged = merge_args(ours, user)
    assert merged[len(merged) - len(user) :] == user
    user_flags = {u.split("=")[0] for u in user if u.startswith("-")}
    head = merged[: len(merged) - len(user)]
    assert not any(token in user_flags for token in head)
