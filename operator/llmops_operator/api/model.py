"""The Model kind: one deployable release of an LLM (spec) and what the operator observed (status).

Everything that changes what serves (source, engine, resources, serving, placement, cache and
bound prompts) is hashed into a revision by `llmops_operator.revisions`; replicas, autoscaling
and rollout are not. Rules the OpenAPI schema cannot say are CEL rules enforced by the API
server, mirrored by pydantic validators so the operator and unit tests reject the same input
with the same message.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from llmops_operator.api.common import (
    ApiModel,
    LabelName,
    Quantity,
    SecretKeyRef,
    SubdomainName,
    at_most_one,
    cel_rules,
)
from llmops_operator.api.durations import Duration, parse_duration
from llmops_operator.api.env import EnvVar
from llmops_operator.api.monitoring import MonitoringSpec
from llmops_operator.api.rollout import RolloutSpec

EngineType = Literal["vllm", "tensorrt-llm", "onnxruntime"]
Phase = Literal["Pending", "Progressing", "Paused", "Ready", "Degraded", "Failed"]
AutoscalingMetric = Literal["queueDepth", "kvCacheUtilization", "requestsPerSecond"]
WakeBuiltin = Literal["flowControlQueueSize"]
Dtype = Literal["auto", "bfloat16", "float16", "float32", "half", "float"]

MAX_ARGS = 64
MAX_ENV = 64
MAX_PROMPTS = 16
MAX_GPU_PRODUCTS = 16
MAX_TOLERATIONS = 32
MAX_URI_LENGTH = 1024
MAX_NODE_SELECTOR = 32
MAX_REPLICAS = 1000
"""Most replicas of one Model (spec.replicas, autoscaling bounds)."""
MAX_GPUS_PER_REPLICA = 64
MAX_MODEL_LEN = 1 << 24
"""Longest context length accepted (16M tokens)."""
MAX_SCALE_DOWN_DELAY_SECONDS = 86400
MAX_MODEL_NAME_LENGTH = 52
"""Model names leave room for `-<10 hex revision>` within the 63-character label limit."""

# ---------------------------------------------------------------------------------------------
# source URI rules: one regex per scheme, shared by CEL (RE2) and the pydantic validator.
# ---------------------------------------------------------------------------------------------
HF_URI = r"^hf://[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$"
S3_URI = r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^ ]*)?$"
PVC_URI = r"^pvc://[a-z0-9]([-a-z0-9]{0,251}[a-z0-9])?(/[^ ]*)?$"
PATH_ESCAPE_MESSAGE = "pvc:// paths must not contain '..' segments: the path stays inside the claim"
URI_SCHEME_MESSAGE = "source.uri must start with hf://, s3:// or pvc://"
URI_RULES: list[tuple[str, str, str]] = [
    # (scheme prefix, regex, message)
    ("hf://", HF_URI, "hf:// URIs name a Hugging Face repository: hf://<org>/<repo>"),
    ("s3://", S3_URI, "s3:// URIs name a bucket and an optional prefix: s3://<bucket>/<prefix>"),
    ("pvc://", PVC_URI, "pvc:// URIs name a PersistentVolumeClaim and a path: pvc://<claim>/<path>"),
]


def _wire_default(model: type[ApiModel]) -> dict[str, Any]:
    """Schema `default` of an object field: the fully defaulted wire form, so CEL rules on the
    nested object see every field when the API server validates the default."""
    return {"default": model().to_wire()}


GpuCount = Annotated[int, Field(ge=0, le=MAX_GPUS_PER_REPLICA)] | Literal["auto"]
"""A GPU count, or `auto` for the planner to decide."""
ParallelSize = Annotated[int, Field(ge=1, le=MAX_GPUS_PER_REPLICA)] | Literal["auto"]
"""A tensor parallel degree, or `auto` (= the replica's GPU count)."""


# ---------------------------------------------------------------------------------------------
# spec
# ---------------------------------------------------------------------------------------------


class SourceSpec(ApiModel):
    """Where the weights come from."""

    model_config = cel_rules(
        (
            "self.uri.startsWith('hf://') || self.uri.startsWith('s3://') || self.uri.startsWith('pvc://')",
            URI_SCHEME_MESSAGE,
        ),
        *(
            (f"!self.uri.startsWith('{prefix}') || self.uri.matches('{regex}')", message)
            for prefix, regex, message in URI_RULES
        ),
        (
            "!self.uri.startsWith('pvc://') || !(self.uri + '/').contains('/../')",
            PATH_ESCAPE_MESSAGE,
        ),
        (
            "!has(self.revision) || self.uri.startsWith('hf://')",
            "source.revision pins a Hugging Face commit; it applies to hf:// URIs only",
        ),
    )

    uri: str = Field(min_length=1, max_length=MAX_URI_LENGTH)
    """Weights location: `hf://<org>/<repo>` (Hugging Face Hub), `s3://<bucket>/<prefix>`
    (needs `cache.enabled`) or `pvc://<claim>/<path>` (a PersistentVolumeClaim in the Model's
    namespace, mounted read-only)."""
    revision: str | None = Field(default=None, min_length=1, max_length=256)
    """Hugging Face commit, branch or tag. Pin a commit hash for reproducible revisions."""
    credentials_secret_ref: SecretKeyRef | None = None
    """Secret key holding the access token (Hugging Face token). It reaches the engine and the
    cache loader only as the `HF_TOKEN` environment variable, never in args or status."""

    @field_validator("uri")
    @classmethod
    def _valid_uri(cls, uri: str) -> str:
        for prefix, regex, message in URI_RULES:
            if uri.startswith(prefix):
                if not re.fullmatch(regex, uri):
                    raise ValueError(f"{message} (got {uri!r})")
                if prefix == "pvc://" and "/../" in uri + "/":
                    raise ValueError(PATH_ESCAPE_MESSAGE)
                return uri
        raise ValueError(f"{URI_SCHEME_MESSAGE} (got {uri!r})")

    @model_validator(mode="after")
    def _revision_is_for_hf(self) -> SourceSpec:
        if self.revision is not None and not self.uri.startswith("hf://"):
            raise ValueError("source.revision pins a Hugging Face commit; it applies to hf:// URIs only")
        return self

    @property
    def scheme(self) -> Literal["hf", "s3", "pvc"]:
        """The URI scheme."""
        return self.uri.split("://", 1)[0]  # type: ignore[return-value]

    @property
    def location(self) -> str:
        """The URI without its scheme: `org/repo`, `bucket/prefix` or `claim/path`."""
        return self.uri.split("://", 1)[1]


class EngineSpec(ApiModel):
    """The inference engine and how to run it."""

    type: EngineType
    """vllm (vLLM OpenAI server), tensorrt-llm (`trtllm-serve`) or onnxruntime (Triton
    Inference Server with the onnxruntime backend)."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Container image. Default: the engine's pinned image (see docs/api-model.md)."""
    args: list[Annotated[str, Field(max_length=4096)]] = Field(default_factory=list, max_length=MAX_ARGS)
    """Extra engine arguments, appended after the operator's. A flag the operator also sets
    (same spelling, `--flag value` or `--flag=value`) replaces the operator's value."""
    env: list[EnvVar] = Field(
        default_factory=list,
        max_length=MAX_ENV,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Extra environment variables; a name the operator also sets replaces the operator's."""


class ResourcesSpec(ApiModel):
    """Compute per replica."""

    gpus: GpuCount = "auto"
    """GPUs per replica (`nvidia.com/gpu`), or `auto` to let the planner size it from the
    model's parameter count and `serving.maxModelLen`. At least 1 for vllm and tensorrt-llm;
    onnxruntime may use 0 to run on CPU."""
    gpu_products: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=MAX_GPU_PRODUCTS
    )
    """Acceptable GPU models in preference order, as in the node label `nvidia.com/gpu.product`
    (e.g. NVIDIA-H100-80GB-HBM3). Pods require one of them and prefer earlier ones. Empty: any."""
    cpu: Quantity | None = None
    """CPU request per replica, e.g. `8`."""
    memory: Quantity | None = None
    """Memory request and limit per replica, e.g. `64Gi`."""


class ServingSpec(ApiModel):
    """Engine settings that decide memory use and parallelism."""

    max_model_len: int | None = Field(default=None, ge=1, le=MAX_MODEL_LEN)
    """Maximum context length (prompt + output tokens). Default: the model's own limit."""
    dtype: Dtype = "auto"
    """Weight and activation dtype. `auto` takes the model's own."""
    tensor_parallel_size: ParallelSize = "auto"
    """GPUs one model instance is sharded over, or `auto` (= the replica's GPU count). Must
    divide `resources.gpus`."""
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    """Share of each GPU's memory the engine may use (vLLM `--gpu-memory-utilization`,
    TensorRT-LLM `--kv_cache_free_gpu_memory_fraction`). Default: the engine's (0.9)."""


class Toleration(ApiModel):
    """A pod toleration (Kubernetes Toleration)."""

    key: str | None = Field(default=None, max_length=316)
    """Taint key; empty with operator Exists tolerates everything."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default Equal)."""
    value: str | None = Field(default=None, max_length=63)
    """Taint value for operator Equal."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """Taint effect to match; empty matches all."""
    toleration_seconds: int | None = Field(default=None, ge=-(1 << 31), le=1 << 31)
    """For NoExecute: how long the pod stays bound after the taint appears."""


class PlacementSpec(ApiModel):
    """Where serving pods may run, merged with the GPU scheduling the operator adds."""

    node_selector: dict[str, Annotated[str, Field(max_length=63)]] = Field(
        default_factory=dict, max_length=MAX_NODE_SELECTOR
    )
    """Node labels the pods require."""
    tolerations: list[Toleration] = Field(default_factory=list, max_length=MAX_TOLERATIONS)
    """Tolerations added to the default `nvidia.com/gpu` one."""
    priority_class_name: SubdomainName | None = None
    """PriorityClass of the serving pods."""


class CacheSpec(ApiModel):
    """A PersistentVolumeClaim filled once by a loader Job, mounted read-only by every replica."""

    enabled: bool = False
    """Download the weights into a PVC before serving (needed for s3:// sources, and for
    onnxruntime with hf:// sources)."""
    size: Quantity = "100Gi"
    """PVC size; leave room for two source revisions during a rollout."""
    storage_class_name: SubdomainName | None = None
    """StorageClass of the PVC. Default: the cluster default."""
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce"] = "ReadWriteMany"
    """ReadWriteMany lets replicas on several nodes share the cache; use ReadWriteOnce when the
    storage class has nothing else (then all replicas must share one node)."""


class PromptRef(ApiModel):
    """A PromptVersion bound to the Model; its content is part of the revision."""

    name: LabelName
    """Prompt name (`spec.prompt` of the PromptVersion)."""
    version: int = Field(ge=1)
    """Prompt version (`spec.version` of the PromptVersion)."""


class WakeSignalSpec(ApiModel):
    """Requests waiting for a Model at zero replicas, read from Prometheus (a Model with no pods
    reports no engine metrics, so the signal comes from whatever holds the requests)."""

    model_config = cel_rules(
        ("!(has(self.builtin) && has(self.query))", "set at most one of builtin or query")
    )

    builtin: WakeBuiltin | None = None
    """flowControlQueueSize: requests queued by the inference gateway's endpoint picker (flow
    control) for the Model's InferencePools. The default when `query` is omitted."""
    query: str | None = Field(default=None, min_length=1, max_length=4096)
    """Custom PromQL returning the number of waiting requests (e.g. your gateway's pending
    requests for the Model's route). Placeholders: `{{namespace}}`, `{{model}}`."""

    @model_validator(mode="after")
    def _one_source(self) -> WakeSignalSpec:
        return at_most_one(self, ("builtin", "query"), "set at most one of builtin or query")


class AutoscalingSpec(ApiModel):
    """Replica bounds and the LLM signal that drives scaling."""

    model_config = cel_rules(
        ("self.maxReplicas >= self.minReplicas", "autoscaling.maxReplicas must be >= minReplicas"),
        (
            "!has(self.minReplicasWhenActive) || self.minReplicasWhenActive <= self.maxReplicas",
            "autoscaling.minReplicasWhenActive must be <= maxReplicas",
        ),
    )

    min_replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    """Fewest replicas."""
    max_replicas: int = Field(ge=1, le=MAX_REPLICAS)
    """Most replicas."""
    metric: AutoscalingMetric = "queueDepth"
    """queueDepth (waiting requests per replica), kvCacheUtilization (0-1 per replica) or
    requestsPerSecond (per replica)."""
    target: float = Field(gt=0, le=1e9)
    """Target value of the metric per replica."""
    scale_down_delay_seconds: int = Field(default=300, ge=0, le=MAX_SCALE_DOWN_DELAY_SECONDS)
    """How long the signal must stay low before replicas are removed."""
    min_replicas_when_active: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    """With `minReplicas: 0`: replicas a Model at zero wakes to when requests wait for it, and
    the fewest it keeps while active (then the normal algorithm scales it)."""
    scale_to_zero_after: Duration = "10m"
    """With `minReplicas: 0`: how long the Model must be idle (the metric recommends 0 replicas
    and nothing waits) before it goes to zero."""
    wake_signal: WakeSignalSpec = Field(default_factory=WakeSignalSpec)
    """With `minReplicas: 0`: what says requests are waiting for a Model at zero."""

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingSpec:
        if self.max_replicas < self.min_replicas:
            raise ValueError("autoscaling.maxReplicas must be >= minReplicas")
        if self.min_replicas_when_active > self.max_replicas:
            raise ValueError("autoscaling.minReplicasWhenActive must be <= maxReplicas")
        return self

    @property
    def scales_to_zero(self) -> bool:
        """minReplicas 0: the Model may park at zero and be woken by waiting requests."""
        return self.min_replicas == 0

    @property
    def scale_to_zero_after_seconds(self) -> float:
        return parse_duration(self.scale_to_zero_after).total_seconds()


GPUS_NOT_ZERO_MESSAGE = (
    'resources.gpus must be at least 1 or "auto" for vllm and tensorrt-llm; '
    "only onnxruntime can run on CPU (gpus: 0)"
)
TP_DIVIDES_MESSAGE = "serving.tensorParallelSize must divide resources.gpus"
S3_NEEDS_CACHE_MESSAGE = "s3:// sources are downloaded by the weight cache: set cache.enabled: true"
ONNX_HF_NEEDS_CACHE_MESSAGE = (
    "onnxruntime serves a local model repository: with an hf:// source set cache.enabled: true"
)


class ModelSpec(ApiModel):
    """Desired state of a Model."""

    model_config = cel_rules(
        (
            "self.engine.type == 'onnxruntime' || !has(self.resources) || !has(self.resources.gpus) "
            "|| type(self.resources.gpus) == string || self.resources.gpus >= 1",
            GPUS_NOT_ZERO_MESSAGE,
        ),
        (
            "!has(self.resources) || !has(self.resources.gpus) || !has(self.serving) "
            "|| !has(self.serving.tensorParallelSize) || type(self.resources.gpus) == string "
            "|| type(self.serving.tensorParallelSize) == string || self.resources.gpus == 0 "
            "|| self.resources.gpus % self.serving.tensorParallelSize == 0",
            TP_DIVIDES_MESSAGE,
        ),
        (
            "!self.source.uri.startsWith('s3://') || (has(self.cache) && self.cache.enabled)",
            S3_NEEDS_CACHE_MESSAGE,
        ),
        (
            "self.engine.type != 'onnxruntime' || !self.source.uri.startsWith('hf://') "
            "|| (has(self.cache) && self.cache.enabled)",
            ONNX_HF_NEEDS_CACHE_MESSAGE,
        ),
    )

    source: SourceSpec
    """Where the weights come from."""
    engine: EngineSpec
    """The inference engine."""
    resources: ResourcesSpec = Field(
        default_factory=ResourcesSpec, json_schema_extra=_wire_default(ResourcesSpec)
    )
    """GPUs, CPU and memory per replica."""
    serving: ServingSpec = Field(default_factory=ServingSpec, json_schema_extra=_wire_default(ServingSpec))
    """Context length, dtype and parallelism."""
    placement: PlacementSpec = Field(
        default_factory=PlacementSpec, json_schema_extra=_wire_default(PlacementSpec)
    )
    """Node selection, tolerations and priority."""
    cache: CacheSpec = Field(default_factory=CacheSpec, json_schema_extra=_wire_default(CacheSpec))
    """Weight cache on a PVC."""
    prompts: list[PromptRef] = Field(
        default_factory=list,
        max_length=MAX_PROMPTS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """PromptVersions rendered into a ConfigMap mounted read-only in the serving pods. Their
    content is part of the revision, so a prompt change is rolled out like any other."""
    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    """Replicas of the stable revision. Ignored when `autoscaling` is set."""
    autoscaling: AutoscalingSpec | None = None
    """Scale on an LLM signal between minReplicas and maxReplicas."""
    rollout: RolloutSpec = Field(default_factory=RolloutSpec, json_schema_extra=_wire_default(RolloutSpec))
    """How a new revision replaces the stable one (RollingUpdate or Canary)."""
    monitoring: MonitoringSpec | None = None
    """Scheduled evaluations of the serving revision (not part of the revision)."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> ModelSpec:
        gpus, tp = self.resources.gpus, self.serving.tensor_parallel_size
        if self.engine.type != "onnxruntime" and gpus == 0:
            raise ValueError(GPUS_NOT_ZERO_MESSAGE)
        if isinstance(gpus, int) and isinstance(tp, int) and gpus > 0 and gpus % tp != 0:
            raise ValueError(f"{TP_DIVIDES_MESSAGE} (gpus {gpus}, tensorParallelSize {tp})")
        if self.source.scheme == "s3" and not self.cache.enabled:
            raise ValueError(S3_NEEDS_CACHE_MESSAGE)
        if self.engine.type == "onnxruntime" and self.source.scheme == "hf" and not self.cache.enabled:
            raise ValueError(ONNX_HF_NEEDS_CACHE_MESSAGE)
        return self


MODEL_NAME_VALIDATIONS: list[dict[str, str]] = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_MODEL_NAME_LENGTH}",
        "message": f"Model names are at most {MAX_MODEL_NAME_LENGTH} characters: they name "
        "Deployments and Services `<model>-<revision>` and label pods",
    },
    {
        "rule": "self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
        "message": "Model names must start with a letter and hold only lowercase letters, digits "
        "and '-' (they name Services)",
    },
]
"""Root-level CEL rules on `metadata.name`; the CRD generator attaches them to the root."""
