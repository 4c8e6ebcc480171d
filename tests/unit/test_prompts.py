"""Prompt validation, sandboxed rendering, hashing and Model bundles."""

from __future__ import annotations

import json
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from llmops_operator import prompts
from llmops_operator.api.prompt import PROMPT_VERSION_SPEC_VALIDATIONS, PromptVersionSpec


def spec(*contents: str, variables: list[dict] | None = None, **extra: object) -> PromptVersionSpec:
    messages = [{"role": "system" if i == 0 else "user", "content": c} for i, c in enumerate(contents)]
    return PromptVersionSpec.model_validate(
        {"prompt": "support-bot", "version": 1, "messages": messages, "variables": variables or [], **extra}
    )


SUPPORT = spec(
    "You are {{ company }}'s assistant. Answer in {{ language }}.",
    "{{ question }}",
    variables=[
        {"name": "company"},
        {"name": "question"},
        {"name": "language", "required": False, "default": "English"},
    ],
)


def test_valid_prompt_renders_with_defaults() -> None:
    assert prompts.validate(SUPPORT) == prompts.ValidationResult(True)
    assert prompts.render(SUPPORT, {"company": "Acme", "question": "Hi?"}) == [
        {"role": "system", "content": "You are Acme's assistant. Answer in English."},
        {"role": "user", "content": "Hi?"},
    ]


def test_supplied_value_overrides_default() -> None:
    out = prompts.render(SUPPORT, {"company": "Acme", "question": "Hallo?", "language": "German"})
    assert out[0]["content"].endswith("Answer in German.")


def test_missing_required_variable_names_it() -> None:
    with pytest.raises(prompts.PromptRenderError, match="'question'"):
        prompts.render(SUPPORT, {"company": "Acme"})


def test_optional_variable_without_default_is_empty_and_falsy() -> None:
    pv = spec(
        "{% if order %}Order {{ order }}.{% endif %}Hi", variables=[{"name": "order", "required": False}]
    )
    assert prompts.validate(pv).valid
    assert prompts.render(pv, {})[0]["content"] == "Hi"
    assert prompts.render(pv, {"order": "A1"})[0]["content"] == "Order A1.Hi"


@pytest.mark.parametrize(
    ("contents", "variables", "reason"),
    [
        (("{{ question }",), [{"name": "question"}], "does not compile"),
        (("{% for x in items %}",), [{"name": "items"}], "does not compile"),
        (("{{ question }} {{ secret }}",), [{"name": "question"}], "undeclared variable(s) 'secret'"),
        (("Hi", "{{ q }}"), [], "messages[1] (user): uses undeclared variable(s) 'q'"),
        (("{{ q }}",), [{"name": "q", "required": True, "default": "x"}], "required and has a default"),
    ],
)
def test_invalid_prompts_say_why(contents: tuple[str, ...], variables: list[dict], reason: str) -> None:
    result = prompts.validate(spec(*contents, variables=variables))
    assert not result.valid
    assert reason in result.reason


def test_loop_variables_and_builtins_are_not_undeclared() -> None:
    template = "{% for item in items %}{{ loop.index }}:{{ item }} {% endfor %}{{ range(2)|list }}"
    pv = spec(template, variables=[{"name": "items"}])
    assert prompts.validate(pv).valid
    assert prompts.render(pv, {"items": ["a", "b"]})[0]["content"] == "1:a 2:b [0, 1]"


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ x.__class__.__base__.__subclasses__() }}",
    "{{ x['__class__'] }}",
    "{{ x|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ x.__dict__ }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escape_attempts_are_invalid(template: str) -> None:
    result = prompts.validate(spec(template, variables=[{"name": "x"}]))
    assert not result.valid
    assert "private attribute" in result.reason


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escape_attempts_fail_at_render_too(template: str) -> None:
    """Even if validation were bypassed, the sandbox refuses at render with a clear error."""
    with pytest.raises(prompts.PromptRenderError, match=r"unsafe|undefined|no attribute"):
        prompts.render(spec(template, variables=[{"name": "x"}]), {"x": "value"})


def test_dynamic_attribute_escape_is_stopped_by_the_sandbox() -> None:
    """A name built at runtime is invisible to validation; the sandbox still refuses it."""
    pv = spec("{{ x|attr(name) }}", variables=[{"name": "x"}, {"name": "name"}])
    assert prompts.validate(pv).valid
    with pytest.raises(prompts.PromptRenderError, match="unsafe"):
        prompts.render(pv, {"x": "s", "name": "__class__"})


def test_immutable_sandbox_refuses_mutation() -> None:
    pv = spec("{{ items.append(1) }}{{ items }}", variables=[{"name": "items"}])
    with pytest.raises(prompts.PromptRenderError, match="unsafe"):
        prompts.render(pv, {"items": []})


