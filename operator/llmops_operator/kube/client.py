"""The operator's only path to the Kubernetes API: server-side apply, status patches, reads, deletes.

A thin REST layer over the kubernetes client's connection pool, so every write of an owned
object is a server-side apply under one field manager and every request is counted
(the scale benchmark reports the count).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import orjson
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from llmops_operator.api.common import FIELD_MANAGER, GROUP, VERSION
from llmops_operator.kube.events import EventCorrelator
from llmops_operator.redact import bounded

# kind -> (api path prefix, plural); namespaced kinds only.
_RESOURCES: dict[str, tuple[str, str]] = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "Secret": ("/api/v1", "secrets"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Pod": ("/api/v1", "pods"),
    "Event": ("/api/v1", "events"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "HTTPRoute": ("/apis/gateway.networking.k8s.io/v1", "httproutes"),
    "Gateway": ("/apis/gateway.networking.k8s.io/v1", "gateways"),
    "ReferenceGrant": ("/apis/gateway.networking.k8s.io/v1beta1", "referencegrants"),
    "InferencePool": ("/apis/inference.networking.k8s.io/v1", "inferencepools"),
    "Model": (f"/apis/{GROUP}/{VERSION}", "models"),
    "PromptVersion": (f"/apis/{GROUP}/{VERSION}", "promptversions"),
    "EvalGate": (f"/apis/{GROUP}/{VERSION}", "evalgates"),
    "EvalRun": (f"/apis/{GROUP}/{VERSION}", "evalruns"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
}


REQUEST_TIMEOUT = (5.0, 30.0)
"""(connect, read) seconds of every API call: a stalled API server fails a pass, never hangs it."""

METADATA_LIST = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json"
"""Accept header of a metadata-only LIST (falls back to the full list where unsupported)."""


def _jsonable(value: Any) -> Any:
    """What orjson does not encode itself: read-only mappings and sequences (kopf's body views)."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class NotFound(Exception):
    """The object does not exist."""


class KubeError(Exception):
    """An API call failed; `status` is the HTTP status (0 when the server was unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


POOL_SIZE = 64
"""Kept-alive connections: at least one per thread that calls (32 reconcile workers, 4 spare
executor threads, 4 Event posters, leader election, cache audit). With fewer, connections are
discarded and each new one costs a TLS handshake (seen as "Connection pool is full" at 500 Models)."""


def load_api_client(pool_size: int = POOL_SIZE) -> k8s.ApiClient:
    """In-cluster config when running in a pod, otherwise the current kubeconfig.

    The connection pool holds `pool_size` connections so every calling thread keeps one.
    """
    configuration = k8s.Configuration()
    try:
        k8s_config.load_incluster_config(client_configuration=configuration)
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = pool_size
    configuration.retries = 1  # one retry: the caller backs off and retries with its own schedule
    return k8s.ApiClient(configuration)


class InvalidName(KubeError):
    """A name the operator was asked to put into an API path is not a name (e.g. `../x`)."""

    def __init__(self, segment: str) -> None:
        super().__init__(400, f"{segment[:80]!r} is not a valid object name")


def _segment(value: str) -> str:
    """One path segment, percent-quoted: a name can never climb out of its collection."""
    if value in ("", ".", ".."):
        raise InvalidName(value)
    return quote(value, safe="")


def object_path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    """REST path of a namespaced object (or of its collection when name is None); every segment
    is quoted, so `name="../../kube-system/secrets/x"` stays one (missing) object name."""
    prefix, plural = _RESOURCES[kind]
    path = f"{prefix}/namespaces/{_segment(namespace)}/{plural}"
    if name is not None:
        path += f"/{_segment(name)}"
        if subresource:
            path += f"/{_segment(subresource)}"
    return path


LIST_PAGE_SIZE = 500
"""Items per page of the LISTs the watches and the cache audit make."""


def collection_path(kind: str, namespace: str | None) -> str:
    """REST path of a kind's collection in one namespace, or across all of them (None)."""
    if namespace is not None:
        return object_path(kind, namespace)
    prefix, plural = _RESOURCES[kind]
    return f"{prefix}/{plural}"


def _resource_of(path: str) -> str:
    """`deployments` or `models/status` from a REST path (the object's name left out)."""
    parts = path.split("/")
    if "namespaces" in parts:
        rest = parts[parts.index("namespaces") + 2 :]
        return "/".join(rest[:1] + rest[2:3])
    return parts[-2] if len(parts) > 2 else path


class Kube:
    """Counted, typed-enough access to the API server for the operator's own objects."""

    def __init__(
        self,
        api_client: k8s.ApiClient | None = None,
        field_manager: str = FIELD_MANAGER,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self.api = api_client or load_api_client()
        self.field_manager = field_manager
        self.timeout = timeout
        self._timeout = urllib3.Timeout(connect=timeout[0], read=timeout[1])
        self._connections: urllib3.connectionpool.HTTPConnectionPool | None = None
        self._count_lock = threading.Lock()
        self.request_count = 0
        self.requests_by: dict[tuple[str, str], int] = {}
        """(verb, resource[/subresource]) -> requests, for the scale benchmark's breakdown."""
        self.events = EventCorrelator()
        """The Events posted, so a repeat updates its Event (kube/events.py)."""

    def _call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, str] | None = None,
        content_type: str = "application/json",
        accept: str = "application/json",
    ) -> dict[str, Any]:
        what = (method, _resource_of(path))
        with self._count_lock:
            self.request_count += 1
            self.requests_by[what] = self.requests_by.get(what, 0) + 1
        url = self.api.configuration.host + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": accept, "Content-Type": content_type}
        self.api.update_params_for_auth(headers, [], ["BearerToken"], url, method, body)
        try:
            # the connection pool directly, with orjson: the client's request wrapper and the
            # standard json module cost about a quarter of a request's CPU (bench/README.md)
            response = self._pool().urlopen(
                method,
                url,
                body=None if body is None else orjson.dumps(body, default=_jsonable),
                headers=headers,
                timeout=self._timeout,
                preload_content=True,
            )
        except Exception as exc:  # connection refused, TLS, timeouts
            raise KubeError(0, f"API server unreachable: {exc}") from exc
        if response.status >= 400:
            if response.status == 404:
                raise NotFound(path)
            raise KubeError(response.status, response.data.decode(errors="replace")[:500])
        return orjson.loads(response.data) if response.data else {}

    def _pool(self) -> urllib3.connectionpool.HTTPConnectionPool:
        """The API server's connection pool (the client's, with its TLS and retry settings)."""
        if self._connections is None:
            self._connections = self.api.rest_client.pool_manager.connection_from_url(
                self.api.configuration.host
            )
        return self._connections

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        return self._call("GET", object_path(kind, namespace, name))

    def get_or_none(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.get(kind, namespace, name)
        except NotFound:
            return None

    def get_node(self, name: str) -> dict[str, Any]:
        """A Node (cluster-scoped, so outside the namespaced kinds above)."""
        return self._call("GET", f"/api/v1/nodes/{name}")

    def list(self, kind: str, namespace: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.list_with_version(kind, namespace, label_selector)[0]

    def list_with_version(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> tuple[list[dict[str, Any]], str]:
        """The items and the list's resourceVersion (what the list is a snapshot of)."""
        query = {"labelSelector": label_selector} if label_selector else None
        result = self._call("GET", object_path(kind, namespace), query=query)
        return result.get("items") or [], str((result.get("metadata") or {}).get("resourceVersion") or "0")

    def list_names(
        self, kind: str, namespace: str, label_selector: str | None = None
    ) -> tuple[set[str], str]:
        """The names of a LIST and its resourceVersion: metadata only (PartialObjectMetadata), in
        pages, so only one page of metadata is decoded and held at a time."""
        names: set[str] = set()
        version = "0"
        for items, listed_at in self.list_pages(object_path(kind, namespace), label_selector, METADATA_LIST):
            names.update(str((i.get("metadata") or {}).get("name")) for i in items)
            version = listed_at
        return names, version

    def list_pages(
        self, path: str, label_selector: str | None = None, accept: str = "application/json"
    ) -> Iterator[tuple[list[dict[str, Any]], str]]:
        """A LIST in pages of `LIST_PAGE_SIZE`: (items, the list's resourceVersion) per page. The
        pages are one snapshot; at 5000 objects one unpaged answer decoded at once raised the
        operator's peak RSS by about 70 MiB."""
        query = {
            "limit": str(LIST_PAGE_SIZE),
            **({"labelSelector": label_selector} if label_selector else {}),
        }
        version = None
        while True:
            result = self._call("GET", path, query=query, accept=accept)
            meta = result.get("metadata") or {}
            version = version or str(meta.get("resourceVersion") or "0")
            yield result.get("items") or [], version
            if not meta.get("continue"):
                return
            query = {**query, "continue": str(meta["continue"])}

    def stream(self, path: str, query: dict[str, str], read_timeout: float = 360.0) -> Iterator[bytes]:
        """The lines of a streaming GET (a watch), as they arrive; counted as one request."""
        with self._count_lock:
            self.request_count += 1
            what = ("WATCH", _resource_of(path))
            self.requests_by[what] = self.requests_by.get(what, 0) + 1
        url = f"{self.api.configuration.host}{path}?{urlencode(query)}"
        headers = {"Accept": "application/json"}
        self.api.update_params_for_auth(headers, [], ["BearerToken"], url, "GET", None)
        try:
            response = self._pool().urlopen(
                "GET",
                url,
                headers=headers,
                timeout=urllib3.Timeout(connect=self.timeout[0], read=read_timeout),
                preload_content=False,
                retries=False,
            )
        except Exception as exc:
            raise KubeError(0, f"API server unreachable: {exc}") from exc
        try:
            if response.status >= 400:
                raise KubeError(response.status, response.read().decode(errors="replace")[:500])
            rest = b""
            for chunk in response.stream(65536):
                rest += chunk
                *whole, rest = rest.split(b"\n")
                yield from whole
            if rest:
                yield rest
        finally:  # closed, not reused (it may be mid-stream), but its slot goes back to the pool
            response.close()
            response.release_conn()

    def apply(self, obj: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
        """Server-side apply under the operator's field manager, taking over conflicting fields."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["namespace"], meta["name"], subresource)
        query = {"fieldManager": self.field_manager, "force": "true"}
        return self._call("PATCH", path, body=obj, query=query, content_type="application/apply-patch+yaml")

    def patch_status(
        self,
        kind: str,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the status subresource (lists such as conditions are replaced whole).

        With `resource_version` the write fails with 409 if the object changed since it was read,
        so a user's concurrent abort or promote is never overwritten.
        """
        path = object_path(kind, namespace, name, "status")
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        return self._call("PATCH", path, body=body, content_type="application/merge-patch+json")

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """A JSON merge patch (used to scale revisions whose template is not re-rendered)."""
        path = object_path(kind, namespace, name)
        return self._call("PATCH", path, body=patch, content_type="application/merge-patch+json")

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        return self._call("POST", object_path(obj["kind"], meta["namespace"]), body=obj)

    def replace(self, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; fails with 409 unless metadata.resourceVersion is current."""
        meta = obj["metadata"]
        return self._call("PUT", object_path(obj["kind"], meta["namespace"], meta["name"]), body=obj)

    def create_if_absent(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """Create, or nothing when an object of that name exists (Jobs and EvalRuns are
        never re-applied: a Job's template is immutable). Returns the created object."""
        try:
            return self.create(obj)
        except KubeError as exc:
            if exc.status == 409 and "already exists" in exc.message:
                return None
            raise

    def patch_guarded(
        self, kind: str, namespace: str, name: str, patch: dict[str, Any], resource_version: str
    ) -> dict[str, Any]:
        """A merge patch that fails with 409 unless the object is still at `resource_version`
        (what the cache saw): a scale-down decided from a stale cache never lands."""
        body = {**patch, "metadata": {**patch.get("metadata", {}), "resourceVersion": resource_version}}
        return self.patch(kind, namespace, name, body)

    def post_event(self, involved: dict[str, Any], type_: str, reason: str, message: str, now: str) -> None:
        """A core/v1 Event on `involved` (a person reads these with kubectl describe). Events on
        cluster-scoped objects (Nodes) go to `default`, as the kubelet's do. A repeat updates the
        Event already posted (count, lastTimestamp), as client-go's recorder does (kube/events.py)."""
        meta = involved["metadata"]
        namespace = meta.get("namespace")
        event_namespace = namespace or "default"
        reason, message = reason[:128], bounded(message)
        identity = (event_namespace, str(involved.get("kind")), str(meta["name"]), str(meta.get("uid") or ""))
        stamp = datetime.strptime(now, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        decision = self.events.decide(identity, type_, reason, message, stamp, now)
        if decision.name is not None:
            patch = {"count": decision.count, "lastTimestamp": now, "message": decision.message}
            try:
                self.patch("Event", event_namespace, decision.name, patch)
                return
            except NotFound:
                self.events.forget(decision)  # expired (--event-ttl) or deleted: post it again
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": event_namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta["name"],
                **({"namespace": namespace} if namespace else {}),
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": decision.message,
            "source": {"component": self.field_manager},
            "reportingComponent": self.field_manager,
            "firstTimestamp": decision.first_timestamp,
            "lastTimestamp": now,
            "count": decision.count,
        }
        created = self.create(event)
        self.events.posted(decision, str((created.get("metadata") or {}).get("name") or ""))

    def delete(self, kind: str, namespace: str, name: str, observed: dict[str, Any] | None = None) -> bool:
        """Delete; with `observed`, only the object seen there (preconditions on UID and
        resourceVersion), so a cache that missed a re-create or an edit deletes nothing.
        Returns False when the preconditions did not hold (or it was gone already)."""
        body: dict[str, Any] = {"propagationPolicy": "Background"}
        meta = (observed or {}).get("metadata") or {}
        preconditions = {k: meta[k] for k in ("uid", "resourceVersion") if meta.get(k)}
        if preconditions:
            body["preconditions"] = preconditions
        try:
            self._call("DELETE", object_path(kind, namespace, name), body=body)
        except NotFound:
            return False
        except KubeError as exc:
            if exc.status == 409 and preconditions:
                return False
            raise
        return True
