"""`make eval-demo`: evaluate a prompt on a real small model and write the HTML report.

Starts SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible server on CPU (the stand-in
for a GPU engine, hack/sim/llmops_sim/real_model.py), runs examples/evalgate-real-model.yaml
through `llmops-operator eval` with the same model as judge, and leaves the report file. The
verdict is printed; the demo succeeds whatever it is (the example's prompt leaks a phone number,
so its gate fails). `--endpoint URL` uses a model server that is already running instead.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from llmops_sim.real_model import RealModel

ROOT = Path(__file__).resolve().parents[1]
GATE = ROOT / "examples" / "evalgate-real-model.yaml"
VERDICTS = {0: "Passed", 1: "Failed", 2: "Error"}


def evaluate(url: str, out: Path) -> int:
    """`llmops-operator eval` of the example gate on the model at `url`, the same model as judge."""
    command = [
        sys.executable, "-m", "llmops_operator.cli.main", "eval",
        "--endpoint", url, "--gate", str(GATE), "--judge", f"smollm2={url}", "--html", str(out),
    ]  # fmt: skip
    return subprocess.run(command, check=False).returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("eval-report.html"))
    parser.add_argument("--endpoint", help="a running model server's OpenAI base URL (…/v1)")
    args = parser.parse_args()
    started = time.monotonic()
    rss = ""
    if args.endpoint:
        code = evaluate(args.endpoint, args.out)
    else:
        with RealModel() as model:
            print(f"model server up at {model.url} in {model.started_seconds:.1f}s", flush=True)
            code = evaluate(model.url, args.out)
            rss = f"; model server RSS {model.rss_bytes() / 2**20:.0f} MiB"
    verdict = VERDICTS.get(code, f"exit {code}")
    print(f"verdict {verdict}; report: {args.out.resolve()}{rss}; {time.monotonic() - started:.1f}s in all")
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    sys.exit(main())
