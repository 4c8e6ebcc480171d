"""ONNX Runtime: Triton Inference Server (`tritonserver`) with the onnxruntime backend.

The weights directory is a Triton model repository (`<model>/config.pbtxt`,
`<model>/1/model.onnx`). HTTP/REST (KServe v2 protocol) on 8000, gRPC on 8001, Prometheus on
8002 `/metrics` (`nv_inference_*`). Liveness `/v2/health/live`, readiness `/v2/health/ready`.
Triton has no OpenAI-compatible API. `gpus: 0` runs on CPU.
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
    output,
    probes,
)

DEFAULT_IMAGE = "nvcr.io/nvidia/tritonserver:25.08-py3"
HTTP_PORT = 8000
GRPC_PORT = 8001
METRICS_PORT = 8002
METRICS_PATH = "/metrics"
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"


def build(inputs: EngineInputs) -> EngineOutput:
    """The tritonserver container; user args are appended and win over ours."""
    spec, prompts_mount, weights_path = inputs.spec, inputs.prompts_mount, inputs.weights_path
    if weights_path is None:
        raise EngineConfigError(
            "onnxruntime serves a local Triton model repository: use a pvc:// source or cache.enabled: true"
        )
    ours: list[tuple[str, str | None]] = [
        (f"--model-repository={weights_path}", None),
        (f"--http-port={HTTP_PORT}", None),
        (f"--grpc-port={GRPC_PORT}", None),
        (f"--metrics-port={METRICS_PORT}", None),
    ]
    args = merge_args(ours, spec.engine.args)
    env = hf_env(spec, weights_path, prompts_mount)
    ports = [
        container_port("http", HTTP_PORT),
        container_port("grpc", GRPC_PORT),
        container_port("metrics", METRICS_PORT),
    ]
    return output(spec, DEFAULT_IMAGE, ["tritonserver"], args, env, ports, probes(LIVE_PATH, READY_PATH))


ENGINE = Engine(
    type="onnxruntime",
    default_image=DEFAULT_IMAGE,
    http_port=HTTP_PORT,
    openai_port=None,
    metrics_port=METRICS_PORT,
    metrics_path=METRICS_PATH,
    ready_path=READY_PATH,
    build=build,
)
