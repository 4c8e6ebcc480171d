"""EvalGate (dataset + assertions + pass criteria) and EvalRun (one evaluation's record).

An EvalRun records enough to reproduce it: dataset hash, prompt hash, revision and
(truncated) per-case outcomes. Error (endpoint down, judge unreachable, unreadable
dataset) is its own phase and is never reported as Failed or Passed.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any, Literal

import re2
from pydantic import Field, model_validator

from llmops_operator.api.common import (
    ApiModel,
    Condition,
    ConfigMapKeyRef,
    LabelName,
    SecretKeyRef,
    StatusModel,
    SubdomainName,
    cel_rules,
)
from llmops_operator.api.prompt import FREE_FORM, MAX_SEED

AssertionType = Literal[
    "equals",
    "contains",
    "regex",
    "jsonSchema",
    "similarity",
    "rougeL",
    "bleu",
    "latency",
    "llmJudge",
    "pii",
    "secrets",
]
SAFETY_TYPES = ("pii", "secrets")
"""Assertions that look for leaked personal data or secrets (evals/safety.py)."""
PII_KINDS: tuple[str, ...] = ("email", "phone", "card", "iban", "nationalId")
"""What a `pii` assertion looks for when `kinds` is unset: everything."""
DEFAULT_PHONE_REGIONS = ["US"]
"""Regions whose national phone formats `pii` reads (international +NN numbers are always read)."""
EvalPhase = Literal["Pending", "Running", "Passed", "Failed", "Error"]
SCORED_TYPES = ("similarity", "rougeL", "bleu", "llmJudge")
"""Assertions that yield a 0..1 score compared against `threshold`."""
DEFAULT_THRESHOLDS = {"similarity": 0.8, "rougeL": 0.4, "bleu": 0.3, "llmJudge": 0.7}
MAX_CASES = 1000
MAX_ASSERTIONS = 32
MAX_VALUES = 64
MAX_TEXT = 65536
"""Longest expected answer, assertion value or pattern."""
MAX_PATTERN = 4096
"""Longest regex an assertion may hold."""
MAX_TIMEOUT_SECONDS = 86400
MAX_REQUEST_TIMEOUT_SECONDS = 3600


REGEX_MAX_MEMORY = 8 << 20
"""Memory RE2 may use for one compiled assertion pattern; a larger pattern is invalid."""


@functools.lru_cache(maxsize=1024)
def compile_regex(pattern: str, case_insensitive: bool = False) -> Any:
    """A regex assertion's pattern on RE2: matching is linear in the answer's length whatever the
    pattern, so `(a+)+$` cannot hang a gate. RE2 has no backreferences or lookaround."""
    options = re2.Options()
    options.log_errors = False
    options.case_sensitive = not case_insensitive
    options.max_mem = REGEX_MAX_MEMORY
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"invalid regex {pattern[:80]!r}: {reason} (RE2 syntax: no backreferences or lookaround)"
        ) from exc


class PromptRef(ApiModel):
    """The prompt whose rendered messages are sent for each case."""

    name: LabelName
    """Prompt name (PromptVersion spec.prompt)."""
    version: int | None = Field(default=None, ge=1)
    """Version; defaults to the one the candidate revision binds."""


class EvalCase(ApiModel):
    """One evaluation case: template variables plus the expected answer."""

    id: str | None = Field(default=None, max_length=253)
    """Case id shown in results; defaults to its position."""
    vars: dict[str, Any] = Field(default_factory=dict, json_schema_extra=FREE_FORM)
    """Values for the prompt's variables."""
    expected: str | None = Field(default=None, max_length=MAX_TEXT)
    """Reference answer for equals, similarity, rougeL, bleu and as judge context."""
    metadata: dict[str, Any] = Field(default_factory=dict, json_schema_extra=FREE_FORM)
    """Further per-case fields, readable by an assertion's `expectedField`."""


class DatasetSpec(ApiModel):
    """Where the cases come from: a ConfigMap key (JSONL or CSV) or inline."""

    model_config = cel_rules(
        (
            "has(self.configMapRef) != has(self.inline)",
            "dataset needs exactly one of configMapRef or inline",
        ),
    )

    config_map_ref: ConfigMapKeyRef | None = None
    """ConfigMap key holding JSONL (`.jsonl`) or CSV (`.csv`) cases."""
    inline: list[EvalCase] | None = Field(default=None, min_length=1, max_length=MAX_CASES)
    """Cases written in the gate itself."""

    @model_validator(mode="after")
    def _exactly_one(self) -> DatasetSpec:
        if (self.config_map_ref is None) == (self.inline is None):
            raise ValueError("dataset needs exactly one of configMapRef or inline")
        return self


