"""What the API client sends: timeouts on every call, preconditions on deletes and scale-downs."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from llmops_operator.kube.client import REQUEST_TIMEOUT, Kube


class FakeApi:
    """Records requests; answers 200 with an empty object, or a canned (status, body)."""

    def __init__(self, answer: tuple[int, dict[str, Any]] = (200, {})) -> None:
        self.configuration = SimpleNamespace(host="https://api")
        self.calls: list[dict[str, Any]] = []
        self.answer = answer

    def update_params_for_auth(self, *args: Any) -> None:
        pass

    def call_api(
        self, method: str, url: str, header_params: Any = None, body: Any = None, _request_timeout: Any = None
    ) -> Any:
        self.calls.append({"method": method, "url": url, "body": body, "timeout": _request_timeout})
        status, data = self.answer
        return SimpleNamespace(status=status, data=json.dumps(data).encode(), read=lambda: None)


OBSERVED = {"metadata": {"name": "chat-abc", "uid": "u-1", "resourceVersion": "42"}}


def test_every_call_has_a_timeout() -> None:
    api = FakeApi()
    kube = Kube(api)  # type: ignore[arg-type]
    kube.get("Deployment", "ns", "chat-abc")
    kube.patch("Deployment", "ns", "chat-abc", {"spec": {"replicas": 2}})
    assert [c["timeout"] for c in api.calls] == [REQUEST_TIMEOUT, REQUEST_TIMEOUT]


def test_a_delete_of_an_observed_object_carries_its_uid_and_resource_version() -> None:
    api = FakeApi()
    assert Kube(api).delete("Deployment", "ns", "chat-abc", observed=OBSERVED)  # type: ignore[arg-type]
    assert api.calls[0]["method"] == "DELETE"
    assert api.calls[0]["body"]["preconditions"] == {"uid": "u-1", "resourceVersion": "42"}


def test_a_delete_whose_preconditions_fail_deletes_nothing_and_says_so() -> None:
    api = FakeApi(
        (409, {"message": "Precondition failed: UID in precondition: u-1, UID in object meta: u-2"})
    )
    assert Kube(api).delete("Deployment", "ns", "chat-abc", observed=OBSERVED) is False  # type: ignore[arg-type]


def test_a_guarded_scale_down_sends_the_observed_resource_version() -> None:
    api = FakeApi()
    Kube(api).patch_guarded("Deployment", "ns", "chat-abc", {"spec": {"replicas": 0}}, "42")  # type: ignore[arg-type]
    assert api.calls[0]["body"] == {"spec": {"replicas": 0}, "metadata": {"resourceVersion": "42"}}


def test_create_if_absent_leaves_an_existing_object_alone() -> None:
    api = FakeApi((409, {"message": 'jobs.batch "x" already exists'}))
    assert Kube(api).create_if_absent({"kind": "Job", "metadata": {"name": "x", "namespace": "ns"}}) is None  # type: ignore[arg-type]
