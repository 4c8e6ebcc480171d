"""`llmops-operator eval`: local mode against the stub, outputs, exit codes, in-cluster mode."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmops_operator.api.evals import EvalRunStatus
from llmops_operator.cli import eval_cmd
from llmops_operator.cli.main import main
from llmops_operator.kube.client import KubeError, NotFound
from llmops_sim.openai_stub import OpenAIStub

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
GATE = EXAMPLES / "evalgate-support-quality.yaml"
PROMPT = EXAMPLES / "promptversion-support-bot.yaml"
DATASET = EXAMPLES / "evalgate-dataset-configmap.yaml"


def example_answers() -> dict[str, str]:
    """Question -> expected answer, so the stub answers the example dataset perfectly."""
    configmap = yaml.safe_load(DATASET.read_text())
    rows = [json.loads(line) for line in configmap["data"]["cases.jsonl"].splitlines() if line.strip()]
    return {row["vars"]["question"]: row["expected"] for row in rows}


@pytest.fixture
def good() -> Iterator[OpenAIStub]:
    with OpenAIStub(answers=example_answers()) as stub:
        yield stub


@pytest.fixture
def judge() -> Iterator[OpenAIStub]:
    with OpenAIStub(mode="judge", judgeScore=0.9) as stub:
        yield stub


def eval_args(endpoint: str, judge_url: str, *extra: str) -> list[str]:
    return ["eval", "--endpoint", endpoint, "--gate", str(GATE), "--prompt", str(PROMPT),
            "--dataset", str(DATASET), "--judge", f"judge-llm={judge_url}", *extra]  # fmt: skip


def test_examples_pass_against_a_good_endpoint(good, judge, capsys, tmp_path: Path) -> None:
    junit = tmp_path / "eval.xml"
    code = main(eval_args(good.url, judge.url, "--junit", str(junit)))
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("EvalRun Passed") and "judged-polite-and-correct" in out
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == "5" and suite.get("failures") == "0" and suite.get("errors") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} >= {"refund-in-window", "german"}


def test_bad_endpoint_fails_with_exit_1(judge, capsys, tmp_path: Path) -> None:
    with OpenAIStub(mode="bad") as bad:
        junit = tmp_path / "eval.xml"
        code = main(eval_args(bad.url, judge.url, "--json", "--junit", str(junit)))
    status = json.loads(capsys.readouterr().out)
    EvalRunStatus.model_validate(status)
    assert code == 1 and status["phase"] == "Failed"
    assert "no-rudeness" in status["failingAssertions"]
    assert ET.parse(junit).getroot().get("failures") == "5"


def test_unreachable_endpoint_is_error_exit_2(judge, capsys) -> None:
    with OpenAIStub() as gone:
        url = gone.url
    code = main(eval_args(url, judge.url, "--model", "m"))
    assert code == 2 and capsys.readouterr().out.startswith("EvalRun Error")


def test_judge_down_is_error_exit_2(good, capsys) -> None:
    with OpenAIStub() as gone:
        url = gone.url
    assert main(eval_args(good.url, url)) == 2
    assert "judge" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["eval", "--gate", str(GATE)], "--endpoint and --gate are required"),
        (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--gate", str(GATE)], "no PromptVersion for prompt"),
        (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--gate", str(GATE), "--prompt", str(PROMPT)],
         "dataset ConfigMap 'support-evals' not found"),
        (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--gate", str(GATE), "--prompt", str(PROMPT),
          "--dataset", str(DATASET), "--judge", "nonsense"], "--judge wants MODEL=URL"),
        (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--gate", "/no/such/file.yaml"], "No such file"),
        (["eval", "--endpoint", "http://127.0.0.1:9/v1", "--gate", str(PROMPT)], "no EvalGate found"),
    ],
)  # fmt: skip
def test_bad_invocations_are_errors_that_say_why(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().out


def test_invalid_gate_file_names_the_field(tmp_path: Path, capsys) -> None:
    gate = yaml.safe_load(GATE.read_text())
    gate["spec"]["assertions"][0]["value"] = "(unclosed"
    path = tmp_path / "gate.yaml"
    path.write_text(yaml.safe_dump(gate))
    assert (
        main(["eval", "--endpoint", "http://127.0.0.1:9/v1", "--gate", str(path), "--prompt", str(PROMPT)])
        == 2
    )
    assert "invalid regex" in capsys.readouterr().out


def test_bare_specs_and_jsonl_dataset_file(good, tmp_path: Path, capsys) -> None:
    gate = tmp_path / "gate.yaml"
    gate.write_text(
        yaml.safe_dump(
            {
                "prompt": {"name": "support-bot", "version": 3},
                "dataset": {"configMapRef": {"name": "any", "key": "cases.jsonl"}},
                "assertions": [{"type": "contains", "value": "30 days"}],
            }
        )
    )
    prompt = tmp_path / "pv.yaml"
    prompt.write_text(yaml.safe_dump(yaml.safe_load(PROMPT.read_text())["spec"]))
    cases = tmp_path / "cases.jsonl"
    question = "Can I get a refund for a toaster I bought 3 months ago?"
    cases.write_text(json.dumps({"vars": {"company": "Acme", "question": question}}) + "\n")
    argv = [
        "eval",
        "--endpoint",
        good.url,
        "--gate",
        str(gate),
        "--prompt",
        str(prompt),
        "--dataset",
        str(cases),
    ]
    assert main(argv) == 0, capsys.readouterr().out


# In-cluster mode --------------------------------------------------------------------------------


class FakeKube:
    """In-memory stand-in for kube.client.Kube, recording status patches."""

    def __init__(self, objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        self.objects = objects
        self.patches: list[dict[str, Any]] = []

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        if (kind, name) not in self.objects:
            raise NotFound(f"{kind}/{name}")
        return self.objects[(kind, name)]

    def get_or_none(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((kind, name))

    def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return [obj for (k, _), obj in self.objects.items() if k == kind]

    def patch_status(self, kind: str, namespace: str, name: str, status: dict[str, Any]) -> dict[str, Any]:
        assert (kind, name) == ("EvalRun", "run-1")
        self.patches.append(status)
        return {}


def cluster(endpoint: str, judge_url: str | None) -> FakeKube:
    pv3 = yaml.safe_load(PROMPT.read_text())
    pv2 = json.loads(json.dumps(pv3))
    pv2["spec"]["version"] = 2
    pv2["spec"]["messages"][0]["content"] = "Old prompt for {{ company }}"
    objects = {
        ("EvalRun", "run-1"): {
            "spec": {"gate": "support-quality", "model": "support-llama", "revision": "a14b02",
                     "endpoint": endpoint, "promptVersion": 3}
        },
        ("EvalGate", "support-quality"): yaml.safe_load(GATE.read_text()),
        ("PromptVersion", "support-bot-v3"): pv3,
        ("PromptVersion", "support-bot-v2"): pv2,
        ("ConfigMap", "support-evals"): yaml.safe_load(DATASET.read_text()),
    }  # fmt: skip
    if judge_url:
        objects[("Model", "judge-llm")] = {"status": {"endpoint": judge_url}}
    return FakeKube(objects)


def test_in_cluster_mode_records_passed(good, judge) -> None:
    kube = cluster(good.url, judge.url)
    assert eval_cmd.run_in_cluster("team-a/run-1", kube) == 0
    running, final = kube.patches
    assert running["phase"] == "Running" and running["revision"] == "a14b02"
    EvalRunStatus.model_validate(final)
    assert final["phase"] == "Passed" and final["revision"] == "a14b02"
    assert good.last_requests[-1]["model"] == "support-llama"
    assert "30 days" in good.last_requests[-1]["messages"][0]["content"]  # v3, not v2


def test_in_cluster_missing_judge_model_records_error(good) -> None:
    kube = cluster(good.url, None)
    assert eval_cmd.run_in_cluster("team-a/run-1", kube) == 0
    final = kube.patches[-1]
    assert final["phase"] == "Error" and "'judge-llm' not found" in final["message"]


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        (("EvalGate", "support-quality"), "EvalGate 'support-quality' not found"),
        (("ConfigMap", "support-evals"), "dataset ConfigMap 'support-evals' not found"),
        (("PromptVersion", "support-bot-v3"), "no PromptVersion for prompt 'support-bot' version 3"),
    ],
)
def test_in_cluster_missing_inputs_record_error(good, judge, missing: tuple[str, str], message: str) -> None:
    kube = cluster(good.url, judge.url)
    del kube.objects[missing]
    assert eval_cmd.run_in_cluster("team-a/run-1", kube) == 0
    assert kube.patches[-1]["phase"] == "Error" and message in kube.patches[-1]["message"]


def test_in_cluster_unwritable_status_exits_2(good, judge) -> None:
    kube = cluster(good.url, judge.url)
    del kube.objects[("EvalRun", "run-1")]

    def refuse(*args: object) -> dict[str, Any]:
        raise NotFound("EvalRun/run-1")

    kube.patch_status = refuse  # type: ignore[method-assign]
    assert eval_cmd.run_in_cluster("team-a/run-1", kube) == 2
    assert eval_cmd.run_in_cluster("no-slash", kube) == 2


class Outage:
    """Makes a FakeKube's calls answer "API server unreachable" `times` times, then work."""

    def __init__(self, kube: FakeKube, times: int) -> None:
        self.kube, self.left = kube, times

    def __getattr__(self, name: str) -> Any:
        call = getattr(self.kube, name)

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if self.left > 0:
                self.left -= 1
                raise KubeError(0, "API server unreachable: connection refused")
            return call(*args, **kwargs)

        return flaky