class JudgeSpec(ApiModel):
    """The model that grades answers for llmJudge: another Model, or any OpenAI endpoint."""

    model_config = cel_rules(
        ("has(self.model) != has(self.endpoint)", "judge needs exactly one of model or endpoint"),
    )

    model: SubdomainName | None = None
    """Name of a Model in the same namespace whose endpoint is used."""
    endpoint: str | None = Field(default=None, max_length=2048)
    """Base URL of an OpenAI-compatible API, e.g. http://judge:8000/v1."""
    model_name: str | None = Field(default=None, max_length=256)
    """Model name sent in requests; defaults to `model`, or the first from /v1/models."""
    api_key_secret_ref: SecretKeyRef | None = None
    """Secret key holding a bearer token for the judge endpoint; the eval Job gets it as the
    environment variable `LLMOPS_JUDGE_API_KEY_<n>` (a secretKeyRef), never in args."""
    max_tokens: int = Field(default=256, ge=1, le=8192)
    """Upper bound on the judge's answer length."""

    @model_validator(mode="after")
    def _exactly_one(self) -> JudgeSpec:
        if (self.model is None) == (self.endpoint is None):
            raise ValueError("judge needs exactly one of model or endpoint")
        return self


_THRESHOLD_IN_RANGE = (
    "self.type == 'latency' || !has(self.threshold) || (self.threshold >= 0.0 && self.threshold <= 1.0)"
)
_ASSERTION_RULES = [
    {
        "rule": "self.type != 'llmJudge' || (has(self.judge) && has(self.rubric))",
        "message": "llmJudge needs judge and rubric",
    },
    {
        "rule": "self.type != 'latency' || has(self.threshold)",
        "message": "latency needs threshold (milliseconds)",
    },
    # "jsonSchema needs value" stays in the pydantic validator: `value` is untyped, so CEL cannot see it.
    {
        "rule": _THRESHOLD_IN_RANGE,
        "message": "threshold is a score between 0 and 1 (milliseconds only for latency)",
    },
    {
        "rule": "!has(self.negate) || !self.negate || "
        "self.type in ['equals', 'contains', 'regex', 'jsonSchema']",
        "message": "negate applies to equals, contains, regex and jsonSchema only",
    },
]


