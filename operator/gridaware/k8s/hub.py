"""The hub cluster: GridCluster and GridAwareJob objects, kubeconfig Secrets, Events.

Kopf watches the hub for the handlers; this module serves the code paths outside Kopf's
handler context (member watch threads, the CLI, tests) with the plain client.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import queue
import threading
from typing import Any

import kubernetes.client
import yaml
from kubernetes.client.exceptions import ApiException

from gridaware.api.v1alpha1 import GROUP, VERSION
from gridaware.k8s.clients import DEFAULT_TIMEOUT, FAILURES


class SecretError(RuntimeError):
    """The kubeconfig Secret is missing, lacks the key, or does not hold a kubeconfig."""


def read_kubeconfig_secret(
    client: kubernetes.client.ApiClient, namespace: str, name: str, key: str
) -> dict[str, Any]:
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
    return config


def _custom(client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(client)


def patch_job_status(
    client: kubernetes.client.ApiClient, namespace: str, name: str, status: dict[str, Any]
) -> None:
    _custom(client).patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        namespace,
        "gridawarejobs",
        name,
        {"status": status},
        _request_timeout=DEFAULT_TIMEOUT,
    )


def patch_cluster_status(
    client: kubernetes.client.ApiClient, name: str, status: dict[str, Any]
) -> None:
    _custom(client).patch_cluster_custom_object_status(
        GROUP, VERSION, "gridclusters", name, {"status": status}, _request_timeout=DEFAULT_TIMEOUT
    )


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


def post_event(
    client: kubernetes.client.ApiClient,
    obj: dict[str, Any],
    type_: str,
    reason: str,
    message: str,
    component: str = "gridaware",
) -> None:
    """An Event about ``obj`` (a GridAwareJob or GridCluster body); best effort."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace") or "default"
    now = dt.datetime.now(dt.UTC)
    event = kubernetes.client.CoreV1Event.model_validate(
        {
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
    )
    _RECORDER.submit(client, namespace, event)


class _Recorder:
    """Posts Events from a background thread, like client-go's event broadcaster: handlers
    never wait for them, and under a burst the queue is bounded (the oldest are dropped;
    the status carries the same information)."""

    def __init__(self, limit: int = 2000) -> None:
        self._queue: queue.Queue[tuple[Any, str, Any]] = queue.Queue(maxsize=limit)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, client: Any, namespace: str, event: Any) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="events", daemon=True)
                self._thread.start()
        while True:
            try:
                self._queue.put_nowait((client, namespace, event))
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    def _run(self) -> None:
        while True:
            client, namespace, event = self._queue.get()
            with contextlib.suppress(*FAILURES):
                kubernetes.client.CoreV1Api(client).create_namespaced_event(
                    namespace, event, _request_timeout=DEFAULT_TIMEOUT
                )


_RECORDER = _Recorder()
