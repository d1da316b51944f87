"""The operator's doors to Kubernetes: the hub (statuses, Events, kubeconfig Secrets) and each
member cluster (Jobs, pods, capacity), as objects whose methods raise domain errors.

Services above this layer never see an ``ApiException`` or an HTTP status code: a refusal
is ``RejectedError`` (with the API server's message), a same-name object that is not ours is
``ConflictError``, a missing one ``NotFoundError``, a refused credential ``UnauthorizedError``
and no answer ``UnavailableError``. The in-memory doubles in the tests raise the same errors,
so a scenario behaves alike in a table-driven test and on the lab.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from gridaware.api.v1alpha1 import MemberJobState, Resources
from gridaware.core import peering
from gridaware.core.ratelimit import TokenBucket
from gridaware.k8s import clients, gridevents, hub, members
from gridaware.k8s.clients import FAILURES

log = logging.getLogger("gridaware.peering")
events_log = logging.getLogger("gridaware.events")
P = ParamSpec("P")
T = TypeVar("T")


class GatewayError(RuntimeError):
    """A Kubernetes call did not do what was asked; subclasses say why."""


class UnavailableError(GatewayError):
    """The API server did not answer (network, timeout, 5xx)."""


class UnauthorizedError(GatewayError):
    """The credential was refused (401) or lacks a permission (403)."""


class NotFoundError(GatewayError):
    """The object does not exist."""


class ConflictError(GatewayError):
    """An object of that name exists and is not ours."""


class RejectedError(GatewayError):
    """The API server refused the object as invalid (400/422); the message says why."""


class ExpiredError(GatewayError):
    """A watch's resourceVersion is too old: list again."""


def _convert(exc: BaseException) -> GatewayError:
    if isinstance(exc, ApiException):
        status = exc.status or 0
        if status in (401, 403):
            return UnauthorizedError(f"{status} {exc.reason}")
        if status == 404:
            return NotFoundError(str(exc.reason))
        if status == 409:
            return ConflictError(str(exc.reason))
        if status == 410:
            return ExpiredError(str(exc.reason))
        refused = clients.rejection(exc)
        if refused is not None:
            return RejectedError(refused)
        return UnavailableError(f"{status} {exc.reason}")
    if isinstance(exc, ValueError):
        return ConflictError(str(exc))
    return UnavailableError(f"{exc.__class__.__name__}: {str(exc)[:200]}")


def _call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    try:
        return fn(*args, **kwargs)
    except (*FAILURES, ValueError) as exc:
        raise _convert(exc) from exc


class MemberApi:
    """One member cluster, reached with the kubeconfig of its GridCluster's Secret."""

    def __init__(
        self, client: kubernetes.client.ApiClient, namespace_labels: dict[str, str] | None = None
    ) -> None:
        self.client = client
        self.namespace_labels = namespace_labels or {}

    def server_version(self) -> str:
        return _call(clients.server_version, self.client)

    def capacity(self) -> tuple[Resources, Resources]:
        return _call(members.capacity, self.client)

    def create_job(self, manifest: dict[str, Any]) -> str:
        """Create the member workload (a Job or a JobSet; namespace on demand); its uid. An
        existing one of the same owner is returned as is; another owner's raises
        ``ConflictError``."""
        create = members.create_jobset if manifest["kind"] == "JobSet" else members.create_job
        uid, _created = _call(create, self.client, manifest, self.namespace_labels)
        return uid

    def delete_job(
        self, namespace: str, name: str, grace_seconds: int | None = None, kind: str = "Job"
    ) -> bool:
        delete = members.delete_jobset if kind == "JobSet" else members.delete_job
        return _call(delete, self.client, namespace, name, grace_seconds)

    def remaining_pods(self, namespace: str, job_label: str) -> int:
        return _call(members.remaining_pods, self.client, namespace, job_label)

    def set_suspended(self, namespace: str, name: str, suspended: bool, kind: str = "Job") -> None:
        suspend = members.set_jobset_suspended if kind == "JobSet" else members.set_suspended
        _call(suspend, self.client, namespace, name, suspended)

    def list_jobs(self, cluster: str) -> tuple[list[MemberJobState], str]:
        """The member's gridaware Jobs (with the resourceVersion to watch them from)."""
        return _call(members.list_jobs, self.client, cluster)

    def list_jobsets(self, cluster: str) -> list[MemberJobState]:
        return _call(members.list_jobsets, self.client, cluster)

    def watch_jobs(
        self, cluster: str, resource_version: str, seconds: int
    ) -> Iterator[tuple[str, MemberJobState]]:
        try:
            yield from members.watch_jobs(self.client, cluster, resource_version, seconds)
        except (*FAILURES, ValueError) as exc:
            raise _convert(exc) from exc


class HubApi:
    """The hub: GridAwareJob and GridCluster statuses and the members' kubeconfig Secrets."""

    def __init__(
        self, client: kubernetes.client.ApiClient, namespace_labels: dict[str, str] | None = None
    ) -> None:
        self.client = client
        self.namespace_labels = namespace_labels or {}

    def patch_job_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        _call(hub.patch_job_status, self.client, namespace, name, patch)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return _call(hub.get_job, self.client, namespace, name)

    def patch_cluster_status(self, name: str, status: dict[str, Any]) -> None:
        _call(hub.patch_cluster_status, self.client, name, status)

    def list_clusters(self) -> list[dict[str, Any]]:
        return _call(hub.list_clusters, self.client)

    def connect_member(self, namespace: str, name: str, key: str) -> tuple[MemberApi, str]:
        """A client for the member from its kubeconfig Secret, and the Secret's
        resourceVersion (a changed one means rotated credentials)."""
        config, version = _call(hub.read_kubeconfig_secret, self.client, namespace, name, key)
        try:
            client = clients.from_kubeconfig(config)
        except clients.KubeconfigError as exc:  # exec plugins, file paths: refused, never run
            raise hub.SecretError(f"Secret {namespace}/{name}: {exc}") from None
        return MemberApi(client, self.namespace_labels), version

    def secret_version(self, namespace: str, name: str) -> str:
        return _call(hub.secret_version, self.client, namespace, name)


