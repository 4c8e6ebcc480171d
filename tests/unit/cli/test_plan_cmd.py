"""`llmops-operator plan`: the pure pass over a file, no cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from llmops_operator.cli.main import main

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
MODEL_FILES = sorted(p.name for p in EXAMPLES.glob("model-*.yaml"))


@pytest.mark.parametrize("name", MODEL_FILES)
def test_every_example_model_plans_to_a_deployment(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    files = ["-f", str(EXAMPLES / name)]
    if name == "model-with-prompts-and-gate.yaml":
        files += ["-f", str(EXAMPLES / "promptversion-support-bot.yaml")]
    assert main(["plan", *files, "--cache-loaded", "-o", "yaml"]) == 0
    out = yaml.safe_load(capsys.readouterr().out)
    kinds = [o["kind"] for o in out["apply"]]
    assert "Deployment" in kinds and "Service" in kinds, kinds
    assert out["status"]["phase"] == "Progressing"


def test_summary_names_objects_and_conditions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plan", "-f", str(EXAMPLES / "model-vllm.yaml")]) == 0
    out = capsys.readouterr().out
    assert "Job " in out and "CacheReady" in out and "Loading" in out  # the cache blocks a first pass


def test_invalid_spec_exits_1_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("kind: Model\nmetadata: {name: m}\nspec: {engine: {type: vllm}}\n")
    assert main(["plan", "-f", str(path)]) == 1
    assert "InvalidSpec" in capsys.readouterr().out


def test_a_file_without_a_model_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pv.yaml"
    path.write_text("kind: PromptVersion\nmetadata: {name: p}\n")
    assert main(["plan", "-f", str(path)]) == 2
    assert "exactly one Model" in capsys.readouterr().out
