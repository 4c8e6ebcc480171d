"""The eval runs' fork server: imported once, so each forked eval Job starts warm.

Stands in for a container start only in cost: importing `llmops-operator eval` and building
a TLS context cost about 2 CPU-seconds per fresh interpreter, which a soak of thousands of eval
Jobs cannot pay each time (the job runner's `fork=True`). What runs in the child is the real
CLI, with the container's env and nothing else.
"""

from __future__ import annotations

import os
import sys

import anyio._backends._asyncio  # noqa: F401  (imported by the first async HTTP request)
import h11  # noqa: F401
import httpcore  # noqa: F401

from llmops_operator.cli.main import main
from llmops_operator.evals.client import tls_context

tls_context()  # the CA bundle, loaded once in the server instead of in every run


def run(argv: list[str], env: dict[str, str], output: str | None) -> None:
    """In the forked child: the container's env and output, then the operator's CLI."""
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(output or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.exit(main(argv))
