"""`llmops-operator plan -f model.yaml`: what a Model becomes, without a cluster.

Runs the same pure pass the operator runs (`model_plan.plan_model`) over the Model in the file,
with the PromptVersions and EvalGates found next to it, and prints the objects it would apply
and the conditions it would set. Nothing is read from or written to a cluster: referenced
Secrets are assumed to exist, no GPU inventory is known unless `--gpus` names some, and it is
the first pass (nothing deployed yet) unless `--cache-loaded` says the weight cache is full.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from llmops_operator import resources
from llmops_operator.api.model import ModelSpec
from llmops_operator.cli.eval_cmd import InputError, load_documents
from llmops_operator.cli.subcommands import Subcommands
from llmops_operator.gpu.planner import GpuNodeInfo
from llmops_operator.model_plan import ModelPlan, SecretCheck, World, plan_model

OPERATOR_IMAGE = "llmops-operator:plan"


def add_parser(subparsers: Subcommands) -> argparse.ArgumentParser:
    plan = subparsers.add_parser("plan", help="print what a Model becomes (objects, conditions); no cluster")
    plan.add_argument(
        "-f",
        "--file",
        type=Path,
        action="append",
        required=True,
        help="YAML with the Model (and any PromptVersions and EvalGates it binds); repeatable",
    )
    plan.add_argument(
        "--gpus",
        action="append",
        default=[],
        metavar="PRODUCT=COUNT",
        help="a GPU node to plan against, e.g. NVIDIA-H100-80GB-HBM3=8 (repeatable)",
    )
    plan.add_argument("--cache-loaded", action="store_true", help="the weight cache loader Job has succeeded")
    plan.add_argument("-o", "--output", choices=["summary", "yaml"], default="summary")
    return plan


def world_from(docs: list[dict[str, Any]], gpus: list[str], cache_loaded: bool, now: datetime) -> World:
    """The World of a first pass over the Model in `docs`."""
    models = [d for d in docs if d.get("kind") == "Model"]
    if len(models) != 1:
        raise InputError(f"expected exactly one Model in the files, found {len(models)}")
    meta = models[0].get("metadata") or {}
    if not meta.get("name"):
        raise InputError("the Model has no metadata.name")
    namespace = meta.get("namespace") or "default"
    model = {**models[0], "metadata": {**meta, "namespace": namespace, "uid": "", "generation": 1}}
    of_kind = [
        {**d, "metadata": {"namespace": namespace, **(d.get("metadata") or {})}}
        for d in docs
        if d.get("kind") in ("PromptVersion", "EvalGate")
    ]
    jobs = []
    if cache_loaded:
        try:
            spec = ModelSpec.model_validate(model.get("spec") or {})
        except ValidationError:
            spec = None  # the plan says what is wrong with it
        if spec is not None:
            loader = resources.cache_loader_job(resources.ModelRef.from_obj(model), spec, OPERATOR_IMAGE)
            jobs.append({**loader, "status": {"succeeded": 1}})
    return World(
        model=model,
        now=now,
        operator_image=OPERATOR_IMAGE,
        jobs=jobs,
        prompt_versions=[d for d in of_kind if d["kind"] == "PromptVersion"],
        eval_gates=[d for d in of_kind if d["kind"] == "EvalGate"],
        secret=SecretCheck(exists=True, has_key=True),
        inventory=[_node(i, text) for i, text in enumerate(gpus)] or None,
    )


def _node(index: int, text: str) -> GpuNodeInfo:
    product, _, count = text.partition("=")
    if not product or not count.isdigit():
        raise InputError(f"--gpus {text!r}: expected PRODUCT=COUNT, e.g. NVIDIA-L4=4")
    return GpuNodeInfo(name=f"node-{index}", product=product, gpus=int(count))


def summary(plan: ModelPlan) -> str:
    """Objects, conditions and Events of a plan, one line each."""
    lines = [f"phase: {plan.status.get('phase')}"]
    lines.append("objects:")
    for obj in plan.apply:
        detail = f" replicas={obj['spec']['replicas']}" if obj["kind"] == "Deployment" else ""
        lines.append(f"  {obj['kind']:<22} {obj['metadata']['name']}{detail}")
    lines.append("conditions:")
    for c in plan.status.get("conditions", []):
        lines.append(f"  {c['type']:<18} {c['status']:<8} {c.get('reason', ''):<22} {c.get('message', '')}")
    if plan.events:
        lines.append("events:")
        lines.extend(f"  {type_:<8} {reason:<28} {message}" for type_, reason, message in plan.events)
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    try:
        world = world_from(load_documents(args.file), args.gpus, args.cache_loaded, datetime.now(UTC))
        plan = plan_model(world)
    except (InputError, OSError, yaml.YAMLError) as exc:
        print(f"error: {exc}")
        return 2
    if args.output == "yaml":
        print(yaml.safe_dump({"apply": plan.apply, "status": plan.status}, sort_keys=False), end="")
    else:
        print(summary(plan))
    return 0 if plan.status.get("phase") != "Failed" else 1
