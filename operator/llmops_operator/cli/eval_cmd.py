"""`llmops-operator eval`: run an EvalGate on a laptop, in CI, or as the in-cluster Job.

Local mode reads YAML files (an EvalGate, its PromptVersion and, for a configMapRef
dataset, the ConfigMap or a JSONL/CSV file) and prints a table, `--json` or `--junit`;
`--html FILE` also writes a self-contained report page (every case, failing first).
Exit code: 0 Passed, 1 Failed, 2 Error.

In-cluster mode (`--evalrun NAMESPACE/NAME`) reads the EvalRun, its gate, prompt and
dataset through the API server, runs the same `run_eval`, keeps every case's outcome in a
ConfigMap owned by the EvalRun (`status.record` says which) and patches the EvalRun status.
It exits 0 once the result is recorded (whatever the verdict) so the Job is not retried
for a Failed evaluation; it exits 2 only when the status could not be written.

API keys come from the environment (LLMOPS_EVAL_API_KEY for the endpoints,
LLMOPS_JUDGE_API_KEY for judges), never from arguments. In the cluster, a judge's
`apiKeySecretRef` reaches the Job as its own secretKeyRef env (`eval_jobs.judge_key_env`), and
the Job signs its verdict with the run key from LLMOPS_VERDICT_KEY (see evals/verdict.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llmops_operator.api.evals import EvalGateSpec, EvalRunSpec
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.cli.subcommands import Subcommands
from llmops_operator.conditions import eval_run_conditions
from llmops_operator.evals import case_record, html_report, report, verdict
from llmops_operator.evals.job import judge_key_env, judge_key_refs
from llmops_operator.evals.runner import EvalResult, run_eval
from llmops_operator.kube.client import Kube, KubeError, NotFound

ENV_API_KEY = "LLMOPS_EVAL_API_KEY"
ENV_JUDGE_API_KEY = "LLMOPS_JUDGE_API_KEY"
TRANSIENT_STATUSES = frozenset({0, 429, 500, 502, 503, 504})
"""API answers worth another try: unreachable (0), throttled, or a server restarting."""
API_ATTEMPTS = 6
API_RETRY_SECONDS = 1.0
"""First wait between attempts, doubled each time: about half a minute of API outage in all."""


class InputError(ValueError):
    """The files or objects given cannot make an evaluation; reported as Error."""


def add_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "eval",
        help="run an EvalGate against an OpenAI-compatible endpoint (local/CI, or the in-cluster Job)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--endpoint", help="candidate base URL, e.g. http://localhost:8000/v1")
    parser.add_argument(
        "--gate", type=Path, help="YAML with an EvalGate (may also hold PromptVersion/ConfigMap)"
    )
    parser.add_argument(
        "--prompt", type=Path, action="append", default=[], help="PromptVersion YAML (repeatable)"
    )
    parser.add_argument(
        "--dataset",
        type=Path,
        help="JSONL or CSV file, or YAML with the ConfigMap, for a configMapRef dataset",
    )
    parser.add_argument("--model", help="model name sent in requests (default: the endpoint's first model)")
    parser.add_argument("--baseline-endpoint", help="stable endpoint to compare against")
    parser.add_argument(
        "--judge",
        action="append",
        default=[],
        metavar="MODEL=URL",
        help="endpoint of a judge Model (repeatable)",
    )
    parser.add_argument("--revision", help="revision label recorded in the result")
    parser.add_argument(
        "--json", action="store_true", help="print the EvalRun status as JSON instead of a table"
    )
    parser.add_argument("--junit", type=Path, help="also write JUnit XML to this file")
    parser.add_argument("--html", type=Path, help="also write the HTML report to this file")
    parser.add_argument("--evalrun", metavar="NAMESPACE/NAME", help="in-cluster mode: evaluate this EvalRun")
    return parser


def run(args: argparse.Namespace) -> int:
    if args.evalrun:
        return run_in_cluster(args.evalrun)
    started = datetime.now(UTC)
    try:
        if not args.endpoint or not args.gate:
            raise InputError("--endpoint and --gate are required (or --evalrun NAMESPACE/NAME in a cluster)")
        dataset_is_yaml = args.dataset is not None and args.dataset.suffix in (".yaml", ".yml")
        docs = load_documents([args.gate, *args.prompt, *([args.dataset] if dataset_is_yaml else [])])
        gate = find_gate(docs)
        prompt = find_prompt(docs, gate.prompt.name, gate.prompt.version)
        if args.dataset is not None and not dataset_is_yaml:
            dataset_text = args.dataset.read_text(encoding="utf-8")
        else:
            dataset_text = find_dataset_text(docs, gate)
        judges = parse_judges(args.judge)
    except (InputError, OSError, yaml.YAMLError, ValidationError) as exc:
        result = EvalResult("Error", _one_line(exc), started, datetime.now(UTC), revision=args.revision)
    else:
        result = run_eval(
            gate,
            prompt,
            args.endpoint,
            args.model,
            args.baseline_endpoint,
            dataset_text=dataset_text,
            revision=args.revision,
            judge_endpoints=judges,
            api_key=os.environ.get(ENV_API_KEY),
            judge_api_key=os.environ.get(ENV_JUDGE_API_KEY),
        )
    sys.stdout.write(report.render_json(result) if args.json else report.render_table(result))
    if args.junit:
        args.junit.write_text(report.render_junit(result), encoding="utf-8")
    if args.html:
        record = case_record.build(result)
        args.html.write_text(html_report.render(record, f"eval {args.gate.name}"), encoding="utf-8")
    return result.exit_code


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        return f"invalid {exc.title}: {where}: {first['msg']}"
    return str(exc)


def load_documents(paths: list[Path]) -> list[dict[str, Any]]:
    """All YAML documents of the given files, in order."""
    docs: list[dict[str, Any]] = []
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict):
                docs.append(doc)
            elif doc is not None:
                raise InputError(f"{path}: every YAML document must be a mapping")
    return docs


def find_gate(docs: list[dict[str, Any]]) -> EvalGateSpec:
    """The first EvalGate, or a bare spec (a document with `assertions`)."""
    for doc in docs:
        if doc.get("kind") == "EvalGate":
            return EvalGateSpec.model_validate(doc.get("spec") or {})
        if "kind" not in doc and "assertions" in doc:
            return EvalGateSpec.model_validate(doc)
    raise InputError("no EvalGate found in --gate")


def find_prompt(docs: list[dict[str, Any]], name: str, version: int | None) -> PromptVersionSpec:
    """The PromptVersion of `name` at `version`, or its highest version when unset."""
    candidates = []
    for doc in docs:
        if doc.get("kind") == "PromptVersion":
            candidates.append(PromptVersionSpec.model_validate(doc.get("spec") or {}))
        elif "kind" not in doc and "messages" in doc:
            candidates.append(PromptVersionSpec.model_validate(doc))
    return choose_prompt(candidates, name, version)


def choose_prompt(candidates: list[PromptVersionSpec], name: str, version: int | None) -> PromptVersionSpec:
    matching = [p for p in candidates if p.prompt == name and (version is None or p.version == version)]
    if not matching:
        wanted = f"{name!r} version {version}" if version is not None else f"{name!r}"
        raise InputError(f"no PromptVersion for prompt {wanted}; pass it with --prompt")
    return max(matching, key=lambda p: p.version)


def find_dataset_text(docs: list[dict[str, Any]], gate: EvalGateSpec) -> str | None:
    """For a configMapRef dataset, the key's value from a ConfigMap among the documents."""
    ref = gate.dataset.config_map_ref
    if ref is None:
        return None
    for doc in docs:
        if doc.get("kind") == "ConfigMap" and (doc.get("metadata") or {}).get("name") == ref.name:
            data = doc.get("data") or {}
            if ref.key not in data:
                raise InputError(f"ConfigMap {ref.name!r} has no key {ref.key!r}")
            return str(data[ref.key])
    raise InputError(f"dataset ConfigMap {ref.name!r} not found: add it to --gate or pass --dataset FILE")


