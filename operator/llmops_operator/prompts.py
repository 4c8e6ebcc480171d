"""Prompt templates: sandboxed jinja2 validation, rendering, hashing and Model bundles.

Templates are user input that the operator validates and eval Jobs render, so they run in
jinja2's immutable sandbox (`prompt_sandbox`, which also bounds a render's time and size) with
undefined variables as errors. Private attributes (`__class__` and the like) are rejected at
validation time, and the sandbox refuses them again at render. Deep nesting (which overflows
Python's stack in the parser) is a validation failure, never a RecursionError.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2.exceptions import SecurityError, TemplateError, TemplateSyntaxError, UndefinedError
from pydantic import ValidationError

from llmops_operator import prompt_sandbox
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.conditions import Reason, validity_conditions
from llmops_operator.hashing import digest
from llmops_operator.redact import bounded


class PromptRenderError(ValueError):
    """A prompt could not be rendered; the message says which variable or template."""


@dataclass(frozen=True)
class ValidationResult:
    """Outcome of `validate`: `reason` says what to fix when not valid."""

    valid: bool
    reason: str = ""


def validate(spec: PromptVersionSpec) -> ValidationResult:
    """Check templates compile, use only declared variables, nest within bounds and read nothing
    private. A PromptVersion is immutable, so the result is computed once per content hash."""
    key = content_hash(spec)
    result = _VALIDATED.get(key)
    if result is None:
        result = _validate(spec)
        result = ValidationResult(result.valid, bounded(result.reason)) if result.reason else result
        if len(_VALIDATED) >= MAX_VALIDATED:
            _VALIDATED.clear()
        _VALIDATED[key] = result
    return result


MAX_VALIDATED = 4096
_VALIDATED: dict[str, ValidationResult] = {}
"""content hash -> validation result; single dict operations are atomic, so threads may share it."""


def _validate(spec: PromptVersionSpec) -> ValidationResult:
    declared: dict[str, Any] = {}
    for variable in spec.variables:
        if variable.name in declared:
            return ValidationResult(False, f"variable {variable.name!r} is declared twice")
        if variable.required and variable.default is not None:
            return ValidationResult(
                False, f"variable {variable.name!r} is required and has a default; drop one of the two"
            )
        declared[variable.name] = variable
    for index, message in enumerate(spec.messages):
        where = f"messages[{index}] ({message.role})"
        too_deep = ValidationResult(
            False, f"{where}: template nests more than {prompt_sandbox.MAX_NESTING} levels deep; flatten it"
        )
        try:
            ast = prompt_sandbox.ENV.parse(message.content)
            if prompt_sandbox.depth(ast) > prompt_sandbox.MAX_NESTING:
                return too_deep
            prompt_sandbox.compiled(message.content)
        except TemplateSyntaxError as exc:
            return ValidationResult(
                False, f"{where}: template does not compile: {exc.message} (line {exc.lineno})"
            )
        except (RecursionError, MemoryError):
            return too_deep
        except (TemplateError, SyntaxError, ValueError, TypeError) as exc:
            return ValidationResult(False, f"{where}: template does not compile: {exc}")
        private = prompt_sandbox.private_attribute_reads(ast)
        if private:
            return ValidationResult(
                False, f"{where}: template reads private attribute {private[0]!r}, not allowed"
            )
        undeclared = sorted(prompt_sandbox.used_variables(ast) - set(declared))
        if undeclared:
            names = ", ".join(repr(n) for n in undeclared)
            return ValidationResult(
                False, f"{where}: uses undeclared variable(s) {names}; declare them in variables"
            )
    return ValidationResult(True)


def resolve_variables(spec: PromptVersionSpec, variables: dict[str, Any]) -> dict[str, Any]:
    """Supplied values plus defaults; a missing required variable is an error naming it."""
    values: dict[str, Any] = {}
    missing: list[str] = []
    for variable in spec.variables:
        if variable.name in variables and variables[variable.name] is not None:
            values[variable.name] = variables[variable.name]
        elif variable.required:
            missing.append(variable.name)
        else:
            values[variable.name] = "" if variable.default is None else variable.default
    if missing:
        names = ", ".join(repr(n) for n in missing)
        raise PromptRenderError(
            f"missing required variable(s) {names} for prompt {spec.prompt!r} v{spec.version}"
        )
    return values


def render(spec: PromptVersionSpec, variables: dict[str, Any]) -> list[dict[str, str]]:
    """Chat messages with variables substituted, ready for a chat completions request."""
    values = resolve_variables(spec, variables)
    rendered: list[dict[str, str]] = []
    for index, message in enumerate(spec.messages):
        where = f"messages[{index}] ({message.role})"
        try:
            content = prompt_sandbox.render_bounded(prompt_sandbox.compiled(message.content), values)
        except RecursionError as exc:
            raise PromptRenderError(f"{where}: template recurses too deeply") from exc
        except SecurityError as exc:
            raise PromptRenderError(f"{where}: unsafe template rejected by the sandbox: {exc}") from exc
        except UndefinedError as exc:
            raise PromptRenderError(f"{where}: {exc.message}") from exc
        except TemplateError as exc:
            raise PromptRenderError(f"{where}: {exc}") from exc
        except (TypeError, ValueError, ArithmeticError, OverflowError, MemoryError) as exc:
            raise PromptRenderError(f"{where}: template failed: {exc}") from exc
        rendered.append({"role": message.role, "content": content})
    return rendered


def content_hash(spec: PromptVersionSpec) -> str:
    """sha256 of the canonical spec: equal content, equal hash, whatever the key order."""
    return digest(spec.to_wire())


def bundle_entry(spec: PromptVersionSpec) -> dict[str, Any]:
    """What a serving pod reads for one bound prompt."""
    wire = spec.to_wire()
    return {
        "prompt": spec.prompt,
        "version": spec.version,
        "contentHash": content_hash(spec),
        "messages": wire["messages"],
        "variables": wire.get("variables", []),
        "parameters": wire.get("parameters", {}),
        "responseFormat": wire.get("responseFormat"),
    }


def bundle(prompt_versions: list[PromptVersionSpec]) -> tuple[dict[str, str], str]:
    """ConfigMap data (`<prompt>.json` per bound prompt) and its hash for the revision hash."""
    data: dict[str, str] = {}
    for spec in sorted(prompt_versions, key=lambda s: s.prompt):
        key = f"{spec.prompt}.json"
        if key in data:
            raise ValueError(f"prompt {spec.prompt!r} is bound more than once")
        data[key] = json.dumps(bundle_entry(spec), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    return data, digest(data)


def resolve(
    refs: Sequence[Any], prompt_versions: Sequence[Mapping[str, Any]]
) -> tuple[list[PromptVersionSpec], str | None, str]:
    """The bound PromptVersion specs, or (reason, message) of the first that is missing or invalid."""
    found: list[PromptVersionSpec] = []
    for ref in refs:
        match = next(
            (
                pv
                for pv in prompt_versions
                if (pv.get("spec") or {}).get("prompt") == ref.name
                and (pv.get("spec") or {}).get("version") == ref.version
            ),
            None,
        )
        if match is None:
            return (
                [],
                Reason.PROMPT_MISSING,
                (
                    f"PromptVersion {ref.name} version {ref.version} does not exist in this namespace; "
                    "create it or bind an existing version"
                ),
            )
        try:
            spec = PromptVersionSpec.model_validate(match["spec"])
        except ValidationError as exc:
            return (
                [],
                Reason.PROMPT_INVALID,
                f"PromptVersion {match['metadata']['name']}: {exc.errors()[0]['msg']}",
            )
        result = validate(spec)
        if not result.valid:
            return (
                [],
                Reason.PROMPT_INVALID,
                f"PromptVersion {match['metadata']['name']} is invalid: {result.reason}",
            )
        found.append(spec)
    return found, None, ""


def prompt_version_status(
    obj: dict[str, Any], models: Iterable[dict[str, Any]], now: datetime
) -> dict[str, Any]:
    """The status a PromptVersion should have (pure)."""
    meta = obj["metadata"]
    valid = ("Validated", "templates compile")
    try:
        spec = PromptVersionSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        problem = f"invalid spec: {exc.errors()[0]['msg']}"
        return {
            "valid": False,
            "reason": problem,
            "conditions": validity_conditions(obj, problem, valid, "InvalidPrompt", now),
            "observedGeneration": meta.get("generation"),
        }
    result = validate(spec)
    used_by = sorted(
        m["metadata"]["name"]
        for m in models
        if m["metadata"]["namespace"] == meta["namespace"]
        and any(
            p.get("name") == spec.prompt and p.get("version") == spec.version
            for p in (m.get("spec") or {}).get("prompts") or []
        )
    )
    return {
        "contentHash": content_hash(spec),
        "valid": result.valid,
        "reason": result.reason,
        "usedBy": used_by,
        "conditions": validity_conditions(
            obj, "" if result.valid else result.reason or "invalid", valid, "InvalidPrompt", now
        ),
        "observedGeneration": meta.get("generation"),
    }