class Assertion(ApiModel):
    """One check applied to every case's answer."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {"x-kubernetes-validations": _ASSERTION_RULES}
    }

    type: AssertionType
    """equals, contains, regex, jsonSchema, similarity, rougeL, bleu, latency, llmJudge, pii or secrets."""
    name: str | None = Field(default=None, max_length=128)
    """Name used in results and conditions; defaults to `<type>[<index>]`."""
    value: Any = Field(default=None, json_schema_extra=FREE_FORM)
    """Expected text, pattern or JSON schema; defaults to the case's expected field."""
    values: list[Annotated[str, Field(max_length=MAX_PATTERN)]] | None = Field(
        default=None, max_length=MAX_VALUES
    )
    """Several strings for contains (see mode); for pii and secrets, findings allowed anyway."""
    mode: Literal["any", "all"] = "any"
    """contains: any or all of `values` must appear."""
    case_insensitive: bool = False
    """equals, contains, regex: ignore case."""
    negate: bool = False
    """equals, contains, regex, jsonSchema: pass when the check does not hold (e.g. must not contain)."""
    threshold: float | None = Field(default=None, ge=0, le=3_600_000)
    """Minimum 0..1 score for scored types; maximum milliseconds for latency."""
    weight: float = Field(default=1.0, ge=0, le=1000)
    """Weight in the case score; 0 records the result without gating on it."""
    judge: JudgeSpec | None = None
    """llmJudge: who grades."""
    rubric: str | None = Field(default=None, max_length=16384)
    """llmJudge: what the judge is asked to grade."""
    field: str | None = Field(default=None, max_length=256)
    """Dotted path into the answer parsed as JSON (e.g. `answer.text`); whole answer when unset."""
    expected_field: str = Field(default="expected", max_length=128)
    """Case field with the reference text: `expected` or a metadata key."""
    kinds: list[str] | None = Field(default=None, max_length=64)
    """pii: email, phone, card, iban, nationalId (default all); secrets: detect-secrets plugin names
    (default all but IPPublicDetector)."""
    phone_regions: list[str] | None = Field(default=None, max_length=32)
    """pii: ISO 3166 regions whose national phone formats are read (default US); +NN numbers always."""

    @model_validator(mode="after")
    def _consistent(self) -> Assertion:
        if self.type == "llmJudge" and (self.judge is None or not self.rubric):
            raise ValueError("llmJudge needs judge and rubric")
        if self.type == "latency" and self.threshold is None:
            raise ValueError("latency needs threshold (milliseconds)")
        if self.type == "jsonSchema" and self.value is None:
            raise ValueError("jsonSchema needs value (the schema)")
        if self.type != "latency" and self.threshold is not None and not 0 <= self.threshold <= 1:
            raise ValueError("threshold is a score between 0 and 1 (milliseconds only for latency)")
        if self.negate and self.type not in ("equals", "contains", "regex", "jsonSchema"):
            raise ValueError("negate applies to equals, contains, regex and jsonSchema only")
        if isinstance(self.value, str) and len(self.value) > MAX_TEXT:
            raise ValueError(f"value is longer than {MAX_TEXT} characters")
        if self.kinds is not None and self.type not in SAFETY_TYPES:
            raise ValueError("kinds applies to pii and secrets only")
        if self.type == "pii" and self.kinds is not None:
            unknown = sorted(set(self.kinds) - set(PII_KINDS))
            if unknown:
                raise ValueError(f"unknown pii kinds {unknown}; known: {', '.join(PII_KINDS)}")
        if self.type == "regex":
            for pattern in [self.value, *(self.values or [])]:
                if isinstance(pattern, str):
                    if len(pattern) > MAX_PATTERN:
                        raise ValueError(f"regex is longer than {MAX_PATTERN} characters")
                    compile_regex(pattern)
        return self


class PassCriteria(ApiModel):
    """When a run passes."""

    pass_rate: float = Field(default=1.0, ge=0, le=1)
    """Fraction of cases that must pass."""
    max_regression_vs_baseline: float | None = Field(default=None, ge=0, le=1)
    """Candidate pass rate may fall at most this far below the baseline's."""
    latency_p95_ms: float | None = Field(default=None, gt=0, le=3_600_000)
    """Upper bound on the candidate's p95 request latency."""
    case_score: float | None = Field(default=None, ge=0, le=1)
    """When set, a case passes if its weighted score reaches this, instead of needing every assertion."""
    max_error_rate: float = Field(default=0.05, ge=0, le=1)
    """Fraction of cases that may error (counted as failed); beyond it the run is Error."""


class EvalGateSpec(ApiModel):
    """A dataset, the assertions applied to each answer, and pass criteria."""

    prompt: PromptRef
    """Prompt rendered with each case's variables."""
    dataset: DatasetSpec
    """The cases."""
    assertions: list[Assertion] = Field(min_length=1, max_length=MAX_ASSERTIONS)
    """Checks applied to each answer."""
    pass_criteria: PassCriteria = Field(default_factory=PassCriteria)
    """When the run passes."""
    concurrency: int = Field(default=4, ge=1, le=256)
    """Requests in flight per endpoint."""
    timeout_seconds: int = Field(default=900, ge=1, le=MAX_TIMEOUT_SECONDS)
    """Deadline for the whole run; past it the run is Error."""
    request_timeout_seconds: float = Field(default=60.0, gt=0, le=MAX_REQUEST_TIMEOUT_SECONDS)
    """Deadline for one request."""
    retries: int = Field(default=3, ge=0, le=10)
    """Retries on 429, 5xx and connection errors, with exponential back-off."""
    seed: int | None = Field(default=None, ge=-MAX_SEED, le=MAX_SEED)
    """Sampling seed sent with every request (overrides the prompt's)."""


class EvalGateStatus(StatusModel):
    """Last run of the gate."""

    last_run: str | None = None
    """Name of the most recent EvalRun."""
    conditions: list[Condition] = Field(default_factory=list)
    """Standard conditions (e.g. Valid)."""
    observed_generation: int | None = None
    """The generation this status was computed from."""


