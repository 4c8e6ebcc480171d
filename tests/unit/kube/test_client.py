"""What the API client sends: timeouts on every call, preconditions on deletes and scale-downs."""

from __future__ import annotations

import json
from types import MappingProxyType, SimpleNamespace
from typing import Any

import pytest

from llmops_operator.kube.client import REQUEST_TIMEOUT, Kube, KubeError, NotFound


class FakeApi:
    """Records requests (on the client's connection pool, as the operator sends them); answers
    200 with an empty object, or a canned (status, body)."""

    def __init__(self, answer: tuple[int, dict[str, Any]] = (200, {})) -> None:
        self.configuration = SimpleNamespace(host="https://api")
        self.calls: list[dict[str, Any]] = []
        self.answer = answer
        pool = SimpleNamespace(urlopen=self.urlopen)
        self.rest_client = SimpleNamespace(
            pool_manager=SimpleNamespace(connection_from_url=lambda host: pool)
        )

    def update_params_for_auth(self, *args: Any) -> None:
        pass

    def urlopen(
        self,
        method: str,
        url: str,
        body: bytes | None = None,
        headers: Any = None,
        timeout: Any = None,
        **_: Any,
    ) -> Any:
        sent = None if body is None else json.loads(body)
        self.calls.append(
            {"method": method, "url": url, "body": sent, "headers": headers, "timeout": timeout}
        )
        status, data = self.answer
        return SimpleNamespace(status=status, data=json.dumps(data).encode())


OBSERVED = {"metadata": {"name": "chat-abc", "uid": "u-1", "resourceVersion": "42"}}


def test_every_call_has_a_timeout() -> None:
    api = FakeApi()
    kube = Kube(api)  # type: ignore[arg-type]
    kube.get("Deployment", "ns", "chat-abc")
    kube.patch("Deployment", "ns", "chat-abc", {"spec": {"replicas": 2}})
    assert [(c["timeout"].connect_timeout, c["timeout"].read_timeout) for c in api.calls] == [
        REQUEST_TIMEOUT
    ] * 2


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


def test_an_answer_is_decoded_and_errors_keep_their_status() -> None:
    assert Kube(FakeApi((200, {"metadata": {"name": "x"}}))).get("Pod", "ns", "x") == {
        "metadata": {"name": "x"}
    }  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        Kube(FakeApi((404, {"message": "not found"}))).get("Pod", "ns", "x")  # type: ignore[arg-type]
    with pytest.raises(KubeError) as conflict:
        Kube(FakeApi((409, {"message": "the object has been modified"}))).get("Pod", "ns", "x")  # type: ignore[arg-type]
    assert conflict.value.status == 409 and "has been modified" in conflict.value.message


def test_an_unreachable_api_server_is_status_0() -> None:
    api = FakeApi()

    def refuse(*_: Any, **__: Any) -> Any:
        raise ConnectionRefusedError("refused")

    api.rest_client.pool_manager = SimpleNamespace(
        connection_from_url=lambda host: SimpleNamespace(urlopen=refuse)
    )
    with pytest.raises(KubeError) as failed:
        Kube(api).get("Pod", "ns", "x")  # type: ignore[arg-type]
    assert failed.value.status == 0


def test_an_apply_sends_json_under_the_apply_content_type_and_read_only_views_encode() -> None:
    api = FakeApi()
    labels = MappingProxyType({"app": "chat"})  # a read-only mapping, as kopf's body views are
    Kube(api).apply({"kind": "Service", "metadata": {"name": "chat", "namespace": "ns", "labels": labels}})
    call = api.calls[0]
    assert call["method"] == "PATCH" and "fieldManager=" in call["url"] and "force=true" in call["url"]
    assert call["headers"]["Content-Type"] == "application/apply-patch+yaml"
    assert call["body"]["metadata"]["labels"] == {"app": "chat"}


class PagedApi(FakeApi):
    """Answers a LIST in pages of the `limit` asked for, with a continue token, at version 7
    (later pages report a newer version, which the list must not take)."""

    def __init__(self, names: list[str]) -> None:
        super().__init__()
        self.names = names

    def urlopen(self, method: str, url: str, **kwargs: Any) -> Any:
        super().urlopen(method, url, **kwargs)
        query = dict(part.split("=", 1) for part in url.split("?", 1)[1].split("&"))
        start, limit = int(query.get("continue", "0")), int(query["limit"])
        page = self.names[start : start + limit]
        more = start + limit < len(self.names)
        meta = {"resourceVersion": str(7 + start), **({"continue": str(start + limit)} if more else {})}
        items = [{"metadata": {"name": n, "managedFields": [{"manager": "x"}]}} for n in page]
        return SimpleNamespace(status=200, data=json.dumps({"metadata": meta, "items": items}).encode())


@pytest.mark.parametrize("count", [0, 1, 499, 500, 501, 1234])
def test_a_list_comes_in_pages_of_one_snapshot(count: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llmops_operator.kube.client.LIST_PAGE_SIZE", 500)
    names = [f"m{i}" for i in range(count)]
    api = PagedApi(names)
    names_listed, version = Kube(api).list_names("Pod", "ns", "llmops.dev/model")  # type: ignore[arg-type]
    assert names_listed == set(names) and version == "7"
    assert len(api.calls) == max(1, -(-count // 500))
    assert all("limit=500" in c["url"] and "labelSelector=llmops.dev%2Fmodel" in c["url"] for c in api.calls)
    assert all("as=PartialObjectMetadataList" in c["headers"]["Accept"] for c in api.calls)
