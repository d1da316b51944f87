"""Registering the lab's member clusters with the hub, as an admin would: install the CRDs
with kubectl, then ``gridaware member join`` for each member.

The join path is the documented one for real clusters: each member gets the operator's
least-privilege ServiceAccount and the hub stores only that account's token, never the lab's
admin certificates, so every lab test runs the operator with the member role it ships with.
"""

from __future__ import annotations

import time
from pathlib import Path

from gridaware.api import crd
from gridaware.k8s import clients, membership
from gridaware.k8s import kubectl as kubectl_cli
from gridaware.lab.errors import LabError
from gridaware.lab.model import ClusterState, LabState

SECRET_NAMESPACE = membership.HUB_SECRET_NAMESPACE


def join_request(cluster: ClusterState) -> membership.JoinRequest:
    """What ``member join`` is given for a lab member (pure): its region and zones, any
    namespace but the system ones, and the labels lab tests select on."""
    plan = cluster.plan
    return membership.JoinRequest(
        name=plan.name,
        region=plan.region or plan.name,
        grid_zone=plan.grid_zone or "",
        price_zone=plan.price_zone,
        pue=1.2,
        labels={
            "gridaware.dev/lab": "true",
            "topology.kubernetes.io/region": plan.region or plan.name,
        },
    )


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
    hub = clients.from_kubeconfig(state.cluster("hub").kubeconfig)
    try:
        for cluster in state.clusters:
            if cluster.plan.role != "member":
                continue
            member = clients.from_kubeconfig(cluster.kubeconfig)
            try:
                membership.join(member, hub, join_request(cluster), server=cluster.api_url)
            finally:
                member.close()  # type: ignore[no-untyped-call]
    finally:
        hub.close()  # type: ignore[no-untyped-call]
