"""vLLM: `vllm serve` in the `vllm/vllm-openai` image, OpenAI API and Prometheus on port 8000.

Model: the cache/PVC directory, or the Hugging Face repo id with `--revision`. The served name is
the Model's name, so clients send `model: <Model name>` and metrics carry `model_name=<Model
name>`. `/health` answers 200, or 503 once the engine died (liveness restarts the pod).
"""

from __future__ import annotations

from typing import Any

from llmops_operator.engines.base import (
    Engine,
    EngineInputs,
    EngineOutput,
    container_port,
    hf_env,
    merge_args,
    model_reference,
    output,
    probes,
)

DEFAULT_IMAGE = "vllm/vllm-openai:v0.11.0"
PORT = 8000
METRICS_PATH = "/metrics"
HEALTH_PATH = "/health"


def build(inputs: EngineInputs) -> EngineOutput:
    """The vLLM serving container; user args are appended and win over ours."""
    spec, model_name, plan = inputs.spec, inputs.model_name, inputs.plan
    prompts_mount, weights_path = inputs.prompts_mount, inputs.weights_path
    ours: list[tuple[str, str | None]] = [
        ("--served-model-name", model_name),
        ("--host", "0.0.0.0"),
        ("--port", str(PORT)),
        ("--tensor-parallel-size", str(plan.tensor_parallel_size)),
        ("--dtype", spec.serving.dtype),
    ]
    if weights_path is None and spec.source.revision:
        ours.append(("--revision", spec.source.revision))
    if spec.serving.max_model_len:
        ours.append(("--max-model-len", str(spec.serving.max_model_len)))
    if spec.serving.gpu_memory_utilization:
        ours.append(("--gpu-memory-utilization", str(spec.serving.gpu_memory_utilization)))
    if plan.gpus == 0:
        ours.append(("--device", "cpu"))
    args = [model_reference(spec, weights_path), *merge_args(ours, spec.engine.args)]
    env: list[dict[str, Any]] = [
        *hf_env(spec, weights_path, prompts_mount),
        {"name": "VLLM_NO_USAGE_STATS", "value": "1"},
        {"name": "DO_NOT_TRACK", "value": "1"},
    ]
    ports = [container_port("http", PORT)]
    return output(spec, DEFAULT_IMAGE, ["vllm", "serve"], args, env, ports, probes(HEALTH_PATH, HEALTH_PATH))


ENGINE = Engine(
    type="vllm",
    default_image=DEFAULT_IMAGE,
    http_port=PORT,
    openai_port=PORT,
    metrics_port=PORT,
    metrics_path=METRICS_PATH,
    ready_path=HEALTH_PATH,
    build=build,
)