class EvalRunSpec(ApiModel):
    """What to evaluate: written by the operator for a gate step."""

    gate: SubdomainName
    """EvalGate name."""
    model: SubdomainName
    """Model name."""
    revision: LabelName
    """Candidate revision."""
    endpoint: str = Field(min_length=1, max_length=2048)
    """Candidate's OpenAI-compatible base URL (…/v1)."""
    served_model_name: str | None = Field(default=None, max_length=256)
    """Model name sent in requests; defaults to `model`."""
    prompt_version: int | None = Field(default=None, ge=1)
    """Prompt version bound by the candidate; overrides the gate's when set."""
    baseline_revision: LabelName | None = None
    """Stable revision compared against."""
    baseline_endpoint: str | None = Field(default=None, max_length=2048)
    """Stable revision's base URL; baseline comparison runs when set."""


class EvalScores(StatusModel):
    """Aggregate scores of one side (candidate or baseline)."""

    pass_rate: float = 0.0
    """Fraction of cases that passed."""
    score: float = 0.0
    """Mean weighted case score."""
    latency_p95_ms: float | None = None
    """p95 request latency."""
    cases: int = 0
    """Cases run."""
    passed: int = 0
    """Cases that passed."""
    errors: int = 0
    """Cases that errored."""


class AssertionResult(StatusModel):
    """One assertion across all candidate cases."""

    name: str
    """Assertion name."""
    type: str
    """Assertion type."""
    passed: int = 0
    """Cases where it passed."""
    failed: int = 0
    """Cases where it failed."""
    errors: int = 0
    """Cases where it could not be evaluated."""
    pass_rate: float = 0.0
    """passed / evaluated cases."""
    mean_score: float | None = None
    """Mean 0..1 score for scored types (mean ms for latency)."""


class CaseResult(StatusModel):
    """One case's outcome (long strings clipped)."""

    id: str
    """Case id."""
    passed: bool = False
    """Whether the case passed."""
    score: float = 0.0
    """Weighted case score."""
    failed: list[str] = Field(default_factory=list)
    """Assertions that failed on this case."""
    error: str | None = None
    """Why the case could not be evaluated."""
    latency_ms: float | None = None
    """Request latency."""
    output: str | None = None
    """The answer (clipped)."""
    baseline_passed: bool | None = None
    """Whether the baseline passed the same case."""


class CaseRecordRef(StatusModel):
    """Where the eval Job kept every case's full outcome (the report reads it back)."""

    config_map: str
    """ConfigMap in the EvalRun's namespace, owned by the EvalRun (deleted with it)."""
    key: str
    """binaryData key holding the gzipped JSON record."""
    cases: int = 0
    """Cases in the record."""
    clipped_chars: int | None = None
    """Texts longer than this were clipped to fit the ConfigMap; unset when nothing was."""


class EvalRunStatus(StatusModel):
    """Outcome of one evaluation, reproducible from its hashes and revision."""

    phase: EvalPhase = "Pending"
    """Pending, Running, Passed, Failed or Error."""
    started_at: datetime | None = None
    """When the run started."""
    completed_at: datetime | None = None
    """When the run finished."""
    candidate: EvalScores | None = None
    """Candidate scores."""
    baseline: EvalScores | None = None
    """Baseline scores, when compared."""
    per_assertion: list[AssertionResult] = Field(default_factory=list)
    """Per-assertion results on the candidate."""
    cases: list[CaseResult] = Field(default_factory=list)
    """Per-case outcomes, failures first, truncated."""
    truncated: int = 0
    """Cases left out of `cases`."""
    record: CaseRecordRef | None = None
    """Where every case's full outcome is kept, when the Job could write it."""
    dataset_hash: str | None = None
    """Hash of the parsed dataset."""
    prompt_hash: str | None = None
    """Content hash of the prompt version used."""
    revision: str | None = None
    """Candidate revision evaluated."""
    failing_assertions: list[str] = Field(default_factory=list)
    """Assertions (and criteria) that made the run fail."""
    message: str = ""
    """Human-readable summary; for Error, what went wrong."""
    signature: str | None = None
    """HMAC of the verdict by the eval Job the operator started for this run; a phase without a
    valid signature is not taken as a verdict (see docs/security.md)."""
    conditions: list[Condition] = Field(default_factory=list)
    """Ready (the run passed), Reconciling while it runs, Stalled once it failed or erred."""
    observed_generation: int | None = None
    """The generation this status was computed from."""
