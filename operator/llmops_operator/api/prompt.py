"""PromptVersion: one immutable, versioned prompt (messages, variables, parameters).

A prompt change is a revision like any other: a Model binds `{name, version}` and the
bound content is hashed into the Model revision, so it is rolled out and gated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from llmops_operator.api.common import DNS_LABEL_PATTERN, ApiModel, Condition, StatusModel

PROMPT_VERSION_SPEC_VALIDATIONS: list[dict[str, str]] = [
    {"rule": "self == oldSelf", "message": "PromptVersion spec is immutable; create a new version"},
]
"""Spec-level CEL rules; the CRD generator attaches them to `spec`."""

FREE_FORM: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
"""Schema extra for fields holding arbitrary JSON (schemas, variable values)."""

IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_CONTENT = 65536
"""Longest message template."""
MAX_SEED = (1 << 53) - 1
"""Largest sampling seed: the API server reads schema bounds as float64, exact up to 2^53."""


class PromptMessage(ApiModel):
    """One chat message; `content` is a jinja2 template rendered in a sandbox."""

    role: Literal["system", "user", "assistant"]
    """Chat role: system, user or assistant."""
    content: str = Field(min_length=1, max_length=MAX_CONTENT)
    """Jinja2 template; undefined variables are errors."""


class PromptVariable(ApiModel):
    """A template variable the caller supplies (or that falls back to its default)."""

    name: str = Field(pattern=IDENTIFIER_PATTERN, max_length=128)
    """Variable name as used in the templates, e.g. `question`."""
    required: bool = True
    """The caller must supply it; a required variable must not have a default."""
    default: Any = Field(default=None, json_schema_extra=FREE_FORM)
    """Value used when the caller does not supply one (optional variables only)."""
    description: str = Field(default="", max_length=4096)
    """What the variable means, for people writing datasets."""


class PromptParameters(ApiModel):
    """Sampling parameters sent with every chat completion for this prompt."""

    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature."""
    max_tokens: int | None = Field(default=None, ge=1, le=1 << 24)
    """Upper bound on generated tokens."""
    top_p: float | None = Field(default=None, gt=0, le=1)
    """Nucleus sampling mass."""
    seed: int | None = Field(default=None, ge=-MAX_SEED, le=MAX_SEED)
    """Sampling seed, for engines that accept one."""
    stop: list[Annotated[str, Field(max_length=256)]] | None = Field(default=None, max_length=16)
    """Stop sequences."""
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    """OpenAI presence penalty."""
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    """OpenAI frequency penalty."""


class PromptVersionSpec(ApiModel):
    """Immutable content of one prompt version."""

    prompt: str = Field(pattern=DNS_LABEL_PATTERN, max_length=63)
    """Prompt name shared by all its versions, e.g. `support-bot`."""
    version: int = Field(ge=1, le=1_000_000)
    """Version number; a Model binds `{name: prompt, version}`."""
    description: str = Field(default="", max_length=4096)
    """What changed in this version."""
    messages: list[PromptMessage] = Field(min_length=1, max_length=64)
    """Chat messages in order; each content is a jinja2 template."""
    variables: list[PromptVariable] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Declared variables; every variable a template uses must be declared here."""
    parameters: PromptParameters = Field(default_factory=PromptParameters)
    """Sampling parameters sent with the prompt."""
    response_format: dict[str, Any] | None = Field(default=None, json_schema_extra=FREE_FORM)
    """Optional JSON schema the answer must follow (sent as a json_schema response format)."""


class PromptVersionStatus(StatusModel):
    """Validation result and usage, written by the operator."""

    content_hash: str | None = None
    """Stable hash of the spec content; part of the revision hash of Models binding it."""
    valid: bool | None = None
    """Whether the templates compile and the variables are consistent."""
    reason: str = ""
    """Why the version is invalid, when it is."""
    used_by: list[str] = Field(default_factory=list)
    """Models that bind this version."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready (the templates compile), and Stalled while the version is invalid."""
    observed_generation: int | None = None
    """The generation this status was computed from."""
