"""pytest imports test modules by basename (rootdir mode): two files with one basename anywhere
under tests/ stop the whole run at collection. Fail here first, naming them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_every_test_module_basename_is_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py"))
    assert [n for n, c in names.items() if c > 1] == []
