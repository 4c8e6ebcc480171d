"""Environment variables of the serving container (the Kubernetes EnvVar shape, with the
references bounded to names in the Model's namespace)."""

from __future__ import annotations

from pydantic import Field, model_validator

from llmops_operator.api.common import ApiModel, DataKey, LabelName, Quantity, SubdomainName, cel_rules


class SecretKeySelector(ApiModel):
    """Selects a key of a Secret (Kubernetes SecretKeySelector)."""

    name: SubdomainName
    """Secret name."""
    key: DataKey
    """Key within the Secret."""
    optional: bool | None = None
    """Whether the Secret or key may be missing."""


class ConfigMapKeySelector(ApiModel):
    """Selects a key of a ConfigMap (Kubernetes ConfigMapKeySelector)."""

    name: SubdomainName
    """ConfigMap name."""
    key: DataKey
    """Key within the ConfigMap."""
    optional: bool | None = None
    """Whether the ConfigMap or key may be missing."""


class FieldSelector(ApiModel):
    """Selects a field of the pod (Kubernetes ObjectFieldSelector)."""

    field_path: str = Field(min_length=1, max_length=256)
    """Path of the field, e.g. `metadata.name` or `status.podIP`."""
    api_version: str | None = Field(default=None, max_length=64)
    """Schema version of fieldPath, default v1."""


class ResourceFieldSelector(ApiModel):
    """Selects a container resource (Kubernetes ResourceFieldSelector)."""

    resource: str = Field(min_length=1, max_length=128)
    """Resource name, e.g. `limits.memory`."""
    container_name: LabelName | None = None
    """Container name; default the serving container."""
    divisor: Quantity | None = None
    """Output format of the value, e.g. `1Mi`."""


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from. Exactly one field is set."""

    model_config = cel_rules(
        (
            "[has(self.secretKeyRef), has(self.configMapKeyRef), has(self.fieldRef), "
            "has(self.resourceFieldRef)].filter(x, x).size() == 1",
            "valueFrom sets exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef",
        )
    )

    secret_key_ref: SecretKeySelector | None = None
    """A key of a Secret."""
    config_map_key_ref: ConfigMapKeySelector | None = None
    """A key of a ConfigMap."""
    field_ref: FieldSelector | None = None
    """A field of the pod."""
    resource_field_ref: ResourceFieldSelector | None = None
    """A resource of the container."""

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvVarSource:
        chosen = (self.secret_key_ref, self.config_map_key_ref, self.field_ref, self.resource_field_ref)
        if sum(c is not None for c in chosen) != 1:
            raise ValueError(
                "valueFrom sets exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef"
            )
        return self


HF_TOKEN_LITERAL_MESSAGE = (
    "HF_TOKEN must not be a literal value: set source.credentialsSecretRef (or valueFrom.secretKeyRef)"
)


class EnvVar(ApiModel):
    """An environment variable of the serving container (Kubernetes EnvVar)."""

    model_config = cel_rules(
        ("!(has(self.value) && has(self.valueFrom))", "set value or valueFrom, not both"),
        ("self.name != 'HF_TOKEN' || !has(self.value)", HF_TOKEN_LITERAL_MESSAGE),
    )

    name: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    """Variable name."""
    value: str | None = Field(default=None, max_length=32768)
    """Literal value."""
    value_from: EnvVarSource | None = None
    """Value taken from a Secret, ConfigMap, pod field or resource."""

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"env {self.name}: set value or valueFrom, not both")
        if self.name == "HF_TOKEN" and self.value is not None:
            raise ValueError(HF_TOKEN_LITERAL_MESSAGE)
        return self
