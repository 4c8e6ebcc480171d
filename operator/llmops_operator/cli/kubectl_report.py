"""`kubectl llmops report EVALRUN`: write an EvalRun's HTML report (every case, failing first).

Reads the EvalRun and, where its status names one (`status.record`), the ConfigMap with every
case's full outcome. Without that record (an older Job, or one that could not write it) the
report is built from the status' clipped cases and says so.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from llmops_operator.evals import case_record, html_report
from llmops_operator.kube.client import NotFound


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("evalrun", help="EvalRun name")
    parser.add_argument("-o", "--output", type=Path, help="file to write (default: EVALRUN.html)")


def read_record(kube: Any, namespace: str, name: str) -> dict[str, Any]:
    """The full record of an EvalRun, or one made from its status with a note on what is missing."""
    status = kube.get("EvalRun", namespace, name).get("status") or {}
    ref = status.get("record") or {}
    if not ref.get("configMap"):
        return case_record.from_status(status)
    problem = ""
    try:
        return case_record.from_config_map(
            kube.get("ConfigMap", namespace, ref["configMap"]), ref.get("key") or case_record.RECORD_KEY
        )
    except NotFound:
        problem = f"ConfigMap {ref['configMap']!r} is gone"
    except (KeyError, ValueError, OSError) as exc:
        problem = f"ConfigMap {ref['configMap']!r} holds no readable record ({type(exc).__name__})"
    record = case_record.from_status(status)
    record["partial"] = f"{problem}; {record['partial']}"
    return record


def run(args: argparse.Namespace, kube: Any, namespace: str) -> int:
    """Write the report (NotFound and KubeError are reported by the plugin's main)."""
    record = read_record(kube, namespace, args.evalrun)
    output = args.output or Path(f"{args.evalrun}.html")
    output.write_text(html_report.render(record, f"EvalRun {namespace}/{args.evalrun}"), encoding="utf-8")
    print(f"wrote {output} ({len(record['cases'])} cases)")
    return 0
