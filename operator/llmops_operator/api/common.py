"""Shared building blocks for the llmops.dev/v1alpha1 API models.

Every CRD schema in `crds/` is generated from pydantic models that derive from
`ApiModel`, so field names, defaults and docs have one source of truth.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "llmops.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
MANAGER = "llmops-operator"
"""Who manages owned objects: the server-side apply field manager and the managed-by label value."""
FIELD_MANAGER = MANAGER
OPERATOR_COMMAND = "llmops-operator"
"""The console script (pyproject) that Jobs run in the operator's image."""

# Labels put on every object the operator owns.
LABEL_MODEL = "llmops.dev/model"
LABEL_REVISION = "llmops.dev/revision"
LABEL_COMPONENT = "llmops.dev/component"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_LABELS = {LABEL_MANAGED_BY: MANAGER}
"""The label selector of every object the operator owns."""


class ApiModel(BaseModel):
    """Base for spec/status models: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The camelCase dict as stored in the API server, without unset optionals."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class StatusModel(ApiModel):
    """Status models tolerate fields written by newer operator versions."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )


class Condition(StatusModel):
    """A standard Kubernetes condition (metav1.Condition shape)."""

    type: str
    """Condition type, e.g. Ready, Progressing, CacheReady."""
    status: Literal["True", "False", "Unknown"]
    """True, False or Unknown."""
    reason: str = ""
    """CamelCase machine-readable reason."""
    message: str = ""
    """Human-readable message saying what to do."""
    last_transition_time: datetime | None = None
    """When status last changed."""
    observed_generation: int | None = None
    """The spec generation this condition was computed from."""


class LocalObjectReference(ApiModel):
    """Reference to an object by name in the same namespace."""

    name: str = Field(min_length=1)
    """Name of the referenced object."""


class SecretKeyRef(ApiModel):
    """A key in a Secret in the same namespace."""

    name: str = Field(min_length=1)
    """Secret name."""
    key: str = Field(default="token", min_length=1)
    """Key within the Secret."""


class ConfigMapKeyRef(ApiModel):
    """A key in a ConfigMap in the same namespace."""

    name: str = Field(min_length=1)
    """ConfigMap name."""
    key: str = Field(min_length=1)
    """Key within the ConfigMap."""
