"""The real-model stand-in (SmolLM2-135M-Instruct on llama.cpp, CPU): load time, answer time, memory.

What the real-model eval tests and `make eval-demo` cost: time from start to serving, seconds per
greedy answer (the example gate's questions, its system message and maxTokens), completion
tokens per second, and the server's resident memory. Each thread count starts its own server.

    python bench/real_model.py --threads 1,2 --repeat 2
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import httpx
import yaml

from llmops_sim.real_model import MODEL_NAME, RealModel

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "evalgate-real-model.yaml"


def example_conversations() -> tuple[list[list[dict[str, str]]], int]:
    docs = list(yaml.safe_load_all(EXAMPLE.read_text()))
    prompt = next(d for d in docs if d["kind"] == "PromptVersion")["spec"]
    cases = next(d for d in docs if d["kind"] == "EvalGate")["spec"]["dataset"]["inline"]
    system = prompt["messages"][0]["content"]
    conversations = [
        [{"role": "system", "content": system}, {"role": "user", "content": c["vars"]["question"]}]
        for c in cases
    ]
    return conversations, prompt["parameters"]["maxTokens"]


def measure(threads: int, repeat: int) -> None:
    conversations, max_tokens = example_conversations()
    with RealModel(threads=threads) as model:
        seconds: list[float] = []
        tokens = 0
        answers: dict[int, set[str]] = {}
        for _ in range(repeat):
            for i, messages in enumerate(conversations):
                body = {"model": MODEL_NAME, "messages": messages, "max_tokens": max_tokens, "temperature": 0}
                started = time.perf_counter()
                reply = httpx.post(f"{model.url}/chat/completions", json=body, timeout=600).json()
                seconds.append(time.perf_counter() - started)
                tokens += reply["usage"]["completion_tokens"]
                answers.setdefault(i, set()).add(reply["choices"][0]["message"]["content"])
        rss = model.rss_bytes() / 2**20
        print(
            f"threads {threads}: serving after {model.started_seconds:.1f}s; {len(seconds)} answers, "
            f"p50 {statistics.median(seconds):.2f}s, max {max(seconds):.2f}s, "
            f"{tokens / sum(seconds):.1f} completion tokens/s; RSS {rss:.0f} MiB; "
            f"same answer every time: {all(len(a) == 1 for a in answers.values())}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument("--repeat", type=int, default=2, help="times each question is asked")
    args = parser.parse_args()
    for threads in (int(t) for t in args.threads.split(",")):
        measure(threads, args.repeat)


if __name__ == "__main__":
    main()
