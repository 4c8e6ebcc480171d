"""Verdicts cannot be forged: the eval Job signs its result, the operator checks the signature.

EvalRun status is writable by anyone who may patch `evalruns/status` in the namespace (people
who promote or abort rollouts often may). So a phase alone is never taken at face value:

- the operator holds one secret master key (`OperatorContext.verdict_key`, from the Secret
  `llmops-operator-verdict-key` in its namespace or `LLMOPS_VERDICT_MASTER_KEY`), and derives a key per run,
  HMAC(master, "<namespace>/<name>"), which it writes into a Secret named after the run that only
  the eval Job it creates mounts (as the env `LLMOPS_VERDICT_KEY`, a secretKeyRef);
- the Job signs HMAC(run key, canonical JSON of the run's UID, revision, phase, failing
  assertions and candidate pass rate) into `status.signature`;
- the operator recomputes the run key from the master key and accepts the phase only when the
  signature matches; anything else is an Error naming the cause, never Passed or Failed.

The run's UID is in the signed text, so a signature cannot be replayed onto another run (or a
re-created run of the same name). The master key never leaves the operator.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmops_operator.kube.client import KubeError, NotFound

KEY_ENV = "LLMOPS_VERDICT_KEY"
"""Environment variable holding the run key in the eval Job."""
MASTER_KEY_ENV = "LLMOPS_VERDICT_MASTER_KEY"
"""Environment variable that may hold the operator's master key (else the Secret below)."""
SECRET_KEY = "key"
"""Data key of the per-run Secret."""
MASTER_SECRET = "llmops-operator-verdict-key"
"""Secret in the operator's namespace holding the master key."""
SIGNED_PHASES = ("Passed", "Failed", "Error")


def new_master_key() -> str:
    """A fresh master key (hex), for the operator's Secret."""
    return secrets.token_hex(32)


def run_key(master: bytes, namespace: str, name: str) -> str:
    """The key of one EvalRun, derived so the operator never has to store it."""
    return hmac.new(master, f"{namespace}/{name}".encode(), hashlib.sha256).hexdigest()


def _number(value: Any) -> str | None:
    """Numbers as text with fixed precision: JSON gives back `1` for the `1.0` that was signed."""
    try:
        return None if value is None else f"{float(value):.6f}"
    except (TypeError, ValueError):
        return str(value)


def _signed_text(uid: str, status: Mapping[str, Any]) -> bytes:
    candidate = status.get("candidate") or {}
    body = {
        "uid": uid,
        "revision": status.get("revision"),
        "phase": status.get("phase"),
        "failingAssertions": [str(a) for a in status.get("failingAssertions") or []],
        "passRate": _number(candidate.get("passRate") if isinstance(candidate, Mapping) else None),
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(key: str, uid: str, status: Mapping[str, Any]) -> str:
    """The signature the eval Job writes into `status.signature`."""
    return hmac.new(key.encode(), _signed_text(uid, status), hashlib.sha256).hexdigest()


def verify(master: bytes, eval_run: Mapping[str, Any]) -> bool:
    """Whether the EvalRun's status was signed by the Job the operator started for it."""
    meta = eval_run.get("metadata") or {}
    status = eval_run.get("status") or {}
    signature = status.get("signature")
    if not master or not isinstance(signature, str) or not meta.get("uid"):
        return False
    key = run_key(master, str(meta.get("namespace")), str(meta.get("name")))
    return hmac.compare_digest(signature, sign(key, str(meta["uid"]), status))


def trusted(master: bytes, eval_run: Mapping[str, Any]) -> Mapping[str, Any]:
    """The run as the operator may believe it: a finished phase without a valid signature reads
    as an Error naming the cause. Without a master key (unit plans) every run is taken as is."""
    status = eval_run.get("status") or {}
    if not master or status.get("phase") not in SIGNED_PHASES or verify(master, eval_run):
        return eval_run
    forged = {
        "phase": "Error",
        "message": f"EvalRun {(eval_run.get('metadata') or {}).get('name')} reports "
        f"{status.get('phase')} without the signature of the eval Job the "
        "operator started for it; the verdict is ignored (was the status written by hand?)",
    }
    return {**eval_run, "status": forged}


def key_secret(eval_run: Mapping[str, Any], master: bytes, owner: Mapping[str, Any]) -> dict[str, Any]:
    """The Secret `<run>` the eval Job reads its run key from (owned like the Job)."""
    meta = eval_run["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": meta["name"],
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "ownerReferences": [dict(owner)],
        },
        "type": "Opaque",
        "stringData": {SECRET_KEY: run_key(master, meta["namespace"], meta["name"])},
    }


SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def load_master_key(kube: Any) -> bytes:
    """The master key: `LLMOPS_VERDICT_KEY`, else the Secret `llmops-operator-verdict-key` in the
    operator's namespace (created on first start), else a key for this process only (logged: a
    restart then turns running evaluations into Errors, never into a verdict)."""
    log = logging.getLogger("llmops.verdict")
    if os.environ.get(MASTER_KEY_ENV):
        return os.environ[MASTER_KEY_ENV].encode()
    ns_file = Path(SERVICE_ACCOUNT_NAMESPACE)
    namespace = os.environ.get("LLMOPS_NAMESPACE") or (
        ns_file.read_text().strip() if ns_file.exists() else ""
    )
    if namespace:
        try:
            try:
                secret = kube.get("Secret", namespace, MASTER_SECRET)
            except NotFound:
                body = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": MASTER_SECRET, "namespace": namespace},
                    "type": "Opaque",
                    "stringData": {SECRET_KEY: new_master_key()},
                }
                try:
                    kube.create(body)
                except KubeError as exc:
                    if exc.status != 409:  # 409: another replica created it first
                        raise
                secret = kube.get("Secret", namespace, MASTER_SECRET)
            value = (secret.get("data") or {}).get(SECRET_KEY)
            if value:
                return base64.b64decode(value)
        except (KubeError, NotFound) as exc:
            log.warning("cannot read or create Secret %s/%s (%s)", namespace, MASTER_SECRET, exc)
    log.warning(
        "no verdict master key stored (set %s or LLMOPS_NAMESPACE): using one for this process only; "
        "evaluations running across a restart will end in Error",
        MASTER_KEY_ENV,
    )
    return new_master_key().encode()
