"""`make eval-demo`: evaluate a prompt on a real small model and write the HTML report.

Starts SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible server on CPU (the stand-in
for a GPU engine, hack/sim/llmops_sim/real_model.py), runs examples/evalgate-real-model.yaml
through `llmops-operator eval` with the same model as judge, and leaves the report file. The
verdict is printed; the demo succeeds whatever it is (a 135M model fails some cases).
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("eval-report.html"))
    args = parser.parse_args()
    started = time.monotonic()
    with RealModel(
        log_path=ROOT / ".cluster" / "real-model.log" if (ROOT / ".cluster").is_dir() else None
    ) as model:
        print(f"model server up at {model.url} in {time.monotonic() - started:.1f}s", flush=True)
        command = [
            sys.executable, "-m", "llmops_operator.cli.main", "eval",
            "--endpoint", model.url, "--gate", str(GATE),
            "--judge", f"smollm2={model.url}", "--html", str(args.out),
        ]  # fmt: skip
        code = subprocess.run(command, check=False).returncode
        rss = model.rss_bytes() / 2**20
    verdict = {0: "Passed", 1: "Failed", 2: "Error"}.get(code, f"exit {code}")
    print(f"verdict {verdict}; report: {args.out.resolve()}; model server RSS {rss:.0f} MiB; "
          f"{time.monotonic() - started:.1f}s in all")  # fmt: skip
    return 0 if code in (0, 1) else code


if __name__ == "__main__":
    sys.exit(main())
