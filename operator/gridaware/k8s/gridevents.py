"""GridEvent objects on the hub, for writers outside Kopf's handlers (the OpenADR VEN).

Kopf's timer reconciles each GridEvent and writes its status; the VEN creates the objects
from a utility's events, replaces their spec when the utility changes an event, and records
its reports in the status. A spec is replaced with a JSON patch of the whole ``/spec`` (a
merge patch would keep a ``curtail.reducePercent`` beside a new ``capKw``, which the CRD's
one-of rule refuses).
"""

from __future__ import annotations

from typing import Any

import kubernetes.client

from gridaware.api.v1alpha1 import GROUP, VERSION
from gridaware.k8s.clients import DEFAULT_TIMEOUT

PLURAL = "gridevents"


def _custom(client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


def list_gridevents(client: kubernetes.client.ApiClient) -> list[dict[str, Any]]:
    out = _custom(client).list_cluster_custom_object(
        GROUP, VERSION, PLURAL, _request_timeout=DEFAULT_TIMEOUT
    )
    return list(out.get("items", [])) if isinstance(out, dict) else []


def create_gridevent(client: kubernetes.client.ApiClient, body: dict[str, Any]) -> None:
    _custom(client).create_cluster_custom_object(
        GROUP, VERSION, PLURAL, body, _request_timeout=DEFAULT_TIMEOUT
    )


def replace_gridevent_spec(
    client: kubernetes.client.ApiClient, name: str, spec: dict[str, Any]
) -> None:
    """Replace the whole spec (a JSON patch: the client sends a list as one)."""
    _custom(client).patch_cluster_custom_object(
        GROUP,
        VERSION,
        PLURAL,
        name,
        [{"op": "replace", "path": "/spec", "value": spec}],
        _request_timeout=DEFAULT_TIMEOUT,
    )


def patch_gridevent_status(
    client: kubernetes.client.ApiClient, name: str, status: dict[str, Any]
) -> None:
    _custom(client).patch_cluster_custom_object_status(
        GROUP, VERSION, PLURAL, name, {"status": status}, _request_timeout=DEFAULT_TIMEOUT
    )
