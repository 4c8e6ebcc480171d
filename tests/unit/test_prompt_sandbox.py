"""Render bombs and deep templates end in a clear validation or render failure, never a hang,
a giant allocation or a RecursionError (issue 9 reproductions)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops_operator import prompts
from llmops_operator.api.prompt import PromptVersionSpec


def spec(content: str, variables: list[dict] | None = None) -> PromptVersionSpec:
    return PromptVersionSpec.model_validate(
        {
            "prompt": "p",
            "version": 1,
            "messages": [{"role": "user", "content": content}],
            "variables": variables or [],
        }
    )


@pytest.mark.parametrize(
    "content",
    [
        "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
        "{% if true %}" * 400 + "x" + "{% endif %}" * 400,
        "{{ " + "[" * 2000 + "]" * 2000 + " }}",
        "{{ 1" + " + 1" * 2000 + " }}",
    ],
)
def test_deep_templates_are_invalid_not_an_exception(content: str) -> None:
    result = prompts.validate(spec(content))
    assert not result.valid
    assert "nests more than" in result.reason or "does not compile" in result.reason


BOMBS = [
    '{{ "x"|center(1000000000) }}',
    '{{ "x".center(1000000000) }}',
    '{{ "x".ljust(1000000000) }}',
    '{{ "%1000000000s"|format("x") }}',
    '{{ "%1000000000s" % "x" }}',
    '{{ "%*s" % (1000000000, "x") }}',
    '{{ "{:>1000000000}".format("x") }}',
    '{% set s = "x" * 100000 %}{{ s.replace("x", s) }}',
    '{% set s = "x" * 100000 %}{{ s|replace("x", s) }}',
    '{% set s = "x" * 100000 %}{% set s = s ~ s %}{% set s = s ~ s %}{% set s = s ~ s %}'
    "{% set s = s ~ s %}{% set s = s ~ s %}{{ s }}",
    '{% set s = "x" * 100000 %}{% set s = s + s %}{% set s = s + s %}{% set s = s + s %}'
    "{% set s = s + s %}{{ s }}",
    '{% set ns = namespace(s="x") %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}'
    "{{ ns.s|length }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set a = range(100000)|list %}{% for i in a %}{% for j in a %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{{ 'y' * 100000 }}{% endfor %}",
    '{% set s = "x" * 100000 %}{{ (s ~ ",")|join(s) }}',
    '{{ ("x" * 100000)|indent(100000) }}',
    "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    "{% for x in [[1]] recursive %}{{ loop(x * 1) }}{% endfor %}",
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("content", BOMBS)
def test_render_bombs_are_a_render_error(content: str) -> None:
    template = spec(content)
    assert prompts.validate(template).valid, prompts.validate(template).reason
    with pytest.raises(prompts.PromptRenderError):
        prompts.render(template, {})


def test_ordinary_templates_still_render() -> None:
    template = spec(
        "{% for item in items %}{{ loop.index }}. {{ item|upper ~ '!' }}{% if not loop.last %}, "
        "{% endif %}{% endfor %} {{ 'ok'|center(10) }} {{ '%05d'|format(42) }} {{ ', '.join(items) }}",
        [{"name": "items"}],
    )
    assert prompts.render(template, {"items": ["a", "b"]})[0]["content"] == (
        "1. A!, 2. B!     ok     00042 a, b"
    )


def test_validation_is_computed_once_per_content() -> None:
    template = spec("Hello {{ name }}", [{"name": "name"}])
    first = prompts.validate(template)
    again = PromptVersionSpec.model_validate(template.to_wire())
    assert prompts.validate(again) is first


TEMPLATE_TEXT = st.lists(
    st.sampled_from([*list("{}%()[]~+*|.,'\"x1 "), "{{", "}}", "{%", "%}", "for ", "in ", "set ", "if "]),
    max_size=40,
).map("".join)


@given(TEMPLATE_TEXT)
@settings(max_examples=300, deadline=None)
def test_any_template_validates_or_renders_without_raising_anything_else(content: str) -> None:
    if not content.strip():
        return
    template = spec(content)
    result = prompts.validate(template)
    if result.valid:
        with contextlib.suppress(prompts.PromptRenderError):
            prompts.render(template, {})
