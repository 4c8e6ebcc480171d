"""TensorRT-LLM: `trtllm-serve` (PyTorch backend) in `nvcr.io/nvidia/tensorrt-llm/release`.

OpenAI API on 8000 (`/v1/*`, `/health`); Prometheus text on `/prometheus/metrics` of the same
port (`trtllm_*` names; `/metrics` is JSON iteration stats). `trtllm-serve` listens on
localhost by default, so `--host 0.0.0.0` is required. It has no dtype flag (the checkpoint's
dtype is used) and no revision flag: pinning `source.revision` needs the weight cache.
"""

from __future__ import annotations

from llmops_operator.engines.base import (
    Engine,
    EngineConfigError,
    EngineInputs,
    EngineOutput,
    container_port,
    hf_env,
    merge_args,
    model_reference,
    output,
    probes,
)

DEFAULT_IMAGE = "nvcr.io/nvidia/tensorrt-llm/release:1.0.0"
PORT = 8000
METRICS_PATH = "/prometheus/metrics"
HEALTH_PATH = "/health"


def build(inputs: EngineInputs) -> EngineOutput:
    """The trtllm-serve container; user args are appended and win over ours."""
    spec, plan = inputs.spec, inputs.plan
    prompts_mount, weights_path = inputs.prompts_mount, inputs.weights_path
    if weights_path is None and spec.source.revision:
        raise EngineConfigError(
            "tensorrt-llm cannot pin source.revision when downloading by itself: set cache.enabled: true"
        )
    if plan.gpus == 0:
        raise EngineConfigError("tensorrt-llm needs GPUs: set resources.gpus to auto or at least 1")
    ours: list[tuple[str, str | None]] = [
        ("--host", "0.0.0.0"),
        ("--port", str(PORT)),
        ("--backend", "pytorch"),
        ("--tp_size", str(plan.tensor_parallel_size)),
    ]
    if spec.serving.max_model_len:
        ours.append(("--max_seq_len", str(spec.serving.max_model_len)))
    if spec.serving.gpu_memory_utilization:
        ours.append(("--kv_cache_free_gpu_memory_fraction", str(spec.serving.gpu_memory_utilization)))
    args = [model_reference(spec, weights_path), *merge_args(ours, spec.engine.args)]
    env = hf_env(spec, weights_path, prompts_mount)
    ports = [container_port("http", PORT)]
    return output(spec, DEFAULT_IMAGE, ["trtllm-serve"], args, env, ports, probes(HEALTH_PATH, HEALTH_PATH))


ENGINE = Engine(
    type="tensorrt-llm",
    default_image=DEFAULT_IMAGE,
    http_port=PORT,
    openai_port=PORT,
    metrics_port=PORT,
    metrics_path=METRICS_PATH,
    ready_path=HEALTH_PATH,
    build=build,
)
