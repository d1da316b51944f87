"""Registering the lab's member clusters with the hub, as an admin would: install the CRDs,
store each member's kubeconfig in a Secret, and create a GridCluster per member.

Everything goes through ``kubectl apply`` with the lab's own kubectl, so this is exactly the
path a user takes with the printed manifests.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import yaml

from gridaware.api import crd
from gridaware.api.v1alpha1 import API_VERSION
from gridaware.k8s import kubectl as kubectl_cli
from gridaware.lab.errors import LabError
from gridaware.lab.model import LabState

SECRET_NAMESPACE = "gridaware-system"  # noqa: S105 - a namespace name, not a secret


def manifests(state: LabState) -> list[dict[str, Any]]:
    """Namespace, one kubeconfig Secret and one GridCluster per member (pure)."""
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SECRET_NAMESPACE}}
    ]
    for cluster in state.clusters:
        plan = cluster.plan
        if plan.role != "member":
            continue
        secret = f"{plan.name}-kubeconfig"
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": secret,
                    "namespace": SECRET_NAMESPACE,
                    "labels": {"app.kubernetes.io/part-of": "gridaware"},
                },
                "data": {"kubeconfig": base64.b64encode(cluster.kubeconfig.read_bytes()).decode()},
            }
        )
        docs.append(
            {
                "apiVersion": API_VERSION,
                "kind": "GridCluster",
                "metadata": {
                    "name": plan.name,
                    "labels": {
                        "gridaware.dev/lab": "true",
                        "topology.kubernetes.io/region": plan.region or plan.name,
                    },
                },
                "spec": {
                    "region": plan.region,
                    "gridZone": plan.grid_zone,
                    **({"priceZone": plan.price_zone} if plan.price_zone else {}),
                    "kubeconfigSecretRef": {
                        "namespace": SECRET_NAMESPACE,
                        "name": secret,
                        "key": "kubeconfig",
                    },
                    "pue": 1.2,
                },
            }
        )
    return docs


def kubectl(state: LabState, *args: str, stdin: str | None = None, context: str = "hub") -> str:
    if state.bin_dir is None:
        raise LabError("the lab state names no binary directory; recreate the lab")
    try:
        return kubectl_cli.run(
            Path(state.bin_dir) / "kubectl", state.kubeconfig, context, *args, stdin=stdin
        )
    except kubectl_cli.KubectlError as exc:
        raise LabError(str(exc)) from None


def register(state: LabState) -> None:
    """Install the CRDs on the hub and register every member cluster (idempotent)."""
    kubectl(state, "apply", "-f", "-", stdin="---\n".join(crd.render().values()))
    # a CRD that was just created may not have conditions yet, which `kubectl wait` rejects
    deadline = time.monotonic() + 60
    while True:
        try:
            kubectl(
                state,
                "wait",
                "--for",
                "condition=Established",
                "--timeout=30s",
                "crd/gridawarejobs.gridaware.dev",
                "crd/gridclusters.gridaware.dev",
            )
            break
        except LabError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    kubectl(state, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests(state)))
