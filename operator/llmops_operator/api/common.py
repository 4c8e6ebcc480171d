"""Shared building blocks for the llmops.dev/v1alpha1 API models.

Every CRD schema in `crds/` is generated from pydantic models that derive from
`ApiModel`, so field names, defaults and docs have one source of truth.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
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

# ---------------------------------------------------------------------------------------------
# References are names, never paths: every field naming another object carries the name rule of
# the kind it names, so `../../other-ns/secrets/x` is rejected by the API server at apply time.
# The patterns are RE2 (the API server's engine) and Python `re` alike.
# ---------------------------------------------------------------------------------------------
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
"""RFC 1123 label: Services, namespaces, revisions, prompt names (at most 63 characters)."""
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
"""RFC 1123 subdomain: Secrets, ConfigMaps, custom objects, HTTPRoutes (at most 253 characters)."""
DATA_KEY_PATTERN = r"^(\.?[-_a-zA-Z0-9]|\.\.[-._a-zA-Z0-9])[-._a-zA-Z0-9]*$"
"""A key of a Secret or ConfigMap: letters, digits, `-`, `_`, `.`, and never `.` or `..`."""
MAX_LABEL_LENGTH = 63
MAX_SUBDOMAIN_LENGTH = 253

LabelName = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_LENGTH, pattern=DNS_LABEL_PATTERN)]
"""The name of an object whose kind requires an RFC 1123 label (Service, namespace)."""
SubdomainName = Annotated[
    str, Field(min_length=1, max_length=MAX_SUBDOMAIN_LENGTH, pattern=DNS_SUBDOMAIN_PATTERN)
]
"""The name of an object whose kind requires an RFC 1123 subdomain (most kinds)."""
DataKey = Annotated[str, Field(min_length=1, max_length=MAX_SUBDOMAIN_LENGTH, pattern=DATA_KEY_PATTERN)]
"""A key inside a Secret or ConfigMap."""


def repeated(names: Sequence[str]) -> list[str]:
    """The names that occur more than once, sorted: what a "must be unique" message lists."""
    return sorted({n for n in names if names.count(n) > 1})


M = TypeVar("M", bound=BaseModel)


def require_unique(names: Sequence[str], message: str) -> None:
    """Raise `message: <the repeated names>` when a name occurs more than once (for a
    validator of a list keyed by name)."""
    duplicates = repeated(names)
    if duplicates:
        raise ValueError(f"{message}: {', '.join(duplicates)}")


def at_most_one(model: M, fields: tuple[str, str], message: str) -> M:
    """`model`, or ValueError(`message`) when both `fields` are set: the validator behind a CEL
    rule `!(has(self.a) && has(self.b))`."""
    if all(getattr(model, field) is not None for field in fields):
        raise ValueError(message)
    return model


def cel_rules(*rules: tuple[str, str]) -> ConfigDict:
    """A model config carrying (CEL rule, message) pairs as `x-kubernetes-validations`: the API
    server enforces them at apply time; pydantic validators mirror them."""
    return ConfigDict(
        json_schema_extra={"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}
    )


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
    """Status models tolerate fields written by newer operator versions (the rest of the config
    is ApiModel's: pydantic merges a subclass's config into its parent's)."""

    model_config = ConfigDict(extra="ignore")


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


class SecretKeyRef(ApiModel):
    """A key in a Secret in the same namespace."""

    name: SubdomainName
    """Secret name."""
    key: DataKey = "token"
    """Key within the Secret."""


class ConfigMapKeyRef(ApiModel):
    """A key in a ConfigMap in the same namespace."""

    name: SubdomainName
    """ConfigMap name."""
    key: DataKey
    """Key within the ConfigMap."""


QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _quantity(value: Any) -> Any:
    """Accept `cpu: 8` as well as `cpu: "8"`, like Kubernetes does, and keep strings on the wire."""
    if isinstance(value, bool):
        raise ValueError("a quantity is a number or a string such as 500m or 64Gi")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and not re.fullmatch(QUANTITY_PATTERN, value):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 8, 500m, 64Gi)")
    return value


Quantity = Annotated[
    str,
    BeforeValidator(_quantity),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "x-kubernetes-int-or-string": True,
        }
    ),
]
"""A Kubernetes resource quantity (`8`, `500m`, `64Gi`)."""
