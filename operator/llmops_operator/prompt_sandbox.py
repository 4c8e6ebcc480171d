"""The prompt template sandbox: jinja2's immutable sandbox plus a render budget.

The sandbox alone does not bound cost: `"x"|center(10**9)`, `s.replace("x", s)`, repeated
`{% set s = s ~ s %}` or nested loops build gigabytes or run for hours. So every render has a
budget (`MAX_RENDER_SECONDS`, `MAX_ITERATIONS` loop steps and calls, `MAX_VALUE_CHARS` per built
string, `MAX_RENDERED_CHARS` of output): loops and `~` are rewritten to spend from it, and the
operators and methods that grow strings check their result size before building it. `prompts`
validates and renders through `ENV`, `compiled` and `render_bounded`.
"""

from __future__ import annotations

import contextvars
import functools
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_RENDERED_CHARS = 1_000_000
"""Longest rendered message accepted; guards against templates that blow up."""
MAX_VALUE_CHARS = MAX_RENDERED_CHARS
"""Longest string or list a template may build in one step (`~`, `+`, `*`, `%`, filters)."""
MAX_WIDTH = 10_000
"""Largest width or count argument to center, ljust, rjust, zfill, indent and format specs."""
MAX_ITERATIONS = 1_000_000
"""Loop steps and calls one render may take."""
MAX_RENDER_SECONDS = 2.0
"""CPU budget of one message render (the rendering thread's CPU time, so a loaded machine that
leaves the thread waiting does not fail an ordinary template)."""
MAX_NESTING = 100
"""Deepest template syntax tree accepted (blocks, expressions, filters)."""


MAX_REPEAT = 100_000
"""Largest sequence a template may build with `*`."""


@dataclass
class _Budget:
    deadline: float
    steps: int = 0


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("prompt_budget", default=None)


def _spend(steps: int = 1) -> None:
    """One loop step or call of the current render; past the budget the render stops."""
    budget = _BUDGET.get()
    if budget is None:
        return
    budget.steps += steps
    if budget.steps > MAX_ITERATIONS:
        raise SecurityError(f"template takes more than {MAX_ITERATIONS} loop steps and calls")
    if time.thread_time() > budget.deadline:
        raise SecurityError(f"template renders for longer than {MAX_RENDER_SECONDS}s")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, str | list | tuple) else len(str(value))


