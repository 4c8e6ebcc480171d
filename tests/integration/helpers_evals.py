"""Manifests and look-ups for the PromptVersion / EvalGate integration tests.

The gate is built so the OpenAI stub decides its verdict: the stub's `good` mode answers each
case's question with the case's reference answer (from `ANSWERS`), which passes every assertion;
`bad` answers rudely, which fails both; `error` answers HTTP 500, which leaves the run no case
it could judge (Error).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers_model import ROOT, Kubectl, condition

from llmops_operator import prompts, revisions
from llmops_operator.api.model import ModelSpec
from llmops_operator.api.prompt import PromptVersionSpec
from polling import wait_for

API_VERSION = "llmops.dev/v1alpha1"
PROMPT = "support-bot"
GATE = "support-quality"
MODEL = "bot"
"""The Model of the gate tests (`wait_model`'s default)."""
READY_TIMEOUT = 60.0
H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
EVAL_JOB_LOGS = ROOT / ".cluster" / "logs" / "eval-jobs"

CASES: list[dict[str, Any]] = [
    {
        "id": "refund",
        "vars": {"company": "Acme", "question": "Can I get a refund for my kettle?"},
        "expected": "Yes, you can get a refund within 30 days of purchase.",
    },
    {
        "id": "hours",
        "vars": {"company": "Acme", "question": "What are your opening hours?"},
        "expected": "Our support team is available Monday to Friday, 9:00 to 17:00.",
    },
    {
        "id": "shipping",
        "vars": {"company": "Acme", "question": "How long does shipping take?"},
        "expected": "Shipping usually takes 3 to 5 working days.",
    },
]
ANSWERS: dict[str, str] = {
    "refund": CASES[0]["expected"],
    "opening hours": CASES[1]["expected"],
    "shipping": CASES[2]["expected"],
}
"""The stub's table in `good` mode: question substring -> the case's reference answer."""
FAILING_ASSERTIONS = ("no-rudeness", "close-to-reference")
"""What the stub's `bad` answer fails."""


def prompt_spec(
    version: int, system: str | None = None, variables: list[dict[str, Any]] | None = None
) -> dict:
    """A `support-bot` PromptVersion spec; each version words its system message differently."""
    return {
        "prompt": PROMPT,
        "version": version,
        "description": f"version {version}",
        "messages": [
            {
                "role": "system",
                "content": system
                or f"You are {{{{ company }}}}'s support assistant (prompt v{version}). Answer briefly.",
            },
            {"role": "user", "content": "{{ question }}"},
        ],
        "variables": variables
        if variables is not None
        else [
            {"name": "company", "required": True},
            {"name": "question", "required": True},
        ],
        "parameters": {"temperature": 0.0, "maxTokens": 128},
    }


def prompt_version(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "PromptVersion", "metadata": {"name": name}, "spec": spec}


def gate_manifest(name: str = GATE, **overrides: Any) -> dict[str, Any]:
    """An EvalGate with inline cases, fast to run against the stub (no retries, short timeouts)."""
    spec: dict[str, Any] = {
        "prompt": {"name": PROMPT},
        "dataset": {"inline": CASES},
        "assertions": [
            {
                "name": "no-rudeness",
                "type": "regex",
                "value": "figure it out yourself|don't care",
                "caseInsensitive": True,
                "negate": True,
            },
            {"name": "close-to-reference", "type": "rougeL", "threshold": 0.5},
        ],
        "passCriteria": {"passRate": 1.0, "maxRegressionVsBaseline": 0.1},
        "concurrency": 2,
        "timeoutSeconds": 60,
        "requestTimeoutSeconds": 5,
        "retries": 0,
        "seed": 7,
    }
    spec.update(overrides)
    return {"apiVersion": API_VERSION, "kind": "EvalGate", "metadata": {"name": name}, "spec": spec}


def gated_model_spec(
    prompt_version_number: int, tag: str, replicas: int = 1, strategy: str = "Canary"
) -> dict[str, Any]:
    """A vLLM Model binding support-bot, rolled out through the gate (no analysis metrics, so
    the rollout depends on the gate alone, not on Prometheus). `tag` goes into the source URI so
    each test's revisions (and so its stub routes) are its own."""
    rollout: dict[str, Any] = {"strategy": strategy}
    if strategy == "Canary":
        rollout["canary"] = {
            "steps": [
                {"evalGate": {"name": GATE}},
                {"setWeight": 50},
                {"pause": {"duration": "2s"}},
                {"setWeight": 100},
            ]
        }
    return {
        "source": {"uri": f"hf://org/tiny-llm-{tag}"},
        "engine": {"type": "vllm", "args": ["--max-num-seqs=8"]},
        "resources": {"gpus": 1, "gpuProducts": [H100, A100]},
        "prompts": [{"name": PROMPT, "version": prompt_version_number}],
        "replicas": replicas,
        "rollout": rollout,
    }


def expected_revision(model_spec: dict[str, Any], bound: list[dict[str, Any]]) -> str:
    """The revision hash the operator computes for this spec with these PromptVersion specs bound,
    so a stub route can be configured before the gate's EvalRun starts."""
    specs = [PromptVersionSpec.model_validate(s) for s in bound]
    bundle_hash = prompts.bundle(specs)[1] if specs else None
    return revisions.revision_hash(ModelSpec.model_validate(model_spec), bundle_hash)


def eval_runs(kube: Kubectl, namespace: str) -> list[dict[str, Any]]:
    return kube.items("evalruns", namespace)


def eval_run_for(kube: Kubectl, namespace: str, revision: str) -> dict[str, Any] | None:
    """The gate's EvalRun of one candidate revision (by its spec), if created."""
    return next((r for r in eval_runs(kube, namespace) if r["spec"].get("revision") == revision), None)


def events_of(kube: Kubectl, namespace: str, kind: str, name: str) -> list[tuple[str, str, str]]:
    return [
        (e.get("type", ""), e.get("reason", ""), e.get("message", ""))
        for e in kube.items("events", namespace)
        if (e.get("involvedObject") or {}).get("kind") == kind
        and (e.get("involvedObject") or {}).get("name") == name
    ]


def revision_record(model: dict[str, Any], revision: str) -> dict[str, Any]:
    records = (model.get("status") or {}).get("revisions") or []
    return next((dict(r) for r in records if r.get("revision") == revision), {})


def diagnosis(kube: Kubectl, namespace: str, model: str, operator_log: str) -> str:
    """What to read when a gate test times out: Model status, EvalRuns, eval Job logs, operator log."""
    current = kube.get("model", namespace, model) or {}
    lines = [f"Model status: {current.get('status')}"]
    for run in eval_runs(kube, namespace):
        lines.append(f"EvalRun {run['metadata']['name']}: spec={run['spec']} status={run.get('status')}")
        log = EVAL_JOB_LOGS / f"{run['metadata']['name']}.log"
        if log.exists():
            lines.append(f"eval Job log {log}:\n{_tail(log)}")
    lines.append(f"operator log:\n{operator_log}")
    return "\n".join(lines)


def wait_model(
    kube: Kubectl,
    namespace: str,
    operator: Any,
    what: str,
    check: Callable[[dict[str, Any]], Any],
    timeout: float = READY_TIMEOUT,
    model: str = MODEL,
) -> dict[str, Any]:
    """Poll the Model until `check(model)` holds; on timeout say everything that helps (its
    status, Events, EvalRuns and the operator's log)."""

    def probe() -> dict[str, Any] | None:
        obj = kube.get("model", namespace, model)
        return obj if obj and check(obj) else None

    try:
        return wait_for(probe, timeout, interval=0.5, message=what)  # type: ignore[no-any-return]
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{diagnosis(kube, namespace, model, operator.log_tail(80))}") from None


RUN = "run-1"
"""The EvalRun `evaluate_in_cluster` creates."""


def evaluate_in_cluster(
    kube: Kubectl,
    namespace: str,
    prompt: dict[str, Any],
    gate: tuple[str, dict[str, Any]],
    endpoint: str,
    model: str = MODEL,
    timeout: float = 300,
) -> dict[str, Any]:
    """One in-cluster evaluation, as the operator sets it up: the PromptVersion
    `<prompt>-v<version>` of spec `prompt`, the EvalGate (name, spec without `prompt`) bound to
    it, and EvalRun `run-1` against `endpoint`, evaluated by the eval Job's command. Returns the
    EvalRun, its status written (the Job's process has exited)."""
    name, spec = gate
    kube.apply(prompt_version(f"{prompt['prompt']}-v{prompt['version']}", prompt), namespace)
    gate_spec = {"prompt": {"name": prompt["prompt"]}, **spec}
    kube.apply(
        {"apiVersion": API_VERSION, "kind": "EvalGate", "metadata": {"name": name}, "spec": gate_spec},
        namespace,
    )
    kube.apply(eval_run(namespace, RUN, name, endpoint, model), namespace)
    run_eval_job(Path(kube.kubeconfig), namespace, RUN, timeout)
    run = kube.get("evalrun", namespace, RUN)
    assert run is not None, f"EvalRun {namespace}/{RUN} is gone"
    return run


def eval_run(namespace: str, name: str, gate: str, endpoint: str, model: str = "bot") -> dict[str, Any]:
    """An EvalRun of `gate` against `endpoint`, as the operator would create it (revision r1)."""
    return {
        "apiVersion": API_VERSION,
        "kind": "EvalRun",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"gate": gate, "model": model, "revision": "r1", "endpoint": endpoint},
    }