class PeeringGate:
    """Whether this replica is the active one under Kopf peering (``core.peering``: no live
    peer outranks or ties it, and a newcomer waits until the others have seen it). Kopf
    pauses only its own handlers; the operator's background loop and member agents ask this
    gate too, so a paused replica never acts. Answers are cached for ``ttl`` seconds; without
    an answer from the hub the replica assumes it is not active (safe side)."""

    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        name: str,
        priority: int,
        clock: Callable[[], float],
        ttl: float = 2.0,
    ) -> None:
        self._client, self._name, self._priority, self._clock = client, name, priority, clock
        self._ttl = ttl
        self._checked = -1e18
        self._active = False
        self._said: bool | None = None  # the role last logged
        self._own_since: float | None = None
        self._lock = threading.Lock()

    def known(self) -> bool:
        """The last verdict, without asking the hub (safe on an event loop)."""
        return self._active

    def __call__(self) -> bool:
        with self._lock:
            now = self._clock()
            if now - self._checked < self._ttl:
                return self._active
            self._checked = now
            try:
                peers = hub.peering_status(self._client, self._name)
            except FAILURES:
                self._active = False
                return False
            verdict = peering.decide(
                [peering.Peer(int(p.get("priority", 0)), _alive(p, now)) for p in peers.values()],
                self._priority,
                now,
                self._own_since,
                self._ttl,
            )
            active, self._own_since = verdict.active, verdict.own_since
            if active != self._said:  # (the first verdict too: a standby says so)
                self._said = active
                log.info(
                    "%s (peering %s, priority %d)",
                    "active replica" if active else "standby replica",
                    self._name,
                    self._priority,
                )
            self._active = active
            return active


def _alive(peer: dict[str, Any], now: float) -> bool:
    seen = peer.get("lastseen")
    if not seen:
        return False
    try:
        t = dt.datetime.fromisoformat(str(seen).replace("Z", "+00:00"))
    except ValueError:
        return False
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp() + float(peer.get("lifetime", 60)) > now


class EventRecorder:
    """Posts Events from a background thread, like client-go's event broadcaster: services
    never wait for them, and under a burst the queue is bounded (the oldest are dropped; the
    status carries the same information). Normal Events of each reason are also limited to
    ``normal_rate`` per second (burst ``normal_burst``), so that placing ten thousand jobs does
    not add ten thousand writes to the hub; Warnings are never limited."""

    def __init__(
        self,
        client: kubernetes.client.ApiClient,
        limit: int = 2000,
        normal_rate: float = 5.0,
        normal_burst: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._queue: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue(maxsize=limit)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._rate, self._burst = normal_rate, normal_burst
        self._normal: dict[str, TokenBucket] = {}  # by reason: Placed bursts starve no Paused
        self._clock = clock
        self._skipped = 0
        self._told = clock()

    def post(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        """An Event about ``obj`` (a body or ``{apiVersion, kind, metadata}``)."""
        if type_ == "Normal" and not self._admit(reason):
            return
        namespace, event = hub.event_body(obj, type_, reason, message)
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="events", daemon=True)
                self._thread.start()
        while True:
            try:
                self._queue.put_nowait((namespace, event))
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()

    def _admit(self, reason: str) -> bool:
        now = self._clock()
        with self._lock:
            bucket = self._normal.setdefault(reason, TokenBucket(self._rate, self._burst))
            admitted = bucket.take(now)
            self._skipped += not admitted
            if self._skipped and (admitted or now - self._told >= 60.0):
                events_log.info("%d Normal Events not posted (rate limit)", self._skipped)
                self._skipped, self._told = 0, now
            return admitted

    def _run(self) -> None:
        while True:
            namespace, event = self._queue.get()
            with contextlib.suppress(*FAILURES):
                hub.post_event(self._client, namespace, event)


class GridEventApi:
    """GridEvents on the hub for the OpenADR VEN (``services.openadr.GridEventsPort``)."""

    def __init__(self, client: kubernetes.client.ApiClient) -> None:
        self.client = client

    def list_gridevents(self) -> list[dict[str, Any]]:
        return _call(gridevents.list_gridevents, self.client)

    def create_gridevent(self, body: dict[str, Any]) -> None:
        _call(gridevents.create_gridevent, self.client, body)

    def replace_gridevent_spec(self, name: str, spec: dict[str, Any]) -> None:
        _call(gridevents.replace_gridevent_spec, self.client, name, spec)

    def patch_gridevent_status(self, name: str, status: dict[str, Any]) -> None:
        _call(gridevents.patch_gridevent_status, self.client, name, status)


__all__ = [
    "ConflictError",
    "EventRecorder",
    "ExpiredError",
    "GatewayError",
    "GridEventApi",
    "HubApi",
    "MemberApi",
    "NotFoundError",
    "RejectedError",
    "UnauthorizedError",
    "UnavailableError",
]
