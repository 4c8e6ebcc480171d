"""The Model's status: what the operator observed and decided (written only by the operator,
except the rollout control fields a user may set; see `api/rollout.py`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from llmops_operator.api.common import Condition, StatusModel
from llmops_operator.api.model import Phase
from llmops_operator.api.monitoring import CostStatus, QualityTrend
from llmops_operator.api.rollout import RolloutStatus


class RevisionRecord(StatusModel):
    """One revision in the Model's history."""

    revision: str
    """Revision hash."""
    created_at: datetime
    """When the operator first saw this revision."""
    outcome: str = "Progressing"
    """Progressing, Stable, Superseded, RolledBack or Failed (see `revisions.OUTCOMES`)."""
    reason: str = ""
    """Why it ended that way, e.g. the failing analysis metric."""


class PlanStatus(StatusModel):
    """What the GPU planner chose for the current revision."""

    gpus: int
    """GPUs per replica."""
    gpu_product: str | None = None
    """GPU product the pods are meant for (`nvidia.com/gpu.product`)."""
    tensor_parallel_size: int = 1
    """Tensor parallel degree."""
    estimated_memory_gib: float | None = Field(default=None, alias="estimatedMemoryGiB")
    """Estimated GPU memory per replica (weights + KV cache + overhead), GiB."""
    reason: str = ""
    """How the plan was made, or why nothing fits."""


class CacheStatus(StatusModel):
    """The weight cache."""

    pvc_name: str | None = None
    """Name of the PersistentVolumeClaim."""
    path: str | None = None
    """Directory of the current source inside the PVC."""
    ready: bool = False
    """Whether the loader Job for the current source has succeeded."""


class ColdStart(StatusModel):
    """Where the last wake from zero spent its time (timestamps from the pods, as observed)."""

    signal_at: datetime
    """When the operator first saw requests waiting for the Model at zero."""
    pending_requests: float | None = None
    """The waiting requests it saw then."""
    scheduled_at: datetime | None = None
    """When the first new pod was bound to a node."""
    started_at: datetime | None = None
    """When its engine container started (the image was pulled by then)."""
    ready_at: datetime | None = None
    """When the first new pod became Ready (it can take the held requests)."""
    seconds_to_ready: float | None = None
    """readyAt - signalAt."""


class AutoscalerState(StatusModel):
    """What the autoscaler decided last and the scale-down window it is in (status.autoscaler)."""

    desired_replicas: int = 0
    """Replicas the autoscaler asks for across the Model's serving revisions."""
    recommendation: int | None = None
    """Replicas the last signal asked for, within bounds, before rate limits and stabilization."""
    last_value: float | None = None
    """The last metric value read (None: no data)."""
    last_scale_time: datetime | None = None
    """When desiredReplicas last changed."""
    below_target_since: datetime | None = None
    """Start of the current run of recommendations below desiredReplicas (None: not in one)."""
    stabilized_recommendation: int | None = None
    """Highest recommendation since belowTargetSince: where the pending scale-down will land."""
    reason: str = ""
    """CamelCase reason of the last decision: ScaledUp, ScaledDown, Steady, ScaleDownPending,
    LimitedByMaxReplicas, NoData, Clamped, and with scale to zero WokenFromZero, AtZero,
    ScaleToZeroPending or ScaledToZero."""
    message: str = ""
    """The numbers behind the last decision, for humans."""
    pending_requests: float | None = None
    """Last reading of the wake signal (requests waiting for the Model), with minReplicas 0."""
    idle_since: datetime | None = None
    """Start of the current idle run (scale to zero after `scaleToZeroAfter` of it)."""
    cold_start: ColdStart | None = None
    """Phases of the last wake from zero."""


class ModelStatus(StatusModel):
    """Observed state of a Model, written by the operator (users write only `rollout` controls)."""

    observed_generation: int | None = None
    """The spec generation the status was computed from."""
    phase: Phase = "Pending"
    """Pending, Progressing, Paused, Ready, Degraded or Failed."""
    conditions: list[Condition] = Field(default_factory=list, max_length=32)
    """Ready, Progressing, CacheReady, Scheduled and rollout conditions."""
    stable_revision: str | None = None
    """The revision serving all traffic outside a rollout."""
    canary_revision: str | None = None
    """The revision being rolled out, if any."""
    rollout: RolloutStatus | None = None
    """Progress of the current rollout."""
    revisions: list[RevisionRecord] = Field(default_factory=list, max_length=128)
    """Revision history, newest first, pruned to `rollout.revisionHistoryLimit`."""
    plan: PlanStatus | None = None
    """GPU plan of the desired revision."""
    replicas: int = 0
    """Pods of all revisions (scale subresource)."""
    ready_replicas: int = 0
    """Ready pods of all revisions."""
    selector: str | None = None
    """Label selector of the Model's pods (scale subresource)."""
    endpoint: str | None = None
    """OpenAI-compatible base URL inside the cluster, e.g. http://NAME.NAMESPACE.svc:8000/v1."""
    cache: CacheStatus | None = None
    """Weight cache state, when the cache is enabled."""
    autoscaler: AutoscalerState | None = None
    """The autoscaler's last decision and the signal it saw, when `spec.autoscaling` is set."""
    quality: list[QualityTrend] = Field(default_factory=list, max_length=8)
    """Trend of each scheduled evaluation of the serving revision."""
    cost: CostStatus | None = None
    """Token throughput, GPU-hours and cost of the serving revisions."""