def run_eval_job(kubeconfig: Path, namespace: str, name: str, timeout: float = 300) -> None:
    """What the eval Job runs, `llmops-operator eval --evalrun NS/NAME`, here as a local process."""
    job = subprocess.run(
        [sys.executable, "-m", "llmops_operator.cli.main", "eval", "--evalrun", f"{namespace}/{name}"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)}, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert job.returncode == 0, job.stdout + job.stderr


def kubectl_llmops_report(kubeconfig: Path, namespace: str, name: str, out: Path) -> str:
    """`kubectl llmops report NAME -o OUT` (the kubectl plugin); returns what it printed."""
    plugin = Path(sys.executable).with_name("kubectl-llmops")
    shown = subprocess.run(
        [str(plugin), "-n", namespace, "report", name, "-o", str(out)],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    return shown.stdout


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


__all__ = [
    "ANSWERS",
    "CASES",
    "FAILING_ASSERTIONS",
    "GATE",
    "PROMPT",
    "condition",
    "diagnosis",
    "eval_run",
    "eval_run_for",
    "eval_runs",
    "evaluate_in_cluster",
    "events_of",
    "expected_revision",
    "gate_manifest",
    "gated_model_spec",
    "kubectl_llmops_report",
    "prompt_spec",
    "prompt_version",
    "revision_record",
    "run_eval_job",
    "wait_model",
]
