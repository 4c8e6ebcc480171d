"""Binds every pending PersistentVolumeClaim of the dev cluster to a new hostPath volume.

Stands in for a storage provisioner (a CSI driver and its external-provisioner), which the dev
cluster does not have: without one, a Model's weight-cache PVC would stay Pending forever. For
each Pending claim with no volume, it creates a PersistentVolume of the claim's size and access
modes, pre-bound to the claim (`claimRef`); the real PV controller then binds the pair. The
hostPath is never written: KWOK pods run no containers.

    python -m llmops_sim.volumes --kubeconfig .cluster/kubeconfig [--once]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from llmops_sim.poller import Poller

PROVISIONED_BY = "llmops-sim-volumes"


def volume_for(claim: Any) -> dict[str, Any]:
    """The PersistentVolume that satisfies `claim` (a V1PersistentVolumeClaim)."""
    meta, spec = claim.metadata, claim.spec
    size = (spec.resources.requests or {}).get("storage", "1Gi")
    volume: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": f"sim-{meta.uid}",
            "labels": {"app.kubernetes.io/managed-by": PROVISIONED_BY},
            "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONED_BY},
        },
        "spec": {
            "capacity": {"storage": size},
            "accessModes": list(spec.access_modes or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": "Delete",
            "hostPath": {"path": f"/var/lib/llmops-sim/{meta.namespace}/{meta.name}"},
            "claimRef": {"namespace": meta.namespace, "name": meta.name, "uid": meta.uid},
        },
    }
    if spec.storage_class_name:
        volume["spec"]["storageClassName"] = spec.storage_class_name
    if spec.volume_mode:
        volume["spec"]["volumeMode"] = spec.volume_mode
    return volume


def provision_pending(core: k8s.CoreV1Api) -> list[str]:
    """Create a volume for every Pending claim that has none; returns the claims served."""
    served = []
    for claim in core.list_persistent_volume_claim_for_all_namespaces().items:
        if claim.status.phase != "Pending" or claim.spec.volume_name or claim.metadata.deletion_timestamp:
            continue
        try:
            core.create_persistent_volume(volume_for(claim))
        except k8s.ApiException as exc:
            if exc.status != 409:  # 409: created on an earlier pass, binding in progress
                raise
            continue
        served.append(f"{claim.metadata.namespace}/{claim.metadata.name}")
    return served


def release_orphans(core: k8s.CoreV1Api) -> None:
    """Delete our volumes whose claim is gone (the reclaim policy a real provisioner applies)."""
    for volume in core.list_persistent_volume(
        label_selector=f"app.kubernetes.io/managed-by={PROVISIONED_BY}"
    ).items:
        if volume.status.phase == "Released":
            with contextlib.suppress(k8s.ApiException):
                core.delete_persistent_volume(volume.metadata.name)


class VolumeProvisioner(Poller):
    """The provisioner as a background thread (tests, the demo)."""

    name = "volume-provisioner"

    def __init__(self, api_client: k8s.ApiClient, interval: float = 1.0) -> None:
        super().__init__(interval)
        self.core = k8s.CoreV1Api(api_client)

    def poll(self) -> None:
        provision_pending(self.core)
        release_orphans(self.core)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llmops_sim.volumes", description=__doc__)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    core = k8s.CoreV1Api(k8s_config.new_client_from_config(config_file=args.kubeconfig))
    while True:
        with contextlib.suppress(Exception):  # an API server restart must not end the provisioner
            for name in provision_pending(core):
                print(f"provisioned a hostPath volume for {name}", flush=True)
            release_orphans(core)
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    raise SystemExit(main())
