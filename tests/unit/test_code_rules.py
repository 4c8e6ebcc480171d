"""Code rules of the package that ruff does not check (issue 8): no module reaches into another
module's private names, and a function-local import says which import cycle it breaks.

Read from the source with `ast`, so a new violation fails here with its file and line. The checks
themselves are pinned on small sources first, so this file cannot pass by finding nothing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import kopf
import pytest

from llmops_operator.handlers import wiring

SOURCE_ROOT = Path(__file__).resolve().parents[2] / "operator"
PACKAGE = SOURCE_ROOT / "llmops_operator"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_our_module(dotted: str) -> bool:
    base = SOURCE_ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module an ImportFrom reads from, with relative imports resolved against `module`."""
    if not node.level:
        return node.module or ""
    parts = module.split(".") if is_package else module.split(".")[:-1]
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join([*parts, *([node.module] if node.module else [])])


def reach_ins(source: str, module: str, is_package: bool = False) -> list[str]:
    """Every private name of another module that `source` (the text of `module`) imports or reads
    as an attribute of an imported module; a private module on the path counts too."""
    tree = ast.parse(source)
    modules: dict[str, str] = {}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if any(_private(part) for part in alias.name.split(".")):
                    found.append(f"{node.lineno}: import {alias.name}")
                modules[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom):
            source_module = _absolute(node, module, is_package)
            if source_module == module:
                continue
            if any(_private(part) for part in source_module.split(".")):
                found.append(f"{node.lineno}: from {source_module} import ...")
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{node.lineno}: from {source_module} import {alias.name}")
                elif _is_our_module(f"{source_module}.{alias.name}"):
                    modules[alias.asname or alias.name] = f"{source_module}.{alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and _private(node.attr)
        ):
            found.append(f"{node.lineno}: {modules[node.value.id]}.{node.attr}")
    return found


def unexplained_local_imports(source: str) -> list[str]:
    """Imports inside a function whose line, or the line above, has no comment naming the cycle
    it breaks, or saying why it is `deferred:` (a library only one command needs, kept out of the
    operator's memory)."""
    lines = source.splitlines()
    found = []
    for func in ast.walk(ast.parse(source)):
        if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Import | ast.ImportFrom):
                nearby = lines[max(0, node.lineno - 2) : node.end_lineno]
                comments = [line.split("#", 1)[1] for line in nearby if "#" in line]
                if not any(
                    "cycle" in comment.lower() or comment.strip().lower().startswith("deferred: ")
                    for comment in comments
                ):
                    found.append(f"{node.lineno}: {lines[node.lineno - 1].strip()}")
    return found


def _package_files() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50, f"expected the package's modules under {PACKAGE}"
    return files


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            "from llmops_operator.resources import _pod_spec",
            ["1: from llmops_operator.resources import _pod_spec"],
        ),
        ("from . import _x", ["1: from llmops_operator.api import _x"]),
        ("import kopf._core.engines", ["1: import kopf._core.engines"]),
        ("from kopf._cogs import configs", ["1: from kopf._cogs import ..."]),
        (
            "from llmops_operator import resources\nresources._pod_spec",
            ["2: llmops_operator.resources._pod_spec"],
        ),
        ("import llmops_operator.resources as r\nr._metadata()", ["2: llmops_operator.resources._metadata"]),
        # its own private names, dunders, and private attributes of objects are not reach-ins
        ("from llmops_operator.api.common import _here\n_here", []),
        ("from llmops_operator import resources\nresources.__name__", []),
        ("from llmops_operator.api.common import ApiModel\nApiModel._x\nself._y", []),
    ],
)
def test_reach_in_check_finds_private_imports_and_attributes(source: str, expected: list[str]) -> None:
    assert reach_ins(source, "llmops_operator.api.common") == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    import json\n", ["2: import json"]),
        ("def f():\n    # lazy\n    from a import b\n", ["3: from a import b"]),
        ("async def f():\n    import json  # fast\n", ["2: import json  # fast"]),
        ("def f():\n    # cycle: a imports this module\n    from a import b\n", []),
        ("def f():\n    from a import b  # cycle: a imports this module\n", []),
        ("def f():\n    # deferred: only the eval runner scores, 20 MiB\n    from a import b\n", []),
        ("def f():\n    # deferred:\n    from a import b\n", ["3: from a import b"]),
        ("import json\nif True:\n    import os\n", []),
    ],
)
def test_local_import_check_wants_the_cycle_stated(source: str, expected: list[str]) -> None:
    assert unexplained_local_imports(source) == expected


def test_no_module_reaches_into_another_modules_private_names() -> None:
    found = [
        f"{path.relative_to(SOURCE_ROOT)}:{hit}"
        for path in _package_files()
        for hit in reach_ins(path.read_text(), _module_name(path), path.name == "__init__.py")
    ]
    assert not found, "private names used across modules (make them public or move the code):\n" + "\n".join(
        found
    )


def test_every_function_local_import_states_its_cycle() -> None:
    found = [
        f"{path.relative_to(SOURCE_ROOT)}:{hit}"
        for path in _package_files()
        for hit in unexplained_local_imports(path.read_text())
    ]
    assert not found, (
        "function-local imports without a comment naming the cycle they break (import at the top,"
        " or say `# cycle: ...` or `# deferred: why`):\n" + "\n".join(found)
    )


def test_importing_the_wiring_registers_no_handler_in_kopfs_global_registry() -> None:
    """The CLI imports the wiring at the top: that must not register handlers for every command
    (kopf has no public way to list a registry's handlers, hence `_watching`)."""
    assert list(wiring.REGISTRY._watching.get_all_handlers())
    logins = [h.fn for h in wiring.REGISTRY._activities.get_all_handlers() if h.activity == "authentication"]
    assert logins == [wiring.login], "without a login handler in its own registry kopf cannot authenticate"
    assert not list(kopf.get_default_registry()._watching.get_all_handlers())
