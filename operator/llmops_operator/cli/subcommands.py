"""The one type every `llmops-operator` subcommand module registers itself with."""

from __future__ import annotations

import argparse
from typing import Any, Protocol


class Subcommands(Protocol):
    """What `ArgumentParser.add_subparsers()` returns, as far as a subcommand needs it (argparse
    names the class itself privately)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser: ...