def test_in_cluster_rides_out_a_short_api_outage(good, judge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_cmd, "API_RETRY_SECONDS", 0.0)
    kube = cluster(good.url, judge.url)
    assert eval_cmd.run_in_cluster("team-a/run-1", Outage(kube, eval_cmd.API_ATTEMPTS - 1)) == 0
    assert kube.patches[-1]["phase"] == "Passed"


def test_in_cluster_an_unreadable_run_writes_nothing_and_exits_2(
    good, judge, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No unsigned Error that the operator would take for a forged status: the Job fails instead."""
    monkeypatch.setattr(eval_cmd, "API_RETRY_SECONDS", 0.0)
    kube = cluster(good.url, judge.url)
    assert eval_cmd.run_in_cluster("team-a/run-1", Outage(kube, eval_cmd.API_ATTEMPTS)) == 2
    assert kube.patches == []


def test_in_cluster_a_refused_call_is_not_retried(good, judge, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eval_cmd, "API_RETRY_SECONDS", 0.0)
    kube = cluster(good.url, judge.url)
    calls = []

    def forbidden(*args: object) -> dict[str, Any]:
        calls.append(args)
        raise KubeError(403, "forbidden")

    kube.get = forbidden  # type: ignore[method-assign]
    assert eval_cmd.run_in_cluster("team-a/run-1", kube) == 2
    assert len(calls) == 1 and kube.patches == []