@pytest.mark.parametrize(
    "template",
    ["{{ 'a' * 100000000 }}", "{{ [1] * 10000000 }}", "{{ 100000000 * 'ab' }}", "{{ 9 ** 99999999 }}"],
)
def test_resource_exhaustion_is_refused(template: str) -> None:
    with pytest.raises(prompts.PromptRenderError, match="unsafe"):
        prompts.render(spec(template), {})


def test_small_arithmetic_still_works() -> None:
    assert prompts.render(spec("{{ '-' * 3 }}{{ 2 ** 10 }}{{ 3 * 4 }}"), {})[0]["content"] == "---102412"


def test_spec_rejects_unknown_fields_and_bad_versions() -> None:
    with pytest.raises(ValidationError):
        spec("hi", version=0)
    with pytest.raises(ValidationError):
        PromptVersionSpec.model_validate({"prompt": "p", "version": 1, "messages": [], "variables": []})
    with pytest.raises(ValidationError):
        spec("hi", temperatur=0.1)


def test_immutability_rule_is_exported_for_the_crd() -> None:
    assert PROMPT_VERSION_SPEC_VALIDATIONS == [
        {"rule": "self == oldSelf", "message": "PromptVersion spec is immutable; create a new version"}
    ]


def test_content_hash_is_stable_and_content_sensitive() -> None:
    same = PromptVersionSpec.model_validate(json.loads(json.dumps(SUPPORT.to_wire())))
    assert prompts.content_hash(same) == prompts.content_hash(SUPPORT)
    changed = SUPPORT.model_copy(update={"description": "tone down refunds"})
    assert prompts.content_hash(changed) != prompts.content_hash(SUPPORT)


def test_bundle_holds_one_file_per_prompt_and_hashes_content() -> None:
    other = spec("Summarise: {{ text }}", variables=[{"name": "text"}]).model_copy(
        update={"prompt": "summary"}
    )
    data, digest = prompts.bundle([SUPPORT, other])
    assert sorted(data) == ["summary.json", "support-bot.json"]
    entry = json.loads(data["support-bot.json"])
    assert entry["version"] == 1
    assert entry["messages"][1] == {"role": "user", "content": "{{ question }}"}
    assert entry["contentHash"] == prompts.content_hash(SUPPORT)
    assert prompts.bundle([other, SUPPORT]) == (data, digest)  # order of binding does not matter
    bumped = SUPPORT.model_copy(update={"version": 2})
    assert prompts.bundle([bumped, other])[1] != digest


def test_bundle_rejects_a_prompt_bound_twice() -> None:
    with pytest.raises(ValueError, match="more than once"):
        prompts.bundle([SUPPORT, SUPPORT.model_copy(update={"version": 2})])


identifiers = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12).filter(
    lambda s: (
        s not in ("loop", "range", "dict", "lipsum", "cycler", "joiner", "namespace", "true", "false")
        and s not in ("none", "and", "or", "not", "in", "is", "if", "else")
    )
)


@settings(max_examples=150, deadline=None)
@given(value=st.text(max_size=200))
def test_any_variable_value_renders_verbatim(value: str) -> None:
    """User-supplied values are data, never template code."""
    pv = spec("[{{ q }}]", variables=[{"name": "q"}])
    assert prompts.render(pv, {"q": value}) == [{"role": "system", "content": f"[{value}]"}]


@settings(max_examples=200, deadline=None)
@given(template=st.text(max_size=80), name=identifiers)
def test_arbitrary_templates_never_crash(template: str, name: str) -> None:
    """Any template yields a verdict; a valid one renders or fails with PromptRenderError."""
    pv = spec(template or "x", variables=[{"name": name, "required": False, "default": "v"}])
    result = prompts.validate(pv)
    assert isinstance(result.valid, bool)
    if result.valid:
        try:
            rendered = prompts.render(pv, {})
        except prompts.PromptRenderError:
            return
        assert len(rendered) == 1


@settings(max_examples=100, deadline=None)
@given(names=st.lists(identifiers, min_size=1, max_size=5, unique=True), data=st.data())
def test_declared_variables_validate_and_missing_ones_are_named(
    names: list[str], data: st.DataObject
) -> None:
    template = " ".join("{{ " + n + " }}" for n in names)
    pv = spec(template, variables=[{"name": n} for n in names])
    assert prompts.validate(pv).valid
    dropped = data.draw(st.sampled_from(names))
    with pytest.raises(prompts.PromptRenderError, match=repr(dropped)):
        prompts.render(pv, {n: "v" for n in names if n != dropped})
