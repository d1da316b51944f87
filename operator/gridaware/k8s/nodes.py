"""Node objects: registering KWOK fake nodes in lab clusters and counting ready ones."""

from __future__ import annotations

from collections.abc import Mapping

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from gridaware.k8s.clients import DEFAULT_TIMEOUT


def register_fake_node(
    client: kubernetes.client.ApiClient,
    name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    capacity: Mapping[str, str],
) -> None:
    """Create (or keep) a Node that a KWOK controller will drive; idempotent."""
    body = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": dict(labels), "annotations": dict(annotations)},
        "spec": {},
        "status": {"capacity": dict(capacity), "allocatable": dict(capacity)},
    }
    try:
        kubernetes.client.CoreV1Api(client).create_node(
            kubernetes.client.V1Node.model_validate(body), _request_timeout=DEFAULT_TIMEOUT
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


def ready_nodes(client: kubernetes.client.ApiClient) -> tuple[int, int]:
    """(ready, total) node counts."""
    nodes = kubernetes.client.CoreV1Api(client).list_node(_request_timeout=DEFAULT_TIMEOUT)
    ready = 0
    for node in nodes.items:
        for cond in (node.status.conditions if node.status else None) or []:
            if cond.type == "Ready" and cond.status == "True":
                ready += 1
    return ready, len(nodes.items)
