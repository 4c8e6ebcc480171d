"""Evaluation throughput: 1000 cases against the local OpenAI stub at concurrency 16.

Measures what the runner itself costs (rendering, HTTP, scoring with rougeL and
contains), since the stub answers at once. Prints cases per second and peak RSS.

    ~/.cache/llmops-operator/venv/bin/python bench/eval_throughput.py [--cases 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psutil

from llmops_operator.api.evals import EvalGateSpec
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.evals.runner import run_eval
from llmops_sim.openai_stub import OpenAIStub

TOPICS = {
    "refund": "You can get a refund within 30 days of purchase; reply with your order number.",
    "hours": "Our support team is available Monday to Friday, 9:00 to 17:00.",
    "shipping": "Shipping usually takes 3 to 5 working days.",
    "password": "Use the 'Forgot password' link on the sign-in page to reset it.",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def stub_process() -> Iterator[str]:
    """The stub in its own process, so its CPU and memory are not counted as the runner's."""
    port = _free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as answers:
        json.dump(TOPICS, answers)
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmops_sim.openai_stub", "--port", str(port), "--answers", answers.name],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        os.unlink(answers.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--in-process-stub", action="store_true", help="run the stub in this process (GIL shared)"
    )
    args = parser.parse_args()
    prompt = PromptVersionSpec.model_validate(
        {
            "prompt": "support-bot",
            "version": 1,
            "messages": [
                {"role": "system", "content": "You are {{ company }}'s support assistant. Be brief."},
                {"role": "user", "content": "Ticket {{ n }}: a question about {{ topic }}."},
            ],
            "variables": [{"name": "company"}, {"name": "n"}, {"name": "topic"}],
            "parameters": {"temperature": 0.0, "maxTokens": 256},
        }
    )
    topics = list(TOPICS)
    cases = [
        {
            "id": f"t{i}",
            "vars": {"company": "Acme", "n": i, "topic": topics[i % len(topics)]},
            "expected": TOPICS[topics[i % len(topics)]],
        }
        for i in range(args.cases)
    ]
    gate = EvalGateSpec.model_validate(
        {
            "prompt": {"name": "support-bot"},
            "dataset": {"inline": cases}
            if args.cases <= 1000
            else {"configMapRef": {"name": "x", "key": "c.jsonl"}},
            "assertions": [
                {
                    "type": "contains",
                    "values": ["day", "Monday", "password", "refund"],
                    "caseInsensitive": True,
                },
                {"type": "rougeL", "threshold": 0.8},
                {"type": "latency", "threshold": 5000},
            ],
            "passCriteria": {"passRate": 0.99},
            "concurrency": args.concurrency,
        }
    )
    dataset_text = None
    if args.cases > 1000:  # inline datasets are capped at 1000 cases by the API
        dataset_text = "\n".join(json.dumps(c) for c in cases)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    if args.in_process_stub:
        with OpenAIStub(answers=TOPICS) as stub:
            started = time.perf_counter()
            result = run_eval(gate, prompt, stub.url, "stub-model", dataset_text=dataset_text)
            elapsed = time.perf_counter() - started
    else:
        with stub_process() as url:
            started = time.perf_counter()
            result = run_eval(gate, prompt, url, "stub-model", dataset_text=dataset_text)
            elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    status_bytes = len(json.dumps(result.to_status()))
    print(f"phase={result.phase} ({result.message})")
    where = "in-process" if args.in_process_stub else "separate process"
    print(f"cases={args.cases} concurrency={args.concurrency} stub={where} elapsed={elapsed:.2f}s")
    print(f"throughput={args.cases / elapsed:.0f} cases/s")
    print(f"candidate p95 latency={result.candidate.scores.latency_p95_ms:.1f}ms" if result.candidate else "")
    print(f"runner RSS before={rss_before / 2**20:.0f} MiB, peak={peak_kib / 1024:.0f} MiB")
    print(f"EvalRun status size ~{status_bytes / 1024:.0f} KiB")
    return 0 if result.phase == "Passed" else 1


if __name__ == "__main__":
    sys.exit(main())
