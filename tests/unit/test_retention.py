"""What is kept of a Model's past (EvalRuns per gate, prompt ConfigMaps, loader Jobs)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.evals.job import eval_run_objects
from llmops_operator.monitoring.quality import SCHEDULE_LABEL
from llmops_operator.retention import prune, stale_eval_runs


def run(
    name: str, gate: str, minute: int, phase: str | None = "Passed", revision: str = "r0"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": f"2026-01-01T00:{minute:02d}:00Z"},
        "spec": {"gate": gate, "revision": revision},
        "status": {"phase": phase} if phase else {},
    }


@given(
    runs=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["Passed", "Failed", "Running", None])),
        max_size=20,
    ),
    history=st.integers(0, 5),
)
def test_keeps_the_newest_finished_runs_per_gate_and_every_run_still_going(
    runs: list[tuple[str, str | None]], history: int
) -> None:
    objects = [run(f"r{i}", gate, i, phase) for i, (gate, phase) in enumerate(runs)]
    stale = set(stale_eval_runs(objects, history, in_use=["r0"]))
    assert "r0" not in stale
    for gate in ("a", "b"):
        finished = [
            o
            for o in objects
            if o["spec"]["gate"] == gate and o["status"].get("phase") in ("Passed", "Failed")
        ]
        kept = [o["metadata"]["name"] for o in finished if o["metadata"]["name"] not in stale]
        newest = sorted(finished, key=lambda o: o["metadata"]["creationTimestamp"], reverse=True)
        assert set(kept) >= {o["metadata"]["name"] for o in newest[:history]}
        assert len([k for k in kept if k != "r0"]) <= history
    for o in objects:
        if o["status"].get("phase") not in ("Passed", "Failed"):
            assert o["metadata"]["name"] not in stale


def labelled(kind: str, name: str, component: str, revision: str | None = None, done: bool = False) -> dict:
    labels = {"llmops.dev/component": component}
    if revision:
        labels["llmops.dev/revision"] = revision
    obj: dict[str, Any] = {"kind": kind, "metadata": {"name": name, "labels": labels}}
    if done:
        obj["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    return obj


def test_prune_removes_pruned_revisions_prompts_old_loader_jobs_and_stale_runs_with_their_jobs() -> None:
    runs = [run(f"g-{i}", "g", i) for i in range(4)]
    jobs = [
        labelled("Job", "g-0", "eval", "r1", done=True),
        labelled("Job", "chat-cache-old", "cache-loader", done=True),
        labelled("Job", "chat-cache-new", "cache-loader", done=True),
        labelled("Job", "chat-cache-running", "cache-loader"),
    ]
    configmaps = [
        labelled("ConfigMap", "chat-r1-prompts", "prompts", "r1"),
        labelled("ConfigMap", "chat-r2-prompts", "prompts", "r2"),
        labelled("ConfigMap", "other", "engine-config", "r1"),
    ]
    out = prune(
        eval_runs=runs,
        jobs=jobs,
        configmaps=configmaps,
        kept_revisions=["r2", None],
        loader_job="chat-cache-new",
        current_eval_run=None,
        eval_run_history=2,
    )
    assert sorted(out) == sorted(
        [
            *eval_run_objects("g-0"),  # the run, its Job and its identity (ServiceAccount, ...)
            *eval_run_objects("g-1"),
            ("ConfigMap", "chat-r1-prompts"),
            ("Job", "chat-cache-old"),
        ]
    )


def test_prune_keeps_scheduled_runs_and_the_newest_passed_run_of_a_kept_revision() -> None:
    """Scheduled runs have their own historyLimit; the Passed run a kept revision was promoted
    on is quality monitoring's baseline, however many runs came after it."""
    scheduled = run("sched-0", "g", 0)
    scheduled["metadata"]["labels"] = {SCHEDULE_LABEL: "g"}
    runs = [
        scheduled,
        run("g-0", "g", 1, revision="stable"),
        *(run(f"g-{i}", "g", i, "Failed", revision="other") for i in range(2, 6)),
    ]
    out = prune(
        eval_runs=runs,
        jobs=[],
        configmaps=[],
        kept_revisions=["stable"],
        loader_job=None,
        current_eval_run=None,
        eval_run_history=2,
    )
    deleted = {name for kind, name in out if kind == "EvalRun"}
    assert deleted == {"g-2", "g-3"}


@given(history=st.integers(0, 6), revision_limit=st.integers(0, 6), rollouts=st.integers(1, 40))
def test_what_a_model_keeps_stays_bounded_however_many_rollouts(
    history: int, revision_limit: int, rollouts: int
) -> None:
    """Rollout after rollout, each a new revision promoted on a Passed gate run with its prompt
    ConfigMap: what retention leaves is bounded by the settings, never by the number of
    rollouts (the soak benchmark checks the same on the dev cluster)."""
    runs: list[dict[str, Any]] = []
    configmaps: list[dict[str, Any]] = []
    history_revisions: list[str] = []  # status.revisions, newest first, as prune_history keeps it
    for i in range(rollouts):
        revision = f"r{i:02d}"
        runs.append(run(f"g-{i:02d}", "g", i, revision=revision))
        configmaps.append(labelled("ConfigMap", f"m-{revision}-prompts", "prompts", revision))
        history_revisions = [revision, *history_revisions][: revision_limit + 1]
        deleted = set(
            prune(
                eval_runs=runs,
                jobs=[],
                configmaps=configmaps,
                kept_revisions=[*history_revisions, revision],
                loader_job=None,
                current_eval_run=None,
                eval_run_history=history,
            )
        )
        runs = [r for r in runs if ("EvalRun", r["metadata"]["name"]) not in deleted]
        configmaps = [c for c in configmaps if ("ConfigMap", c["metadata"]["name"]) not in deleted]
        assert len(runs) <= max(history, revision_limit + 1)
        assert len(configmaps) <= revision_limit + 1
    newest = [f"g-{i:02d}" for i in range(rollouts)][-max(history, 1) :]
    assert {r["metadata"]["name"] for r in runs} >= set(newest[-history:] if history else [])
