"""Run an EvalGate against an endpoint: the one code path of the in-cluster Job and the CLI.

Everything that can be checked without a request (prompt validity, assertions, the
dataset, every case's variables) is checked first, so bad input gives an Error that
names the problem before any traffic. `run_eval` never raises for bad input or a
broken endpoint: it returns an EvalResult whose phase is Error.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from llmops_operator import prompts
from llmops_operator.api.common import repeated
from llmops_operator.api.evals import Assertion, EvalGateSpec, EvalRunStatus, PassCriteria
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.evals import assertions as checks
from llmops_operator.evals import dataset, scoring
from llmops_operator.evals import judge as judging
from llmops_operator.evals.client import ChatClient, EndpointError
from llmops_operator.redact import bounded

MAX_STATUS_CASES = 50
MAX_STATUS_CHARS = 400
MAX_STATUS_BYTES = 256 * 1024


class EvalSetupError(ValueError):
    """Input that makes the run impossible; reported as phase Error with this message."""


@dataclass(frozen=True)
class PreparedCase:
    case: dataset.Case
    messages: list[dict[str, str]]


@dataclass
class SideResult:
    """One endpoint's cases and scores."""

    endpoint: str
    cases: list[scoring.CaseOutcome]
    verdicts: list[scoring.CaseVerdict]
    scores: scoring.SideScores


