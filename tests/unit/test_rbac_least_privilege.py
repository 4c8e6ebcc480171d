"""The operator's ClusterRole holds only verbs the code uses, derived from the code itself.

Derivation, by reading the package's syntax trees (no hand-kept table of what the code does):
- kopf watches (`kopf.on.event(group, version, plural)` and `_child_handler(kind, ...)`) and our
  own (`watch_kind(kind, ...)`): list, watch;
- `Kube` calls with a literal kind (`get`, `get_or_none`, `list`, `patch`, `patch_status`,
  `delete`, `create`, `post_event`): that verb on that resource (status: `<plural>/status`);
- object literals the operator builds (`{"apiVersion": ..., "kind": "X", "metadata": ...}`) are
  server-side applied: create and patch (patch only for kinds in `APPLIED_WHEN_PRESENT`, unless
  the literal's spec names its own `parentRefs`: a route the operator creates);
- `plan.delete.append(("Kind", name))` (or a list named `delete`), and every kind an eval run
  leaves behind (`eval_run_objects`, deleted by retention and scheduled-run history): delete;
  a `*status*` helper called with a literal kind: patch on `<plural>/status`;
- kinds in `WRITTEN_WHOLE` are created and replaced (PUT on the resourceVersion read), not applied;
- everything the per-run eval Role and the endpoint pickers' Role grant (Kubernetes lets the
  operator grant only what it holds).
Framework needs kopf has without a line of ours are listed in `FRAMEWORK`, each with its reason.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import yaml

from llmops_operator.api import common
from llmops_operator.evals import job as eval_jobs
from llmops_operator.kube import client
from llmops_operator.rollout.traffic import inference_pool

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "llmops_operator"
CLUSTERROLE = ROOT / "manifests" / "base" / "clusterrole.yaml"
NOT_OPERATOR = ("cli/",)
"""The CLI runs as the user (kubectl plugin) or as the eval Job's own ServiceAccount."""

CONSTANTS = (common, inference_pool)
"""Modules whose string constants name groups and kinds in the code (`GROUP`, `POOL_KIND`)."""
Permission = tuple[str, str, str]
CALL_VERBS = {
    "get": "get",
    "get_or_none": "get",
    "list": "list",
    "patch": "patch",
    "delete": "delete",
    "create": "create",
    "patch_status": "patch",
}
APPLIED_WHEN_PRESENT = {"HTTPRoute"}
"""The user owns an HTTPRoute named for weights; the operator only re-applies weights on the route
it just read. The one HTTPRoute it creates is inferencePool routing's own, in the Model's
namespace and owned by it, built with its `parentRefs` (rollout/traffic/inference_pool.py)."""
WRITTEN_WHOLE = {"Lease"}
"""Leader election writes its Lease whole (create, then update guarded by resourceVersion)."""
FRAMEWORK: set[Permission] = {
    # kopf discovers served resources by watching CRDs
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    # kopf posts its own Events (posting.level) through core/v1
    ("", "events", "create"),
}


def _group_plural(kind: str) -> tuple[str, str]:
    prefix, plural = client._RESOURCES[kind]
    group = "" if prefix == "/api/v1" else prefix.split("/")[2]
    return group, plural


def _literal(node: ast.AST) -> str | None:
    """A string constant, or a module constant such as `GROUP` from api.common (`CONSTANTS`)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    for module in CONSTANTS:
        if isinstance(node, ast.Name) and isinstance(getattr(module, node.id, None), str):
            return getattr(module, node.id)
    return None


def _is_kopf_on(func: ast.AST) -> bool:
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "on"
        and isinstance(func.value.value, ast.Name)
        and func.value.value.id == "kopf"
    )


def _sources() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not relative.startswith(NOT_OPERATOR):
            yield relative, ast.parse(path.read_text())


def _names_parents(spec: ast.AST | None) -> bool:
    """A literal spec that carries `parentRefs`: a route built to be created."""
    return isinstance(spec, ast.Dict) and "parentRefs" in {_literal(k) for k in spec.keys if k is not None}


def _watch(args: list[str]) -> tuple[str, str]:
    """(group, plural) of kopf's positional resource spec: (group, version, plural) or (version, plural)."""
    if len(args) == 3:
        return args[0], args[2]
    return "", args[1]


