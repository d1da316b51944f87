"""Running pods and what their containers ask for, as plain data, for the lab's energy exporter
(which turns requests into a deterministic power draw, as a stand-in for Kepler and DCGM)."""

from __future__ import annotations

from dataclasses import dataclass

import kubernetes.client

from gridaware.core.quantity import parse
from gridaware.k8s.clients import DEFAULT_TIMEOUT

GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class ContainerDemand:
    name: str
    container_id: str
    cpu: float
    gpus: int


@dataclass(frozen=True)
class RunningPod:
    namespace: str
    name: str
    uid: str
    node: str
    containers: tuple[ContainerDemand, ...]


def _demand(container: kubernetes.client.V1Container, uid: str) -> ContainerDemand:
    res = container.resources
    requests = dict((res.requests or {}) if res else {})
    limits = dict((res.limits or {}) if res else {})
    cpu = requests.get("cpu") or limits.get("cpu") or "0"
    gpus = limits.get(GPU_RESOURCE) or requests.get(GPU_RESOURCE) or "0"
    return ContainerDemand(
        name=container.name,
        container_id=f"lab://{uid}/{container.name}",
        cpu=parse(str(cpu)),
        gpus=int(str(gpus)),
    )


def running_pods(client: kubernetes.client.ApiClient) -> list[RunningPod]:
    """Pods in phase Running on some node, in every namespace."""
    pods = kubernetes.client.CoreV1Api(client).list_pod_for_all_namespaces(
        field_selector="status.phase=Running", _request_timeout=DEFAULT_TIMEOUT
    )
    out = []
    for pod in pods.items:
        meta, spec = pod.metadata, pod.spec
        if meta is None or spec is None or not spec.node_name:
            continue
        uid = str(meta.uid)
        out.append(
            RunningPod(
                namespace=str(meta.namespace),
                name=str(meta.name),
                uid=uid,
                node=spec.node_name,
                containers=tuple(_demand(c, uid) for c in spec.containers),
            )
        )
    return out
