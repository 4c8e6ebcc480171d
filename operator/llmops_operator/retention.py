"""What the operator keeps of a Model's past, and what it deletes. Pure.

Without this, every gate step leaves an EvalRun (up to 256 KiB of results each), its Job and
per-run identity, and every revision a prompt ConfigMap, forever. Kept: the last
`eval_run_history` finished gate-step EvalRuns per gate, always the one the rollout is waiting
for and the newest Passed one per gate of each kept revision (quality monitoring's baseline), the
prompt ConfigMaps of revisions still in `status.revisions`, the loader Job of the current
weights. Scheduled runs have their own `historyLimit` (`monitoring`). Everything owned by the
Model goes with it (ownerReferences); finished eval Jobs also expire by
`ttlSecondsAfterFinished`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from llmops_operator.api.common import LABEL_COMPONENT, LABEL_REVISION
from llmops_operator.evals.job import eval_run_objects
from llmops_operator.monitoring.quality import SCHEDULE_LABEL
from llmops_operator.resources import LOADER_COMPONENT, PROMPTS_COMPONENT

DEFAULT_EVAL_RUN_HISTORY = 5
FINISHED_EVAL_PHASES = frozenset({"Passed", "Failed", "Error"})


def _labels(obj: Mapping[str, Any]) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


def _name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


def _created(obj: Mapping[str, Any]) -> str:
    # RFC 3339 in UTC sorts as text; the name breaks ties so the order is total
    return f"{(obj.get('metadata') or {}).get('creationTimestamp') or ''}/{_name(obj)}"


def job_finished(job: Mapping[str, Any]) -> bool:
    """A Job that ended (Complete or Failed): nothing runs in it any more."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in (
            "Complete",
            "Failed",
            "SuccessCriteriaMet",
            "FailureTarget",
        ):
            return True
    return False


def stale_eval_runs(
    eval_runs: Sequence[Mapping[str, Any]], history: int, in_use: Iterable[str] = ()
) -> list[str]:
    """Names of EvalRuns beyond the newest `history` finished ones per gate. Runs still going
    and the ones in `in_use` (the current gate step's, the baselines) are never pruned, and they
    count toward `history` when they are among the newest: what is kept is the newest `history`
    and `in_use` together, not `history` more beside `in_use` (that grew the kept runs by one per
    revision kept, to `history` + `revisionHistoryLimit` + 1 per gate)."""
    keep = set(in_use)
    by_gate: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for run in eval_runs:
        by_gate[str((run.get("spec") or {}).get("gate") or "")].append(run)
    stale: list[str] = []
    for runs in by_gate.values():
        finished = [r for r in runs if (r.get("status") or {}).get("phase") in FINISHED_EVAL_PHASES]
        finished.sort(key=_created, reverse=True)
        stale += [_name(r) for r in finished[max(history, 0) :] if _name(r) not in keep]
    return sorted(stale)


def baselines(eval_runs: Sequence[Mapping[str, Any]], revisions: Iterable[str]) -> list[str]:
    """The newest Passed run per gate of each of `revisions` (what a promotion was judged on)."""
    newest: dict[tuple[str, str], Mapping[str, Any]] = {}
    wanted = set(revisions)
    for run in eval_runs:
        spec = run.get("spec") or {}
        revision = str(spec.get("revision") or "")
        if revision not in wanted or (run.get("status") or {}).get("phase") != "Passed":
            continue
        key = (str(spec.get("gate") or ""), revision)
        if key not in newest or _created(run) > _created(newest[key]):
            newest[key] = run
    return sorted(_name(r) for r in newest.values())


def prune(
    *,
    eval_runs: Sequence[Mapping[str, Any]],
    jobs: Sequence[Mapping[str, Any]],
    configmaps: Sequence[Mapping[str, Any]],
    kept_revisions: Iterable[str | None],
    loader_job: str | None,
    current_eval_run: str | None,
    eval_run_history: int = DEFAULT_EVAL_RUN_HISTORY,
) -> list[tuple[str, str]]:
    """(kind, name) of the Model's objects that nothing needs any more."""
    delete: list[tuple[str, str]] = []
    revisions = {r for r in kept_revisions if r}
    step_runs = [r for r in eval_runs if SCHEDULE_LABEL not in _labels(r)]
    keep = [current_eval_run] if current_eval_run else []
    keep += baselines(step_runs, revisions)
    for name in stale_eval_runs(step_runs, eval_run_history, keep):
        delete += eval_run_objects(name)
    for cm in configmaps:
        labels = _labels(cm)
        if labels.get(LABEL_COMPONENT) == PROMPTS_COMPONENT and labels.get(LABEL_REVISION) not in revisions:
            delete.append(("ConfigMap", _name(cm)))
    for job in jobs:
        if (
            _labels(job).get(LABEL_COMPONENT) == LOADER_COMPONENT
            and _name(job) != loader_job
            and job_finished(job)
        ):
            delete.append(("Job", _name(job)))
    return delete