@dataclass
class EvalResult:
    """What a run found; `to_status()` gives the EvalRun status to write."""

    phase: str
    message: str
    started_at: datetime
    completed_at: datetime
    revision: str | None = None
    dataset_hash: str | None = None
    prompt_hash: str | None = None
    candidate: SideResult | None = None
    baseline: SideResult | None = None
    per_assertion: list[scoring.AssertionSummary] = field(default_factory=list)
    failing_assertions: list[str] = field(default_factory=list)
    inputs: dict[str, PreparedCase] = field(default_factory=dict)
    """Each case and its rendered messages, by case id, for the report."""
    criteria: dict[str, Any] = field(default_factory=dict)
    """The gate's pass criteria as written on the wire."""

    @property
    def exit_code(self) -> int:
        """0 Passed, 1 Failed, 2 Error: what CI expects."""
        return {"Passed": 0, "Failed": 1}.get(self.phase, 2)

    def to_status(
        self, max_cases: int = MAX_STATUS_CASES, max_chars: int = MAX_STATUS_CHARS
    ) -> dict[str, Any]:
        """EvalRunStatus as a wire dict, truncated to stay far below the 1 MiB object limit."""
        while True:
            status = self._status(max_cases, max_chars)
            if len(json.dumps(status)) <= MAX_STATUS_BYTES or max_cases == 0:
                return status
            max_cases //= 2
            max_chars = max(40, max_chars // 2)

    def _status(self, max_cases: int, max_chars: int) -> dict[str, Any]:
        cases: list[dict[str, Any]] = []
        total = 0
        if self.candidate is not None:
            baseline_passed = {v.id: v.passed for v in self.baseline.verdicts} if self.baseline else {}
            outcomes = {c.id: c for c in self.candidate.cases}
            ordered = sorted(self.candidate.verdicts, key=lambda v: (v.error is None, v.passed))
            total = len(ordered)
            for v in ordered[:max_cases]:
                case = outcomes[v.id]
                cases.append(
                    {
                        "id": bounded(v.id, max_chars),
                        "passed": v.passed,
                        "score": round(v.score, 4),
                        "failed": v.failed,
                        "error": None if v.error is None else bounded(v.error, max_chars),
                        "latencyMs": None if case.latency_ms is None else round(case.latency_ms, 1),
                        "output": None if case.output is None else bounded(case.output, max_chars),
                        "baselinePassed": baseline_passed.get(v.id),
                    }
                )
        status = EvalRunStatus.model_validate(
            {
                "phase": self.phase,
                "startedAt": self.started_at,
                "completedAt": self.completed_at,
                "candidate": _scores(self.candidate),
                "baseline": _scores(self.baseline),
                "perAssertion": [
                    {
                        "name": a.name,
                        "type": a.type,
                        "passed": a.passed,
                        "failed": a.failed,
                        "errors": a.errors,
                        "passRate": round(a.pass_rate, 4),
                        "meanScore": None if a.mean_score is None else round(a.mean_score, 4),
                    }
                    for a in self.per_assertion
                ],
                "cases": cases,
                "truncated": total - len(cases),
                "datasetHash": self.dataset_hash,
                "promptHash": self.prompt_hash,
                "revision": self.revision,
                "failingAssertions": self.failing_assertions,
                "message": bounded(self.message, 2048),
            }
        )
        return status.model_dump(by_alias=True, exclude_none=True, mode="json")


def _scores(side: SideResult | None) -> dict[str, Any] | None:
    if side is None:
        return None
    s = side.scores
    return {
        "passRate": round(s.pass_rate, 4),
        "score": round(s.score, 4),
        "latencyP95Ms": None if s.latency_p95_ms is None else round(s.latency_p95_ms, 1),
        "cases": s.cases,
        "passed": s.passed,
        "errors": s.errors,
    }


@dataclass(frozen=True)
class Judge:
    endpoint: str
    model_name: str | None
    api_key: str | None


def load_cases(gate: EvalGateSpec, dataset_text: str | None) -> list[dataset.Case]:
    """Inline cases, or the ConfigMap text the caller read for `dataset.configMapRef`."""
    if gate.dataset.inline is not None:
        return dataset.from_inline(gate.dataset.inline)
    ref = gate.dataset.config_map_ref
    if dataset_text is None:
        raise dataset.DatasetError(f"dataset ConfigMap {ref.name!r} key {ref.key!r} could not be read")
    return dataset.parse_text(dataset_text, ref.key)


def named_assertions(gate: EvalGateSpec) -> list[tuple[str, Assertion]]:
    named = [(checks.assertion_name(a, i), a) for i, a in enumerate(gate.assertions)]
    duplicates = repeated([n for n, _ in named])
    if duplicates:
        raise EvalSetupError(f"assertion names must be unique: {', '.join(duplicates)}")
    return named


def prepare(
    gate: EvalGateSpec, prompt: PromptVersionSpec, cases: list[dataset.Case]
) -> tuple[list[tuple[str, Assertion]], list[PreparedCase]]:
    """Validate everything that needs no request; render every case's messages."""
    if prompt.prompt != gate.prompt.name:
        raise EvalSetupError(
            f"gate wants prompt {gate.prompt.name!r}, got PromptVersion of {prompt.prompt!r}"
        )
    validity = prompts.validate(prompt)
    if not validity.valid:
        raise EvalSetupError(f"prompt {prompt.prompt!r} v{prompt.version} is invalid: {validity.reason}")
    named = named_assertions(gate)
    for name, assertion in named:
        checks.check_assertion(assertion, name)
    prepared: list[PreparedCase] = []
    problems: list[str] = []
    for case in cases:
        try:
            prepared.append(PreparedCase(case, prompts.render(prompt, case.vars)))
        except prompts.PromptRenderError as exc:
            problems.append(f"case {case.id}: {exc}")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise EvalSetupError("; ".join(problems[:3]) + more)
    return named, prepared


def resolve_judges(
    named: list[tuple[str, Assertion]],
    judge_endpoints: dict[str, str],
    judge_api_key: str | None,
    judge_api_keys: Mapping[tuple[str, str], str] | None = None,
) -> dict[str, Judge]:
    """Judge per llmJudge assertion; a judge Model without a known endpoint is an error naming it.

    A judge with `apiKeySecretRef` uses the key read from that Secret (`judge_api_keys`, by
    (Secret name, key)); others use `judge_api_key`."""
    judges: dict[str, Judge] = {}
    for name, assertion in named:
        if assertion.type != "llmJudge" or assertion.judge is None:
            continue
        spec = assertion.judge
        ref = spec.api_key_secret_ref
        key = (judge_api_keys or {}).get((ref.name, ref.key)) if ref else judge_api_key
        if ref and key is None:
            raise EvalSetupError(
                f"{name}: judge API key Secret {ref.name!r} key {ref.key!r} was not provided"
            )
        if spec.endpoint:
            judges[name] = Judge(spec.endpoint, spec.model_name, key)
        elif spec.model in judge_endpoints:
            judges[name] = Judge(judge_endpoints[spec.model], spec.model_name or spec.model, key)
        else:
            raise EvalSetupError(f"{name}: judge Model {spec.model!r} not found or has no endpoint")
    return judges


def _last_user_message(messages: list[dict[str, str]]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


class _Side:
    """Runs all cases against one endpoint, stopping early once the error budget is spent."""

    def __init__(self, client: ChatClient, model: str, allowed_errors: int) -> None:
        self.client = client
        self.model = model
        self.allowed_errors = allowed_errors
        self.errors = 0

    def note_error(self) -> None:
        self.errors += 1

    @property
    def exhausted(self) -> bool:
        return self.errors > self.allowed_errors


async def _run_case(
    side: _Side,
    item: PreparedCase,
    named: list[tuple[str, Assertion]],
    judges: dict[str, judging.Grader],
    parameters: dict[str, Any],
    response_format: dict[str, Any] | None,
) -> scoring.CaseOutcome:
    case = item.case
    if side.exhausted:
        return scoring.CaseOutcome(case.id, error="not run: too many errors already")
    try:
        completion = await side.client.complete(side.model, item.messages, parameters, response_format)
    except EndpointError as exc:
        side.note_error()
        return scoring.CaseOutcome(case.id, error=str(exc))
    results: list[scoring.AssertionOutcome] = []
    for name, assertion in named:
        judge_answer = None
        if assertion.type == "llmJudge":
            messages = checks.judge_messages(
                assertion.rubric or "", _last_user_message(item.messages), completion.content, case.expected
            )
            try:
                judge_answer = await judges[name].grade(messages, assertion.judge.max_tokens)
            except EndpointError as exc:
                side.note_error()
                return scoring.CaseOutcome(
                    case.id,
                    error=f"{name}: judge failed: {exc}",
                    latency_ms=completion.latency_ms,
                    output=completion.content,
                )
        outcome = checks.evaluate(
            assertion,
            name,
            completion.content,
            case,
            completion.latency_ms,
            judge_answer.text if judge_answer else None,
            judge_answer.structured if judge_answer else False,
        )
        results.append(scoring.AssertionOutcome(name, assertion.type, assertion.weight, outcome))
    outcome_case = scoring.CaseOutcome(case.id, results, None, completion.latency_ms, completion.content)
    if outcome_case.effective_error:
        side.note_error()
    return outcome_case


async def _run_side(
    endpoint: str,
    model_name: str | None,
    gate: EvalGateSpec,
    prompt: PromptVersionSpec,
    prepared: list[PreparedCase],
    named: list[tuple[str, Assertion]],
    judges: dict[str, Judge],
    api_key: str | None,
    transport: httpx.AsyncBaseTransport | None,
    backoff_seconds: float,
) -> SideResult:
    parameters = prompt.parameters.to_wire()
    if gate.seed is not None:
        parameters["seed"] = gate.seed

    def client_for(url: str, key: str | None) -> ChatClient:
        return ChatClient(
            url,
            concurrency=gate.concurrency,
            timeout_seconds=gate.request_timeout_seconds,
            retries=gate.retries,
            backoff_seconds=backoff_seconds,
            api_key=key,
            transport=transport,
        )

    clients: list[ChatClient] = []
    try:
        client = client_for(endpoint, api_key)
        clients.append(client)
        model = model_name or await client.first_model()
        judge_clients: dict[str, judging.Grader] = {}
        for name, judge in judges.items():
            judge_client = client_for(judge.endpoint, judge.api_key)
            clients.append(judge_client)
            try:
                judge_model = judge.model_name or await judge_client.first_model()
            except EndpointError as exc:
                raise EndpointError(f"{name}: judge unreachable: {exc}") from exc
            judge_clients[name] = judging.Grader(judge_client, judge_model)
        allowed = math.floor(gate.pass_criteria.max_error_rate * len(prepared) + scoring.EPSILON)
        side = _Side(client, model, allowed)
        outcomes = await asyncio.gather(
            *(
                _run_case(side, item, named, judge_clients, parameters, prompt.response_format)
                for item in prepared
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    verdicts = [scoring.judge_case(o, gate.pass_criteria.case_score) for o in outcomes]
    return SideResult(endpoint, list(outcomes), verdicts, scoring.side_scores(list(outcomes), verdicts))


def _utcnow() -> datetime:
    return datetime.now(UTC)


async def run_eval_async(
    gate_spec: EvalGateSpec,
    prompt_spec: PromptVersionSpec,
    endpoint: str,
    model_name: str | None = None,
    baseline_endpoint: str | None = None,
    *,
    dataset_text: str | None = None,
    revision: str | None = None,
    judge_endpoints: dict[str, str] | None = None,
    api_key: str | None = None,
    judge_api_key: str | None = None,
    judge_api_keys: Mapping[tuple[str, str], str] | None = None,
    clock: Callable[[], datetime] = _utcnow,
    transport: httpx.AsyncBaseTransport | None = None,
    backoff_seconds: float = 0.5,
) -> EvalResult:
    """See `run_eval`."""
    started = clock()
    result = EvalResult("Error", "", started, started, revision=revision)
    try:
        result.prompt_hash = prompts.content_hash(prompt_spec)
        cases = load_cases(gate_spec, dataset_text)
        result.dataset_hash = dataset.dataset_hash(cases)
        result.criteria = gate_spec.pass_criteria.to_wire()
        named, prepared = prepare(gate_spec, prompt_spec, cases)
        result.inputs = {item.case.id: item for item in prepared}
        judges = resolve_judges(named, judge_endpoints or {}, judge_api_key, judge_api_keys)

        def side(url: str) -> Any:
            return _run_side(
                url,
                model_name,
                gate_spec,
                prompt_spec,
                prepared,
                named,
                judges,
                api_key,
                transport,
                backoff_seconds,
            )

        sides = [side(endpoint)] + ([side(baseline_endpoint)] if baseline_endpoint else [])
        finished = await asyncio.wait_for(asyncio.gather(*sides), timeout=gate_spec.timeout_seconds)
    except (dataset.DatasetError, checks.AssertionConfigError, EvalSetupError, EndpointError) as exc:
        result.message = str(exc)
    except TimeoutError:
        result.message = f"run exceeded timeoutSeconds={gate_spec.timeout_seconds}"
    else:
        _decide(result, gate_spec.pass_criteria, finished[0], finished[1] if baseline_endpoint else None)
    result.completed_at = clock()
    return result


def _decide(
    result: EvalResult, criteria: PassCriteria, candidate: SideResult, baseline: SideResult | None
) -> None:
    """Record both sides' results and the gate's verdict on them in `result`."""
    result.candidate = candidate
    result.baseline = baseline
    result.per_assertion = scoring.summarise_assertions(candidate.cases)
    decision = scoring.verdict(
        candidate.scores,
        candidate.verdicts,
        result.per_assertion,
        criteria,
        baseline.scores if baseline else None,
        baseline.verdicts if baseline else None,
    )
    result.phase, result.message, result.failing_assertions = (
        decision.phase,
        decision.message,
        decision.failing_assertions,
    )


def run_eval(
    gate_spec: EvalGateSpec,
    prompt_spec: PromptVersionSpec,
    endpoint: str,
    model_name: str | None = None,
    baseline_endpoint: str | None = None,
    **options: Any,
) -> EvalResult:
    """Evaluate `endpoint` (and optionally a baseline) against a gate; never raises for bad input.

    `model_name` is sent in requests (default: the endpoint's first model). Options:
    `dataset_text` (the ConfigMap value for `dataset.configMapRef`), `revision`,
    `judge_endpoints` ({Model name: URL} for `judge.model`), `api_key`, `judge_api_key`,
    `judge_api_keys` ({(Secret name, key): key} for judges with `apiKeySecretRef`),
    `clock`, `transport`, `backoff_seconds`.
    """
    return asyncio.run(
        run_eval_async(gate_spec, prompt_spec, endpoint, model_name, baseline_endpoint, **options)
    )