def parse_judges(pairs: list[str]) -> dict[str, str]:
    judges: dict[str, str] = {}
    for pair in pairs:
        name, sep, url = pair.partition("=")
        if not sep or not name or not url:
            raise InputError(f"--judge wants MODEL=URL, got {pair!r}")
        judges[name] = url
    return judges


# In-cluster mode: the Kubernetes I/O, kept small and at the bottom.


def run_in_cluster(ref: str, kube: Any = None) -> int:
    """Evaluate one EvalRun and record the result in its status."""
    namespace, _, name = ref.partition("/")
    if not namespace or not name:
        sys.stderr.write(f"--evalrun wants NAMESPACE/NAME, got {ref!r}\n")
        return 2
    kube = _Patient(kube or Kube())
    started = datetime.now(UTC)
    try:
        eval_run = kube.get("EvalRun", namespace, name)
    except (KubeError, NotFound) as exc:
        # nothing is written: a result the run's UID cannot sign would read as forged; the Job's
        # retry runs it again, and a Job that fails is reported by the operator
        sys.stderr.write(f"cannot read EvalRun {namespace}/{name}: {_one_line(exc)}\n")
        return 2
    revision = None
    uid = ""
    try:
        uid = str((eval_run.get("metadata") or {}).get("uid") or "")
        spec = EvalRunSpec.model_validate(eval_run.get("spec") or {})
        revision = spec.revision
        _patch_status(
            kube, namespace, name, {"phase": "Running", "startedAt": _iso(started), "revision": revision}
        )
        gate, prompt, dataset_text, judges = read_inputs(kube, namespace, spec)
        judge_keys = {
            (ref_name, ref_key): os.environ[judge_key_env(ref_name, ref_key)]
            for ref_name, ref_key in judge_key_refs({"spec": gate.to_wire()})
            if judge_key_env(ref_name, ref_key) in os.environ
        }
        result = run_eval(
            gate,
            prompt,
            spec.endpoint,
            spec.served_model_name or spec.model,
            spec.baseline_endpoint,
            dataset_text=dataset_text,
            revision=revision,
            judge_endpoints=judges,
            api_key=os.environ.get(ENV_API_KEY),
            judge_api_key=os.environ.get(ENV_JUDGE_API_KEY),
            judge_api_keys=judge_keys,
        )
    except Exception as exc:  # anything unexpected is recorded as Error, never lost
        result = EvalResult("Error", _one_line(exc), started, datetime.now(UTC), revision=revision)
    sys.stdout.write(report.render_table(result))
    status = result.to_status()
    status["record"] = keep_record(kube, eval_run, result)
    run_key = os.environ.get(verdict.KEY_ENV)
    if run_key and uid:
        status["signature"] = verdict.sign(run_key, uid, status)
    try:
        _patch_status(kube, namespace, name, status)
    except Exception as exc:
        sys.stderr.write(f"cannot write EvalRun {namespace}/{name} status: {exc}\n")
        return 2
    return 0


