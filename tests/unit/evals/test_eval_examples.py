"""The shipped PromptVersion / EvalGate examples are valid against the API models, and fit together."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from llmops_operator import prompts
from llmops_operator.api.evals import DatasetSpec, EvalGateSpec, EvalRunSpec, JudgeSpec
from llmops_operator.api.prompt import PromptVersionSpec
from llmops_operator.evals import dataset
from llmops_operator.evals.assertions import assertion_name, check_assertion

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def load(name: str) -> dict:
    return yaml.safe_load((EXAMPLES / name).read_text())


def test_prompt_version_example_is_valid_and_renders() -> None:
    doc = load("promptversion-support-bot.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("llmops.dev/v1alpha1", "PromptVersion")
    spec = PromptVersionSpec.model_validate(doc["spec"])
    assert prompts.validate(spec).valid, prompts.validate(spec).reason
    system = prompts.render(spec, {"company": "Acme", "question": "Hi"})[0]["content"]
    assert "Acme" in system and "English" in system and "order" not in system


def test_eval_gate_example_is_valid() -> None:
    doc = load("evalgate-support-quality.yaml")
    assert (doc["apiVersion"], doc["kind"]) == ("llmops.dev/v1alpha1", "EvalGate")
    gate = EvalGateSpec.model_validate(doc["spec"])
    for index, assertion in enumerate(gate.assertions):
        check_assertion(assertion, assertion_name(assertion, index))
    assert {a.type for a in gate.assertions} >= {"regex", "llmJudge", "rougeL", "latency"}


def test_examples_fit_together() -> None:
    """The gate's prompt and ConfigMap exist, and every case renders with the prompt."""
    gate = EvalGateSpec.model_validate(load("evalgate-support-quality.yaml")["spec"])
    prompt = PromptVersionSpec.model_validate(load("promptversion-support-bot.yaml")["spec"])
    configmap = load("evalgate-dataset-configmap.yaml")
    ref = gate.dataset.config_map_ref
    assert ref is not None and gate.prompt.name == prompt.prompt
    assert configmap["metadata"]["name"] == ref.name
    cases = dataset.parse_text(configmap["data"][ref.key], ref.key)
    assert len(cases) == 5 and all(c.expected for c in cases)
    for case in cases:
        prompts.render(prompt, case.vars)


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (DatasetSpec, {}),
        (DatasetSpec, {"configMapRef": {"name": "a", "key": "b"}, "inline": [{"vars": {}}]}),
        (DatasetSpec, {"inline": []}),
        (JudgeSpec, {}),
        (JudgeSpec, {"model": "a", "endpoint": "http://b"}),
        (EvalRunSpec, {"gate": "g", "model": "m", "revision": "r"}),
        (EvalGateSpec, {"prompt": {"name": "p"}, "dataset": {"inline": [{}]}, "assertions": []}),
    ],
)
def test_api_rejects_ambiguous_or_incomplete_specs(model: type, data: dict) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_cel_rules_mirror_the_validators() -> None:
    """The CRD gets the same exactly-one rules the pydantic validators enforce."""
    dataset_rules = DatasetSpec.model_json_schema()["x-kubernetes-validations"]
    judge_rules = JudgeSpec.model_json_schema()["x-kubernetes-validations"]
    assert dataset_rules[0]["rule"] == "has(self.configMapRef) != has(self.inline)"
    assert judge_rules[0]["rule"] == "has(self.model) != has(self.endpoint)"
    assertion_rules = EvalGateSpec.model_json_schema()["$defs"]["Assertion"]["x-kubernetes-validations"]
    assert len(assertion_rules) == 4
