"""What the InferencePool unit tests share: the Model `team-a/chat`, its owner reference and two
revision hashes (stable, canary)."""

from __future__ import annotations

from llmops_operator.resources import ModelRef

REF = ModelRef("chat", "team-a", "uid-1")
OWNER = {
    "apiVersion": "llmops.dev/v1alpha1",
    "kind": "Model",
    "name": "chat",
    "uid": "uid-1",
    "controller": True,
}
STABLE, CANARY = "aaaaaaaaaa", "bbbbbbbbbb"
