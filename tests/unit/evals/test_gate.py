"""The newest EvalRun per gate has one definition (`evals.gate.newest_runs`): the operator's
metrics and EvalGate `status.lastRun` both read it."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.evals.gate import last_run, newest_runs


def run(name: str, gate: str | None, created: str | None, namespace: str = "ns") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace}
    if created is not None:
        meta["creationTimestamp"] = created
    return {"metadata": meta, "spec": {"gate": gate} if gate else {}}


def test_newest_run_per_gate_is_by_creation_time_then_name() -> None:
    runs = [
        run("b", "g1", "2026-01-01T00:00:02Z"),
        run("a", "g1", "2026-01-01T00:00:02Z"),
        run("z", "g1", "2026-01-01T00:00:01Z"),
        run("c", "g2", None),
        run("d", None, "2026-01-01T00:00:09Z"),
    ]
    newest = newest_runs(runs)
    assert {g: r["metadata"]["name"] for g, r in newest.items()} == {"g1": "b", "g2": "c"}


def test_last_run_is_the_newest_of_the_gate_in_its_own_namespace() -> None:
    gate = {"metadata": {"name": "g1", "namespace": "ns"}}
    runs = [run("old", "g1", "2026-01-01T00:00:01Z"), run("other-ns", "g1", "2026-01-01T00:00:05Z", "x")]
    assert last_run(gate, runs) == "old"
    assert last_run(gate, [run("elsewhere", "g2", "2026-01-01T00:00:05Z")]) is None


names = st.text("abc", min_size=1, max_size=3)
times = st.none() | st.sampled_from(["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"])


@given(st.lists(st.tuples(names, st.sampled_from(["g1", "g2"]), times), max_size=8, unique_by=lambda t: t[0]))
def test_newest_run_of_a_gate_is_its_maximum(specs: list[tuple[str, str, str | None]]) -> None:
    runs = [run(n, g, t) for n, g, t in specs]
    for gate, newest in newest_runs(runs).items():
        mine = [r for r in runs if r["spec"].get("gate") == gate]
        key = [((r["metadata"].get("creationTimestamp") or ""), r["metadata"]["name"]) for r in mine]
        assert (newest["metadata"].get("creationTimestamp") or "", newest["metadata"]["name"]) == max(key)