class _Patient:
    """A Kube whose calls are retried through a short API outage (a restarting API server), so
    an eval Job neither records the outage as the model's Error nor loses its result."""

    def __init__(self, kube: Any) -> None:
        self._kube = kube

    def __getattr__(self, name: str) -> Any:
        call = getattr(self._kube, name)
        return self._retried(call) if callable(call) else call

    @staticmethod
    def _retried(call: Callable[..., Any]) -> Callable[..., Any]:
        def retried(*args: Any, **kwargs: Any) -> Any:
            wait = API_RETRY_SECONDS
            for _ in range(API_ATTEMPTS - 1):
                try:
                    return call(*args, **kwargs)
                except KubeError as exc:
                    if exc.status not in TRANSIENT_STATUSES:
                        raise
                    sys.stderr.write(f"API call failed ({_one_line(exc)}); retrying in {wait:g}s\n")
                time.sleep(wait)
                wait *= 2
            return call(*args, **kwargs)

        return retried


def keep_record(kube: Any, eval_run: dict[str, Any], result: EvalResult) -> dict[str, Any] | None:
    """Every case's outcome in a ConfigMap owned by the EvalRun; None (status only) when it fails."""
    record, data = case_record.build_bounded(result)
    try:
        kube.apply(case_record.config_map(eval_run, data))
    except Exception as exc:  # the verdict still gets recorded; the report falls back to status
        sys.stderr.write(f"cannot keep the case record: {exc}\n")
        return None
    return case_record.reference(eval_run["metadata"]["name"], record)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def read_inputs(
    kube: Any, namespace: str, spec: EvalRunSpec
) -> tuple[EvalGateSpec, PromptVersionSpec, str | None, dict[str, str]]:
    """The gate, the prompt version, the dataset text and judge endpoints, from the API server."""
    try:
        gate = EvalGateSpec.model_validate(kube.get("EvalGate", namespace, spec.gate).get("spec") or {})
    except NotFound as exc:
        raise InputError(f"EvalGate {spec.gate!r} not found") from exc
    version = spec.prompt_version or gate.prompt.version
    candidates = [
        PromptVersionSpec.model_validate(pv.get("spec") or {})
        for pv in kube.list("PromptVersion", namespace)
        if (pv.get("spec") or {}).get("prompt") == gate.prompt.name
    ]
    prompt = choose_prompt(candidates, gate.prompt.name, version)
    dataset_text = None
    ref = gate.dataset.config_map_ref
    if ref is not None:
        try:
            data = kube.get("ConfigMap", namespace, ref.name).get("data") or {}
        except NotFound as exc:
            raise InputError(f"dataset ConfigMap {ref.name!r} not found") from exc
        if ref.key not in data:
            raise InputError(f"dataset ConfigMap {ref.name!r} has no key {ref.key!r}")
        dataset_text = data[ref.key]
    judges: dict[str, str] = {}
    for assertion in gate.assertions:
        judge = assertion.judge
        if judge is not None and judge.model and judge.model not in judges:
            model = kube.get_or_none("Model", namespace, judge.model) or {}
            endpoint = (model.get("status") or {}).get("endpoint")
            if endpoint:
                judges[judge.model] = endpoint
    return gate, prompt, dataset_text, judges


def _patch_status(kube: Any, namespace: str, name: str, status: dict[str, Any]) -> None:
    """Every write carries the conditions of the phase it records (for kstatus and Argo CD)."""
    conditions = eval_run_conditions(status["phase"], status.get("message", ""), datetime.now(UTC))
    status = {
        **status,
        "conditions": [c.model_dump(by_alias=True, exclude_none=True, mode="json") for c in conditions],
    }
    kube.patch_status("EvalRun", namespace, name, status)