def _check_size(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise SecurityError(f"{what} would build more than {MAX_VALUE_CHARS} characters")


def _check_width(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and value > MAX_WIDTH:
        raise SecurityError(f"{what} width {value} is larger than {MAX_WIDTH}")


_PERCENT_SPEC = re.compile(r"%[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_WIDTH = re.compile(r"\{[^{}]{0,64}?\d{5,}")


def _check_percent(template: str, args: Any) -> None:
    """`"%999999999s" % x` and `"%*s" % (10**9, x)`."""
    values = args if isinstance(args, tuple) else (args,)
    for match in _PERCENT_SPEC.finditer(template):
        for width in match.groups():
            if width == "*":
                for value in values:
                    _check_width(value, "format")
            elif width is not None:
                _check_width(int(width), "format")


def _check_method(obj: Any, args: tuple[Any, ...]) -> None:
    """String methods that build large results from small inputs."""
    target = getattr(obj, "__wrapped__", obj)  # the sandbox wraps `str.format` in its own function
    self_ = getattr(target, "__self__", None)
    name = getattr(target, "__name__", "")
    if not isinstance(self_, str):
        return
    if name in ("center", "ljust", "rjust", "zfill", "expandtabs"):
        for arg in args[:1]:
            _check_width(arg, name)
    elif name in ("format", "format_map") and _BRACE_WIDTH.search(self_):
        raise SecurityError(f"format spec width larger than {MAX_WIDTH}")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        count = self_.count(old) if old else len(self_) + 1
        _check_size(len(self_) + count * max(len(new) - len(old), 0), "replace")
    elif name == "join" and args:
        _check_join(args[0], self_)


def _bounded_filter(original: Any, check: Any) -> Any:
    @functools.wraps(original)  # keeps jinja's pass_eval_context marker
    def bounded_filter(*args: Any, **kwargs: Any) -> Any:
        check(*(a for a in args if not isinstance(a, EvalContext | Context)), **kwargs)
        return original(*args, **kwargs)

    return bounded_filter


def _check_center(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    _check_width(width, "center")


def _check_indent(value: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    lines = str(value).count("\n") + 1
    pad = width if isinstance(width, int) and not isinstance(width, bool) else len(str(width))
    _check_width(pad, "indent")
    _check_size(len(str(value)) + lines * pad, "indent")


def _check_format(value: Any, *args: Any, **_: Any) -> None:
    _check_percent(str(value), tuple(args))


def _check_replace(value: Any, old: Any = "", new: Any = "", *_: Any, **__: Any) -> None:
    text, old, new = str(value), str(old), str(new)
    count = text.count(old) if old else len(text) + 1
    _check_size(len(text) + count * max(len(new) - len(old), 0), "replace")


def _check_join(value: Any, d: Any = "", *_: Any, **__: Any) -> None:
    if isinstance(value, list | tuple):
        count, content = len(value), sum(_size(v) for v in value)
    elif isinstance(value, str):
        count, content = len(value), len(value)
    else:
        return  # an iterator: its items are bounded by the loop budget and the output limit
    _check_size(content + len(str(d)) * count, "join")


def _bounded_iter(iterable: Any) -> Iterator[Any]:
    """What every `{% for %}` iterates: the original items, each one a step of the budget."""
    for item in iterable:
        _spend()
        yield item


def _bounded_concat(parts: Iterable[Any]) -> str:
    """`a ~ b ~ c`, checked before it is built."""
    texts = [str(p) for p in parts]
    _spend()
    _check_size(sum(len(t) for t in texts), "~")
    return "".join(texts)


_ITER_FILTER = "llmops_bounded_iter"
_CONCAT_FILTER = "llmops_bounded_concat"


class _Bounding(NodeTransformer):
    """Rewrites loops and `~` so each spends from the render budget."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, _ITER_FILTER, [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        node = self.generic_visit(node)
        items = nodes.List(list(node.nodes), lineno=node.lineno)
        return nodes.Filter(items, _CONCAT_FILTER, [], [], None, None, lineno=node.lineno)


class _PromptSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus a render budget and size checks, so a template cannot exhaust
    memory or CPU."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.filters = {
            **self.filters,
            "center": _bounded_filter(self.filters["center"], _check_center),
            "indent": _bounded_filter(self.filters["indent"], _check_indent),
            "format": _bounded_filter(self.filters["format"], _check_format),
            "replace": _bounded_filter(self.filters["replace"], _check_replace),
            "join": _bounded_filter(self.filters["join"], _check_join),
            _ITER_FILTER: _bounded_iter,
            _CONCAT_FILTER: _bounded_concat,
        }

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        ast = _Bounding().visit(super()._parse(source, name, filename))
        ast.set_environment(self)
        return ast

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _spend()
        _check_method(__obj, args)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        _spend()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_REPEAT
                ):
                    raise SecurityError(f"repetition would build more than {MAX_REPEAT} items")
        if operator == "**" and isinstance(right, int | float) and abs(right) > 64:
            raise SecurityError("exponent larger than 64")
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _check_size(len(left) + len(right), "+")
        if operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        return super().call_binop(context, operator, left, right)


def _environment() -> ImmutableSandboxedEnvironment:
    return _PromptSandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


ENV = _environment()


@functools.lru_cache(maxsize=1024)
def compiled(content: str) -> jinja2.Template:
    """Compile once per template text: a dataset renders the same messages thousands of times."""
    return ENV.from_string(content)


def depth(ast: nodes.Node) -> int:
    """Depth of the syntax tree, without recursion (the tree may be deep)."""
    deepest, stack = 0, [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())
    return deepest


def private_attribute_reads(ast: nodes.Template) -> list[str]:
    """Attribute or item names starting with `_`: the usual first step of a sandbox escape."""
    found: list[str] = []
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter)):
        if isinstance(node, nodes.Filter):
            if node.name != "attr" or not node.args or not isinstance(node.args[0], nodes.Const):
                continue
            name = str(node.args[0].value)
        elif isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            name = node.arg.value
        else:
            continue
        if name.startswith("_"):
            found.append(name)
    return found


def used_variables(ast: nodes.Template) -> set[str]:
    return set(meta.find_undeclared_variables(ast)) - set(ENV.globals)


def render_bounded(template: jinja2.Template, values: dict[str, Any]) -> str:
    """Render within the budget: output is collected chunk by chunk and stopped past the limit."""
    token = _BUDGET.set(_Budget(deadline=time.thread_time() + MAX_RENDER_SECONDS))
    try:
        chunks: list[str] = []
        total = 0
        for chunk in template.generate(values):
            total += len(chunk)
            if total > MAX_RENDERED_CHARS:
                raise SecurityError(f"rendered message longer than {MAX_RENDERED_CHARS} characters")
            chunks.append(chunk)
            _spend()
        return "".join(chunks)
    finally:
        _BUDGET.reset(token)