def used_permissions() -> set[Permission]:
    used: set[Permission] = set()
    for _, tree in _sources():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                literals = [_literal(a) for a in node.args]
                if name == "event" and _is_kopf_on(func) and all(literals) and literals:
                    group, plural = _watch([str(a) for a in literals])
                    used |= {(group, plural, "list"), (group, plural, "watch")}
                elif name == "_child_handler" and all(literals[1:]):
                    group, plural = _watch([str(a) for a in literals[1:]])
                    used |= {(group, plural, "list"), (group, plural, "watch")}
                elif name == "watch_kind" and literals and literals[0] in client._RESOURCES:
                    group, plural = _group_plural(str(literals[0]))
                    used |= {(group, plural, "list"), (group, plural, "watch")}
                elif name == "post_event":
                    used.add(("", "events", "create"))
                elif (
                    name == "append"
                    and isinstance(func, ast.Attribute)
                    and (
                        (isinstance(func.value, ast.Attribute) and func.value.attr == "delete")
                        or (isinstance(func.value, ast.Name) and func.value.id == "delete")
                    )
                    and node.args
                    and isinstance(node.args[0], ast.Tuple)
                    and _literal(node.args[0].elts[0]) in client._RESOURCES
                ):
                    group, plural = _group_plural(str(_literal(node.args[0].elts[0])))
                    used.add((group, plural, "delete"))
                elif "status" in name and name != "patch_status":
                    for kind in (k for k in literals if k in client._RESOURCES):
                        group, plural = _group_plural(str(kind))
                        used.add((group, f"{plural}/status", "patch"))
                elif name in CALL_VERBS and literals and literals[0] in client._RESOURCES:
                    group, plural = _group_plural(str(literals[0]))
                    if name == "patch_status":
                        plural += "/status"
                    used.add((group, plural, CALL_VERBS[name]))
            elif isinstance(node, ast.Dict):
                keys = {_literal(k): v for k, v in zip(node.keys, node.values, strict=True) if k is not None}
                kind = _literal(keys.get("kind", ast.Constant(None)))
                if {"apiVersion", "kind", "metadata"} <= set(keys) and kind in client._RESOURCES:
                    group, plural = _group_plural(kind)
                    if kind == "Event":
                        used.add((group, plural, "create"))
                    elif kind in WRITTEN_WHOLE:
                        used |= {(group, plural, "create"), (group, plural, "update")}
                    elif kind in APPLIED_WHEN_PRESENT and not _names_parents(keys.get("spec")):
                        used.add((group, plural, "patch"))
                    else:
                        used |= {(group, plural, "create"), (group, plural, "patch")}
    deleted = {(*_group_plural(kind), "delete") for kind, _ in eval_jobs.eval_run_objects("r")}
    return used | deleted | FRAMEWORK | granted_to_eval_jobs() | permissions(inference_pool.PICKER_ROLE_RULES)


def granted_to_eval_jobs() -> set[Permission]:
    run = {"metadata": {"name": "r", "namespace": "n"}, "spec": {"gate": "g"}}
    gate = {
        "spec": {
            "dataset": {"configMapRef": {"name": "d", "key": "k"}},
            "assertions": [{"judge": {"model": "judge"}}],
        }
    }
    return permissions(eval_jobs.role_rules(run, gate))


def permissions(rules: list[dict]) -> set[Permission]:
    return {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_clusterrole_holds_exactly_the_verbs_the_code_uses() -> None:
    held = permissions(yaml.safe_load(CLUSTERROLE.read_text())["rules"])
    used = used_permissions()
    assert sorted(held - used) == [], "ClusterRole grants verbs nothing uses: drop them"
    assert sorted(used - held) == [], "the code uses verbs the ClusterRole lacks: add them"


def test_the_derivation_sees_the_code() -> None:
    """A derivation that found nothing would make the comparison above vacuous."""
    used = used_permissions()
    for expected in [
        ("apps", "deployments", "patch"),
        ("llmops.dev", "models", "watch"),
        ("llmops.dev", "models/status", "patch"),
        ("", "secrets", "get"),
        ("", "events", "create"),
        ("gateway.networking.k8s.io", "referencegrants", "list"),
        ("gateway.networking.k8s.io", "httproutes", "create"),
        ("inference.networking.k8s.io", "inferencepools", "delete"),
    ]:
        assert expected in used, expected
