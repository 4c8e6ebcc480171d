"""Engine registry: one module per engine, one dispatch.

from llmops_operator import engines
out = engines.build(EngineInputs(spec, model_name, plan, prompts_mount, weights_path))
engines.get_engine(spec.engine.type).metrics_port
"""

from __future__ import annotations

from llmops_operator.api.model import ModelSpec
from llmops_operator.engines import onnx, tensorrt_llm, vllm
from llmops_operator.engines.base import CONTAINER_NAME, Engine, EngineConfigError, EngineInputs, EngineOutput

ENGINES: dict[str, Engine] = {e.type: e for e in (vllm.ENGINE, tensorrt_llm.ENGINE, onnx.ENGINE)}

__all__ = [
    "CONTAINER_NAME",
    "ENGINES",
    "Engine",
    "EngineConfigError",
    "EngineInputs",
    "EngineOutput",
    "build",
    "get_engine",
]


def get_engine(engine_type: str) -> Engine:
    """The engine for `spec.engine.type`; EngineConfigError names the known ones."""
    try:
        return ENGINES[engine_type]
    except KeyError:
        raise EngineConfigError(f"unknown engine {engine_type!r}; use one of {', '.join(ENGINES)}") from None


def image(spec: ModelSpec) -> str:
    """The image a spec runs: the user's override or the engine's pinned default."""
    return spec.engine.image or get_engine(spec.engine.type).default_image


def build(inputs: EngineInputs) -> EngineOutput:
    """The serving container (and its volumes) for `inputs.spec.engine.type`."""
    return get_engine(inputs.spec.engine.type).build(inputs)
