"""Generic object helpers the lab, the tests and the operator share: namespaces and
ServiceAccounts."""

from __future__ import annotations

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from gridaware.k8s.clients import DEFAULT_TIMEOUT


def service_account_exists(client: kubernetes.client.ApiClient, namespace: str, name: str) -> bool:
    try:
        kubernetes.client.CoreV1Api(client).read_namespaced_service_account(
            name, namespace, _request_timeout=DEFAULT_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def ensure_namespace(
    client: kubernetes.client.ApiClient, name: str, labels: dict[str, str] | None = None
) -> bool:
    """Create namespace ``name`` if missing; True when this call created it."""
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": labels or {}},
    }
    try:
        kubernetes.client.CoreV1Api(client).create_namespace(
            kubernetes.client.V1Namespace.model_validate(body), _request_timeout=DEFAULT_TIMEOUT
        )
    except ApiException as exc:
        if exc.status == 409:
            return False
        raise
    return True


def delete_namespace(client: kubernetes.client.ApiClient, name: str) -> None:
    try:
        kubernetes.client.CoreV1Api(client).delete_namespace(name, _request_timeout=DEFAULT_TIMEOUT)
    except ApiException as exc:
        if exc.status != 404:
            raise
