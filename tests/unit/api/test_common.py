"""Shared API helpers: the "must be unique" names and CEL rules every CRD model uses."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from llmops_operator.api.common import ApiModel, StatusModel, cel_rules, repeated


@given(st.lists(st.sampled_from("abcde")))
def test_repeated_lists_each_name_seen_more_than_once_sorted(names: list[str]) -> None:
    assert repeated(names) == sorted(n for n in set(names) if names.count(n) > 1)


def test_cel_rules_become_kubernetes_validations() -> None:
    config = cel_rules(("self.a > 0", "a must be positive"), ("has(self.b)", "set b"))
    assert config["json_schema_extra"] == {
        "x-kubernetes-validations": [
            {"rule": "self.a > 0", "message": "a must be positive"},
            {"rule": "has(self.b)", "message": "set b"},
        ]
    }


def test_status_models_differ_from_spec_models_only_in_tolerating_unknown_fields() -> None:
    spec, status = dict(ApiModel.model_config), dict(StatusModel.model_config)
    assert (spec.pop("extra"), status.pop("extra")) == ("forbid", "ignore")
    assert spec == status
