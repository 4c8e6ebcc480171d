"""The in-cluster eval path keeps every case where `kubectl llmops report` reads it back.

An EvalRun is evaluated by the real `llmops-operator eval --evalrun NS/NAME` (what the eval Job
runs) against the OpenAI stub, on the dev cluster's real API server. The test then reads what a
person would: the EvalRun status naming the record ConfigMap, the ConfigMap owned by the
EvalRun (so deleted with it), and the HTML page `kubectl llmops report` writes from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers_evals import evaluate_in_cluster, kubectl_llmops_report
from helpers_model import Kubectl

from llmops_operator.evals import case_record
from llmops_sim.openai_stub import OpenAIStub

pytestmark = pytest.mark.cluster

CASES = 60  # more than the status keeps (50)


PROMPT = {
    "prompt": "bot",
    "version": 1,
    "messages": [{"role": "user", "content": "{{ question }}"}],
    "variables": [{"name": "question"}],
}
GATE_SPEC = {
    "dataset": {
        "inline": [
            *({"id": f"case-{i:02d}", "vars": {"question": f"q{i} refund?"}} for i in range(CASES)),
            {"id": "leaky", "vars": {"question": "q-leak?"}},
        ]
    },
    "assertions": [
        {"name": "mentions-refund", "type": "contains", "value": "refund"},
        {"name": "no-pii", "type": "pii"},
    ],
    "passCriteria": {"passRate": 0.9},
    "retries": 0,
    "concurrency": 8,
}


def test_case_record_is_kept_owned_and_read_back_by_kubectl_llmops_report(
    cluster: Any, kube: Kubectl, namespace: str, tmp_path: Path
) -> None:
    answers = {"refund": "A refund is possible within 30 days.", "q-leak": "Ask bob@example.org."}
    with OpenAIStub(answers=answers) as stub:
        run = evaluate_in_cluster(kube, namespace, PROMPT, ("g", GATE_SPEC), stub.url)

    status = run["status"]
    assert status["phase"] == "Passed", status.get("message")
    assert len(status["cases"]) == 50 and status["truncated"] == CASES + 1 - 50
    assert status["record"] == {"configMap": "run-1-cases", "key": case_record.RECORD_KEY, "cases": CASES + 1}

    cm = kube.get("configmap", namespace, "run-1-cases")
    owner = cm["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("EvalRun", "run-1", run["metadata"]["uid"])
    record = case_record.from_config_map(cm)
    assert len(record["cases"]) == CASES + 1 and record["cases"][0]["id"] == "leaky"

    out = tmp_path / "run.html"
    assert f"({CASES + 1} cases)" in kubectl_llmops_report(cluster.kubeconfig, namespace, "run-1", out)
    page = out.read_text()
    assert page.count('<tbody class="case"') == CASES + 1, "every case, not the 50 in status"
    assert page.index('data-id="leaky"') < page.index('data-id="case-00"'), "failing case first"
    assert "bob@example.org" in page  # the answer itself is shown ...
    assert "email bo*@*******.*rg" in page  # ... and the finding masked in the assertion detail

    cluster.kubectl("delete", "configmap", "run-1-cases", "-n", namespace)
    kubectl_llmops_report(cluster.kubeconfig, namespace, "run-1", out)
    page = out.read_text()
    assert "ConfigMap &#39;run-1-cases&#39; is gone" in page and page.count('<tbody class="case"') == 50
