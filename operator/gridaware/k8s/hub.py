"""The hub cluster: GridCluster and GridAwareJob objects, kubeconfig Secrets, Events.

Kopf watches the hub for the handlers; this module serves the code paths outside Kopf's
handler context (member watch threads, the CLI, tests) with the plain client.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import kubernetes.client
import yaml
from kubernetes.client.exceptions import ApiException

from gridaware.api.v1alpha1 import GROUP, VERSION
from gridaware.k8s.clients import DEFAULT_TIMEOUT, MERGE_PATCH, request_json


class SecretError(RuntimeError):
    """The kubeconfig Secret is missing, lacks the key, or does not hold a kubeconfig."""


def read_kubeconfig_secret(
    client: kubernetes.client.ApiClient, namespace: str, name: str, key: str
) -> tuple[dict[str, Any], str]:
    """The kubeconfig in the Secret and the Secret's resourceVersion."""
    try:
        secret = kubernetes.client.CoreV1Api(client).read_namespaced_secret(
            name, namespace, _request_timeout=DEFAULT_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            raise SecretError(f"Secret {namespace}/{name} does not exist") from None
        raise
    data = (secret.data or {}).get(key)
    if data is None:
        raise SecretError(f"Secret {namespace}/{name} has no key '{key}'")
    try:
        config = yaml.safe_load(base64.b64decode(data))
    except (ValueError, yaml.YAMLError) as exc:
        raise SecretError(
            f"Secret {namespace}/{name} key '{key}' is not a kubeconfig: {exc.__class__.__name__}"
        ) from None
    if not isinstance(config, dict) or not config.get("clusters"):
        raise SecretError(f"Secret {namespace}/{name} key '{key}' is not a kubeconfig")
    return config, str((secret.metadata.resource_version if secret.metadata else "") or "")


def secret_version(client: kubernetes.client.ApiClient, namespace: str, name: str) -> str:
    """The Secret's resourceVersion (metadata only), to notice rotated credentials."""
    try:
        meta = (
            kubernetes.client.CoreV1Api(client)
            .read_namespaced_secret(name, namespace, _request_timeout=DEFAULT_TIMEOUT)
            .metadata
        )
    except ApiException as exc:
        if exc.status == 404:
            raise SecretError(f"Secret {namespace}/{name} does not exist") from None
        raise
    return str((meta.resource_version if meta else "") or "")


def _custom(client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


def patch_job_status(
    client: kubernetes.client.ApiClient, namespace: str, name: str, status: dict[str, Any]
) -> None:
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/gridawarejobs/{name}/status"
    request_json(client, "PATCH", path, {"status": status}, content_type=MERGE_PATCH, answer=False)


def patch_cluster_status(
    client: kubernetes.client.ApiClient, name: str, status: dict[str, Any]
) -> None:
    path = f"/apis/{GROUP}/{VERSION}/gridclusters/{name}/status"
    request_json(client, "PATCH", path, {"status": status}, content_type=MERGE_PATCH, answer=False)


def list_jobs(client: kubernetes.client.ApiClient) -> list[dict[str, Any]]:
    out = _custom(client).list_cluster_custom_object(
        GROUP, VERSION, "gridawarejobs", _request_timeout=(3.0, 60.0)
    )
    return _items(out)


def _items(out: Any) -> list[dict[str, Any]]:
    return list(out.get("items", [])) if isinstance(out, dict) else []


def get_job(
    client: kubernetes.client.ApiClient, namespace: str, name: str
) -> dict[str, Any] | None:
    try:
        out = _custom(client).get_namespaced_custom_object(
            GROUP, VERSION, namespace, "gridawarejobs", name, _request_timeout=DEFAULT_TIMEOUT
        )
        return out if isinstance(out, dict) else None
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def list_clusters(client: kubernetes.client.ApiClient) -> list[dict[str, Any]]:
    out = _custom(client).list_cluster_custom_object(
        GROUP, VERSION, "gridclusters", _request_timeout=DEFAULT_TIMEOUT
    )
    return _items(out)


def event_body(
    obj: dict[str, Any], type_: str, reason: str, message: str, component: str = "gridaware"
) -> tuple[str, dict[str, Any]]:
    """(namespace, Event) about ``obj`` (a GridAwareJob or GridCluster body)."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace") or "default"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": component},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": component,
    }
    return namespace, event


def post_event(client: kubernetes.client.ApiClient, namespace: str, event: dict[str, Any]) -> None:
    request_json(client, "POST", f"/api/v1/namespaces/{namespace}/events", event, answer=False)


def peering_status(client: kubernetes.client.ApiClient, name: str) -> dict[str, Any]:
    """The peers Kopf records in a ClusterKopfPeering (identity -> priority, lastseen,
    lifetime); empty when the object does not exist."""
    try:
        body = _custom(client).get_cluster_custom_object(
            "kopf.dev", "v1", "clusterkopfpeerings", name, _request_timeout=DEFAULT_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return {}
        raise
    return dict((body or {}).get("status") or {}) if isinstance(body, dict) else {}


def get_cluster(client: kubernetes.client.ApiClient, name: str) -> dict[str, Any] | None:
    try:
        out = _custom(client).get_cluster_custom_object(
            GROUP, VERSION, "gridclusters", name, _request_timeout=DEFAULT_TIMEOUT
        )
        return out if isinstance(out, dict) else None
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
