"""The account archive on the hub: a copy of each finished job's account (with what a report
counts of its status) in ConfigMaps, so that ``gridaware report`` still covers jobs whose
GridAwareJob has been deleted.

One ConfigMap per month of completion and shard (``gridaware-accounts-2026-11-3``, 16 shards,
labelled ``gridaware.dev/archive=accounts``), one key per job (``<namespace>.<name>.<uid>``):
a record is about 1-3 kB, so a month holds some 5,000-15,000 jobs within the 1 MiB limit of
a ConfigMap. Writing the same key twice is harmless (a merge patch of the same value).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from gridaware.k8s.clients import DEFAULT_TIMEOUT

LABEL = "gridaware.dev/archive"
SHARDS = 16


def configmap_name(month: str, key: str) -> str:
    return f"gridaware-accounts-{month}-{zlib.crc32(key.encode()) % SHARDS}"


def data_key(namespace: str, name: str, uid: str) -> str:
    """A ConfigMap data key (``[-._a-zA-Z0-9]+``) for one job."""
    return f"{namespace}.{name}.{uid}"


class ConfigMapArchive:
    """``services.ledger.AccountArchive`` on the hub's API."""

    def __init__(self, client: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api = kubernetes.client.CoreV1Api(client)
        self.namespace = namespace

    def keep(self, month: str, key: str, record: dict[str, Any]) -> None:
        name = configmap_name(month, key)
        data = {key: json.dumps(record, separators=(",", ":"))}
        try:
            self.api.patch_namespaced_config_map(
                name, self.namespace, {"data": data}, _request_timeout=DEFAULT_TIMEOUT
            )
            return
        except ApiException as exc:
            if exc.status != 404:
                raise
        body = kubernetes.client.V1ConfigMap(
            metadata=kubernetes.client.V1ObjectMeta(name=name, labels={LABEL: "accounts"}),
            data=data,
        )
        try:
            self.api.create_namespaced_config_map(
                self.namespace, body, _request_timeout=DEFAULT_TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.api.patch_namespaced_config_map(  # created meanwhile by another writer
                name, self.namespace, {"data": data}, _request_timeout=DEFAULT_TIMEOUT
            )


def load(client: kubernetes.client.ApiClient, namespace: str) -> list[dict[str, Any]]:
    """Every archived record (GridAwareJob-shaped bodies: metadata and status)."""
    api = kubernetes.client.CoreV1Api(client)
    try:
        maps = api.list_namespaced_config_map(
            namespace, label_selector=f"{LABEL}=accounts", _request_timeout=(3.0, 60.0)
        )
    except ApiException as exc:
        if exc.status in (403, 404):
            return []
        raise
    out = []
    for cm in maps.items:
        for value in (cm.data or {}).values():
            record = json.loads(value)
            if isinstance(record, dict):
                out.append(record)
    return out
