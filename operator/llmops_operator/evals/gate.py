"""An eval gate step as the Model pass sees it: the EvalRun it starts (name, endpoints, bound
prompt) and the result read back from the EvalRun and its Job. Pure."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from llmops_operator import engines, revisions
from llmops_operator.api.common import API_VERSION
from llmops_operator.api.evals import EvalGateSpec
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.rollout import RolloutStatus
from llmops_operator.conditions import READY, VALID, Reason, validity_conditions
from llmops_operator.evals import verdict
from llmops_operator.evals.assertions import AssertionConfigError, check_assertion
from llmops_operator.evals.job import endpoint
from llmops_operator.hashing import text_digest
from llmops_operator.resources import job_state
from llmops_operator.rollout import machine


def eval_run_name(revision: str, gate: str, step_index: int, started_at: datetime | None) -> str:
    """Deterministic from persisted status (the machine asks for the run only once its
    `evalRun` was written), so re-issuing StartEvalRun never creates a second run; the start
    time makes a retried rollout (which starts the gate again) get a fresh run."""
    attempt = text_digest(f"{started_at.timestamp() if started_at else 0:.6f}", 5)
    return revisions.fit_name(gate[:36], f"{revision}-s{step_index}-{attempt}")


def eval_result(
    eval_runs: Sequence[Mapping[str, Any]],
    rollout: RolloutStatus | None,
    jobs: Sequence[Mapping[str, Any]] = (),
    verdict_key: bytes = b"",
) -> machine.EvalResult | None:
    """The result of the EvalRun that the current gate step started, if it reported one."""
    name = current_eval_run_name(rollout)
    if name is None:
        return None
    run = next((r for r in eval_runs if r["metadata"]["name"] == name), None)
    if run is None:
        return None
    status = run.get("status") or {}
    phase = status.get("phase") or "Pending"
    job = next((j for j in jobs if j["metadata"]["name"] == name), None)
    if phase in ("Pending", "Running") and job_state(job) == "Failed":
        return machine.EvalResult(
            phase="Error",
            name=name,
            message=f"eval Job {name} failed before recording a result; see its logs",
        )
    status = verdict.trusted(verdict_key, run).get("status") or {}
    phase = status.get("phase") or "Pending"
    message = status.get("message") or ""
    failing = status.get("failingAssertions") or []
    if phase == "Failed" and failing:
        message = f"failing assertions: {', '.join(map(str, failing))}; {message}".rstrip("; ")
    return machine.EvalResult(phase=phase, name=name, message=message)


def current_eval_run_name(rollout: RolloutStatus | None) -> str | None:
    """Name of the EvalRun of the rollout's current gate step (None: no gate step running)."""
    if rollout is None or rollout.eval_run is None or rollout.revision is None:
        return None
    run = rollout.eval_run
    return eval_run_name(rollout.revision, run.gate, run.step_index, run.started_at)


def endpoint_of(model: str, namespace: str, spec: ModelSpec, endpoint_template: str) -> Callable[[str], str]:
    """revision -> its OpenAI base URL as eval Jobs see it."""
    info = engines.get_engine(spec.engine.type)
    port = info.openai_port or info.http_port

    def of(revision: str) -> str:
        service = revisions.revision_service_name(model, revision)
        return endpoint(endpoint_template, service, namespace, port, model, revision)

    return of


def eval_run(
    model: str,
    namespace: str,
    spec: ModelSpec,
    action: machine.StartEvalRun,
    started_at: datetime | None,
    *,
    eval_gates: Sequence[Mapping[str, Any]],
    endpoint_template: str,
    owner: Mapping[str, Any],
) -> dict[str, Any]:
    """The EvalRun of a gate step: the candidate (and stable, as baseline) and its bound prompt."""
    gate = next((g for g in eval_gates if g["metadata"]["name"] == action.gate), None)
    return eval_run_object(
        eval_run_name(action.revision, action.gate, action.step_index, started_at),
        namespace,
        model,
        action.gate,
        action.revision,
        endpoint_of(model, namespace, spec, endpoint_template),
        owner,
        baseline=action.stable_revision,
        prompt_version=bound_prompt_version(spec, gate),
    )


def eval_run_object(
    name: str,
    namespace: str,
    model: str,
    gate: str,
    revision: str,
    endpoint_of_revision: Callable[[str], str],
    owner: Mapping[str, Any],
    *,
    baseline: str | None = None,
    prompt_version: int | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An EvalRun of `gate` against `revision` (and `baseline`), owned by the Model: the one
    shape of both gate-step and scheduled runs."""
    run_spec: dict[str, Any] = {
        "gate": gate,
        "model": model,
        "revision": revision,
        "endpoint": endpoint_of_revision(revision),
    }
    if baseline:
        run_spec["baselineRevision"] = baseline
        run_spec["baselineEndpoint"] = endpoint_of_revision(baseline)
    if prompt_version is not None:
        run_spec["promptVersion"] = prompt_version
    return {
        "apiVersion": API_VERSION,
        "kind": "EvalRun",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**revisions.revision_labels(model, revision, component="eval"), **(labels or {})},
            "ownerReferences": [dict(owner)],
        },
        "spec": run_spec,
    }


def bound_prompt_version(spec: ModelSpec, gate: Mapping[str, Any] | None) -> int | None:
    """The version the Model binds of the prompt the gate evaluates, if it binds one."""
    gate_prompt = (((gate or {}).get("spec") or {}).get("prompt") or {}).get("name")
    return next((ref.version for ref in spec.prompts if ref.name == gate_prompt), None)


def newest_runs(eval_runs: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The newest EvalRun of each gate named in `eval_runs` (by creation time, then name)."""
    newest: dict[str, Mapping[str, Any]] = {}
    for run in sorted(
        eval_runs, key=lambda r: (r["metadata"].get("creationTimestamp") or "", r["metadata"]["name"])
    ):
        gate = (run.get("spec") or {}).get("gate")
        if gate:
            newest[gate] = run
    return newest


def last_run(gate: Mapping[str, Any], eval_runs: Iterable[Mapping[str, Any]]) -> str | None:
    """The name of the newest EvalRun of this gate in its namespace."""
    meta = gate["metadata"]
    here = (r for r in eval_runs if r["metadata"]["namespace"] == meta["namespace"])
    newest = newest_runs(here).get(meta["name"])
    return newest["metadata"]["name"] if newest is not None else None


def eval_gate_status(
    obj: dict[str, Any], now: datetime, eval_runs: Iterable[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """The Valid condition of an EvalGate (what would make every run an Error, said at apply
    time) and its last run."""
    meta = obj["metadata"]
    problem = ""
    try:
        spec = EvalGateSpec.model_validate(obj.get("spec") or {})
        for index, assertion in enumerate(spec.assertions):
            check_assertion(assertion, assertion.name or f"{assertion.type}[{index}]")
    except ValidationError as exc:
        problem = f"invalid spec: {exc.errors()[0]['msg']}"
    except AssertionConfigError as exc:
        problem = str(exc)
    conditions = validity_conditions(
        obj, problem, (Reason.VALIDATED, "assertions compile"), Reason.INVALID_ASSERTION, now, (VALID, READY)
    )
    status: dict[str, Any] = {
        "conditions": conditions,
        "observedGeneration": meta.get("generation"),
    }
    newest = last_run(obj, eval_runs)
    if newest is not None:
        status["lastRun"] = newest
    return status
