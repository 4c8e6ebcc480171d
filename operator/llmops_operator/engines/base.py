"""What every engine module shares: the output shape, probes, and how user overrides merge."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

from llmops_operator.api.env import EnvVar
from llmops_operator.api.model import ModelSpec
from llmops_operator.gpu.planner import Plan

CONTAINER_NAME = "engine"
HF_HOME = "/var/cache/huggingface"
"""Writable Hugging Face home (an emptyDir): downloads without the cache, tokenizer files."""
SHM_VOLUME = "dshm"
HF_HOME_VOLUME = "hf-home"
STARTUP_PERIOD_SECONDS = 10
STARTUP_FAILURE_THRESHOLD = 180
"""10 s x 180 = 30 minutes to download and load weights before the pod is restarted."""


class EngineConfigError(ValueError):
    """The spec cannot be served by this engine; the message says what to change."""


class EngineOutput(TypedDict):
    """The serving container and the pod volumes it needs (beyond cache, prompts and source,
    which `resources.render_revision` mounts)."""

    container: dict[str, Any]
    volumes: list[dict[str, Any]]


@dataclass(frozen=True)
class EngineInputs:
    """What an engine builds its container from: one value, the same for every engine."""

    spec: ModelSpec
    model_name: str
    """The Model's name, served as the OpenAI model name."""
    plan: Plan
    """GPUs and tensor parallel size per replica."""
    prompts_mount: str | None = None
    """Where the bound prompts' ConfigMap is mounted, if any."""
    weights_path: str | None = None
    """Local weights (cache or PVC source); None: the engine downloads from the Hub."""


BuildFn = Callable[[EngineInputs], EngineOutput]


@dataclass(frozen=True)
class Engine:
    """One engine's conventions, for the operator (Services, scraping) and the registry."""

    type: str
    default_image: str
    http_port: int
    """Port of the engine's HTTP API (the Services' `http` port)."""
    openai_port: int | None
    """Port of the OpenAI-compatible API, None when the engine has none (Triton: KServe v2)."""
    metrics_port: int
    metrics_path: str
    ready_path: str
    build: BuildFn


def http_probe(path: str, period: int, failures: int, timeout: int = 5) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "failureThreshold": failures,
        "timeoutSeconds": timeout,
    }


def probes(live_path: str, ready_path: str) -> dict[str, Any]:
    """Startup allows multi-minute loads; liveness only starts once startup succeeded."""
    return {
        "startupProbe": http_probe(ready_path, STARTUP_PERIOD_SECONDS, STARTUP_FAILURE_THRESHOLD),
        "readinessProbe": http_probe(ready_path, 5, 3),
        "livenessProbe": http_probe(live_path, 15, 4, timeout=10),
    }


def _flag(token: str) -> str | None:
    return token.split("=", 1)[0] if token.startswith("-") else None


def merge_args(ours: Sequence[tuple[str, str | None]], user: Sequence[str]) -> list[str]:
    """Our `(flag, value)` pairs, minus flags the user also passes, then the user's args.

    Our flag may be `--flag=value` with value None (Triton's style).
    A user flag wins over ours when spelled the same (`--max-model-len 4096` or
    `--max-model-len=4096`); aliases (`-tp`) are not recognised.
    """
    user_flags = {flag for flag in map(_flag, user) if flag}
    merged: list[str] = []
    for flag, value in ours:
        if _flag(flag) in user_flags:
            continue
        merged.append(flag)
        if value is not None:
            merged.append(value)
    return [*merged, *user]


def merge_env(ours: Sequence[dict[str, Any]], user: Sequence[EnvVar]) -> list[dict[str, Any]]:
    """Our env with the user's entries replacing same-named ones; order: ours, then new ones."""
    by_name = {var.name: var.to_wire() for var in user}
    merged = [by_name.pop(var["name"], var) for var in ours]
    return [*merged, *by_name.values()]


def hf_env(spec: ModelSpec, weights_path: str | None, prompts_mount: str | None) -> list[dict[str, Any]]:
    """HF_HOME, offline mode when serving local files, the token from the Secret, prompts dir."""
    env: list[dict[str, Any]] = [{"name": "HF_HOME", "value": HF_HOME}]
    if weights_path is not None:
        env.append({"name": "HF_HUB_OFFLINE", "value": "1"})
    ref = spec.source.credentials_secret_ref
    if ref is not None:
        env.append({"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}})
    if prompts_mount is not None:
        env.append({"name": "LLMOPS_PROMPTS_DIR", "value": prompts_mount})
    return env


def model_reference(spec: ModelSpec, weights_path: str | None) -> str:
    """What the engine loads: the local directory, else the Hugging Face repo id."""
    if weights_path is not None:
        return weights_path
    if spec.source.scheme != "hf":
        raise EngineConfigError(
            f"{spec.source.uri}: only hf:// sources can be served without the weight cache"
        )
    return spec.source.location


def common_volumes() -> list[dict[str, Any]]:
    """Memory-backed /dev/shm (NCCL and tensor parallel workers) and a writable HF home."""
    return [
        {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory"}},
        {"name": HF_HOME_VOLUME, "emptyDir": {}},
    ]


def common_mounts() -> list[dict[str, Any]]:
    return [
        {"name": SHM_VOLUME, "mountPath": "/dev/shm"},
        {"name": HF_HOME_VOLUME, "mountPath": HF_HOME},
    ]


def container_port(name: str, number: int) -> dict[str, Any]:
    """A named TCP container port (Services target it by name)."""
    return {"name": name, "containerPort": number, "protocol": "TCP"}


def output(
    spec: ModelSpec,
    default_image: str,
    command: list[str],
    args: list[str],
    env: list[dict[str, Any]],
    ports: list[dict[str, Any]],
    probe_spec: dict[str, Any],
) -> EngineOutput:
    """An engine's output: its container, with the user's image and env overrides applied, and
    the volumes every engine mounts."""
    return {
        "container": {
            "name": CONTAINER_NAME,
            "image": spec.engine.image or default_image,
            "command": command,
            "args": args,
            "env": merge_env(env, spec.engine.env),
            "ports": ports,
            **probe_spec,
            "volumeMounts": common_mounts(),
        },
        "volumes": common_volumes(),
    }
