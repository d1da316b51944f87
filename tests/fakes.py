"""In-memory collaborators for the service tests: a hub, member clusters, feeds, an event
recorder and a clock, at the services' boundary (``gridaware.services.ports``).

They behave like the real gateways where the services can tell: a status patch is a JSON
merge patch, a same-name Job of another owner is a ``ConflictError``, a deleted Job is gone
from the next list. The Kubernetes API itself is exercised by the e2e tests on the lab.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gridaware.api.signals import EmissionKind, Quality, Reading, Series, Signal, from_epoch
from gridaware.api.v1alpha1 import (
    OWNER_ANNOTATION,
    OWNER_UID_ANNOTATION,
    TTL_ANNOTATION,
    MemberJobState,
    Resources,
    rfc3339,
)
from gridaware.core import quantity
from gridaware.core.clock import GridClock
from gridaware.k8s.gateway import ConflictError, NotFoundError, RejectedError, UnavailableError
from gridaware.services import operator
from gridaware.services.ports import Clock, Settings

T0 = 1_699_999_200.0  # 2023-11-14T22:00:00Z (on the hour, like grid signals)


def merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = dict(target)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


class FakeClock(Clock):
    def __init__(self, t: float = T0) -> None:
        self.t = t
        super().__init__(GridClock(t, t, 1.0), self.now)

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class FakeJob:
    manifest: dict[str, Any]
    uid: str
    state: str = "Active"  # Active | Running | Complete | Failed
    started: float | None = None
    finished: float | None = None


@dataclass
class FakeMember:
    name: str
    allocatable: Resources = field(default_factory=lambda: Resources(cpu=64, memory=256e9, gpu=8))
    other: Resources = field(default_factory=Resources)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    pods: dict[str, int] = field(default_factory=dict)  # job label -> pods left
    down: bool = False
    refuse: str | None = None  # the API server's message for any create (admission)
    creates: int = 0
    rv: int = 0

    def _check(self) -> None:
        if self.down:
            raise UnavailableError(f"{self.name} does not answer")

    def server_version(self) -> str:
        self._check()
        return "v1.37.2"

    def capacity(self) -> tuple[Resources, Resources]:
        self._check()
        return self.allocatable, self.other

    def create_job(self, manifest: dict[str, Any]) -> str:
        self._check()
        if self.refuse is not None:
            self.creates += 1
            raise RejectedError(self.refuse)
        meta = manifest["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        existing = self.jobs.get(key)
        if existing is not None:
            owner = existing.manifest["metadata"].get("annotations", {}).get(OWNER_UID_ANNOTATION)
            if owner != meta["annotations"][OWNER_UID_ANNOTATION]:
                raise ConflictError(f"a Job {key} not created by this GridAwareJob already exists")
            return existing.uid
        self.creates += 1
        self.rv += 1
        self.jobs[key] = FakeJob(copy.deepcopy(manifest), str(uuid.uuid4()))
        return self.jobs[key].uid

    def delete_job(
        self, namespace: str, name: str, grace_seconds: int | None = None, kind: str = "Job"
    ) -> bool:
        self._check()
        return self.jobs.pop(f"{namespace}/{name}", None) is not None

    def remaining_pods(self, namespace: str, job_label: str) -> int:
        self._check()
        return self.pods.get(job_label, 0)

    def set_suspended(self, namespace: str, name: str, suspended: bool, kind: str = "Job") -> None:
        self._check()
        job = self.jobs.get(f"{namespace}/{name}")
        if job is None:
            raise NotFoundError(f"{namespace}/{name}")
        if suspended and job.state in ("Active", "Running"):
            job.state = "Suspended"
        elif not suspended and job.state == "Suspended":
            job.state = "Active"

    def state(self, key: str) -> MemberJobState:
        job = self.jobs[key]
        meta, spec = job.manifest["metadata"], job.manifest["spec"]
        ann = meta.get("annotations") or {}
        ttl = ann.get(TTL_ANNOTATION)
        return MemberJobState(
            cluster=self.name,
            namespace=meta["namespace"],
            name=meta["name"],
            uid=job.uid,
            owner_uid=ann.get(OWNER_UID_ANNOTATION),
            owner=ann.get(OWNER_ANNOTATION),
            active=1 if job.state in ("Active", "Running") else 0,
            ready=1 if job.state == "Running" else 0,
            complete=job.state == "Complete",
            failed_condition=job.state == "Failed",
            start_time=None if job.started is None else rfc3339(job.started),
            completion_time=None if job.finished is None else rfc3339(job.finished),
            requests=(
                quantity.jobset_requests(spec)
                if self._kind(key) == "JobSet"
                else quantity.job_requests(spec)
            )[0],
            kind="JobSet" if self._kind(key) == "JobSet" else "Job",
            ttl_after_finished=None if ttl is None else int(ttl),
        )

    def list_jobs(self, cluster: str) -> tuple[list[MemberJobState], str]:
        self._check()
        return [self.state(k) for k in self.jobs if self._kind(k) == "Job"], str(self.rv)

    def list_jobsets(self, cluster: str) -> list[MemberJobState]:
        self._check()
        return [self.state(k) for k in self.jobs if self._kind(k) == "JobSet"]

    def _kind(self, key: str) -> str:
        return str(self.jobs[key].manifest.get("kind", "Job"))

    def watch_jobs(
        self, cluster: str, resource_version: str, seconds: int
    ) -> Iterator[tuple[str, MemberJobState]]:
        self._check()
        return iter(())


class FakeHub:
    def __init__(self, members: dict[str, FakeMember]) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.clusters: dict[str, dict[str, Any]] = {}  # name -> status written
        self.cluster_specs: dict[str, dict[str, Any]] = {}  # name -> GridCluster spec
        self.members = members
        self.secrets: dict[str, str] = {}  # secret name -> version
        self.connects: list[str] = []
        self.patches = 0

    def add_job(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        body = {
            "apiVersion": "gridaware.dev/v1alpha1",
            "kind": "GridAwareJob",
            "metadata": {
                "namespace": namespace,
                "name": name,
                "uid": str(uuid.uuid4()),
                "generation": 1,
                "creationTimestamp": rfc3339(T0),
            },
            "spec": spec,
            "status": {},
        }
        self.jobs[f"{namespace}/{name}"] = body
        return body

    def body(self, key: str) -> dict[str, Any]:
        return copy.deepcopy(self.jobs[key])

    def patch_job_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        key = f"{namespace}/{name}"
        if key not in self.jobs:
            raise NotFoundError(key)
        self.patches += 1
        self.jobs[key]["status"] = merge(self.jobs[key].get("status") or {}, patch)

    def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        body = self.jobs.get(f"{namespace}/{name}")
        return copy.deepcopy(body) if body else None

    def patch_cluster_status(self, name: str, status: dict[str, Any]) -> None:
        self.clusters[name] = status

    def list_clusters(self) -> list[dict[str, Any]]:
        return [
            {"metadata": {"name": name}, "spec": copy.deepcopy(spec)}
            for name, spec in self.cluster_specs.items()
        ]

    def connect_member(self, namespace: str, name: str, key: str) -> tuple[FakeMember, str]:
        self.connects.append(name)
        return self.members[name.removesuffix("-kubeconfig")], self.secrets.get(name, "1")

    def secret_version(self, namespace: str, name: str) -> str:
        return self.secrets.get(name, "1")


@dataclass
class FakeEvents:
    posted: list[tuple[str, str, str]] = field(default_factory=list)

    def post(self, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
        self.posted.append((obj["metadata"].get("name", ""), reason, message))

    def reasons(self) -> list[str]:
        return [r for _n, r, _m in self.posted]


class FakeFeeds:
    """Constant carbon (gCO2e/kWh) and price (USD/MWh) per zone; a zone set to None has no
    signal at all (an outage)."""

    def __init__(self, carbon: dict[str, float | None], price: dict[str, float] | None = None):
        self.carbon = carbon
        self.price = price or {}
        self.forecasts = 0
        self.now = lambda: T0
        self.hourly: dict[str, list[float]] = {}  # zone -> carbon by hour from T0 (forecasts)

    def _value(self, zone: str, signal: Signal) -> float:
        from gridaware.signals.errors import NoDataError  # noqa: PLC0415

        value = (self.carbon if signal is Signal.CARBON else self.price).get(zone)
        if value is None:
            raise NoDataError(f"no {signal.value} for {zone}")
        return value

    def reading(self, zone: str, signal: Signal) -> Reading:
        value = self._value(zone, signal)
        return Reading(
            zone=zone,
            signal=signal,
            value=value,
            unit="gCO2e/kWh" if signal is Signal.CARBON else "USD/MWh",
            kind=EmissionKind.AVERAGE if signal is Signal.CARBON else None,
            quality=Quality.MEASURED,
            source="fake",
            interval_start=from_epoch(self.now() // 3600 * 3600),
            age_seconds=0.0,
            stale=False,
        )

    def _series(self, zone: str, signal: Signal, t0: float, hours: int) -> Series:
        value = self._value(zone, signal)
        start = int(t0 // 3600 * 3600)
        return Series(
            zone,
            signal,
            "gCO2e/kWh" if signal is Signal.CARBON else "USD/MWh",
            "fake",
            start + 3600 * np.arange(hours, dtype=np.int64),
            np.full(hours, 3600, dtype=np.int32),
            self._values(zone, signal, start, hours, value),
            np.full(hours, int(Quality.FORECAST), dtype=np.int8),
            EmissionKind.AVERAGE if signal is Signal.CARBON else None,
        )

    def _values(
        self, zone: str, signal: Signal, start: int, hours: int, value: float
    ) -> np.ndarray[Any, np.dtype[np.float64]]:
        profile = self.hourly.get(zone) if signal is Signal.CARBON else None
        if not profile:
            return np.full(hours, value)
        first = int((start - T0) // 3600)
        return np.array([profile[min(max(0, first + h), len(profile) - 1)] for h in range(hours)])

    def forecast(self, zone: str, signal: Signal, hours: int | None = None) -> Series:
        self.forecasts += 1
        return self._series(zone, signal, self.now(), hours or 48)

    def history(self, zone: str, signal: Signal, hours: int | None = None) -> Series:
        h = hours or 168
        return self._series(zone, signal, self.now() - h * 3600, h + 2)


ZONES = {"us-west": "US-CAL-CISO", "eu-central": "DE-LU", "us-east": "US-MIDA-PJM"}


def _services(
    hub: FakeHub, events: FakeEvents, feeds: FakeFeeds, clock: FakeClock, settings: Settings | None
) -> operator.Services:
    return operator.build(hub, events, feeds, clock, settings or Settings(retry_delay=1))


@dataclass
class World:
    """A hub, three members and the operator's services, all in memory."""

    hub: FakeHub
    members: dict[str, FakeMember]
    feeds: FakeFeeds
    events: FakeEvents
    clock: FakeClock
    services: operator.Services

    @staticmethod
    def make(
        carbon: dict[str, float | None] | None = None, settings: Settings | None = None
    ) -> World:
        members = {name: FakeMember(name) for name in ZONES}
        hub = FakeHub(members)
        clock = FakeClock()
        feeds = FakeFeeds(
            carbon
            if carbon is not None
            else {"US-CAL-CISO": 300.0, "DE-LU": 100.0, "US-MIDA-PJM": 200.0},
            {"US-CAL-CISO": 80.0, "DE-LU": 150.0, "US-MIDA-PJM": 40.0},
        )
        feeds.now = clock.now
        events = FakeEvents()
        services = _services(hub, events, feeds, clock, settings)
        return World(hub, members, feeds, events, clock, services).started()

    def restart(self) -> World:
        """A new operator process over the same hub and members (nothing kept in memory)."""
        services = _services(self.hub, self.events, self.feeds, self.clock, self.services.settings)
        return World(
            self.hub, self.members, self.feeds, self.events, self.clock, services
        ).started()

    def started(self) -> World:
        services, world = self.services, self
        for name in ZONES:
            self.hub.cluster_specs.setdefault(name, cluster_spec(name))
        services.members.preload()  # as the operator does at start-up
        for name in ZONES:
            world.connect(name)
        return world

    def update_cluster(self, name: str, **fields: Any) -> None:
        """The admin updates GridCluster ``name`` (e.g. ``powerBudget=...``): the update
        handler registers the new spec."""
        self.services.members.register(name, cluster_spec(name, **fields), {})

    def connect(self, name: str) -> None:
        m = self.services.cache.member(name)
        assert m is not None
        self.services.members.probe(m)
        if m.reachable:
            self.services.members.sync(m)
        self.services.queue.run_due()  # the workers mirror what the member reported

    def sync(self) -> None:
        """What the member watches would report now (mirrored by the workers)."""
        for name in self.members:
            m = self.services.cache.member(name)
            if m is not None and m.reachable:
                self.services.members.sync(m)
        self.services.queue.run_due()

    def status(self, key: str) -> dict[str, Any]:
        return dict(self.hub.jobs[key].get("status") or {})

    def copies(self, key: str) -> list[str]:
        return [name for name, m in self.members.items() if key in m.jobs]


RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def cluster_spec(name: str, **fields: Any) -> dict[str, Any]:
    """The GridCluster spec of lab member ``name`` (its zone, its kubeconfig Secret)."""
    secret = {"namespace": "gridaware-system", "name": f"{name}-kubeconfig"}
    return {"region": name, "gridZone": ZONES[name], "kubeconfigSecretRef": secret, **fields}


def job_spec(cpu: str = "1", **extra: Any) -> dict[str, Any]:
    """A JobSpec that the default (restricted) pod security level admits."""
    container = {
        "name": "c",
        "image": "busybox",
        "resources": {"requests": {"cpu": cpu}},
        "securityContext": RESTRICTED_CONTAINER,
    }
    return {
        "template": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": RESTRICTED_POD,
                    "containers": [container],
                }
            }
        },
        **extra,
    }


# --- grid events (issue 14) ----------------------------------------------------------------


def grid_event(
    name: str,
    start: float,
    end: float,
    kind: str = "Curtail",
    zones: tuple[str, ...] = ("DE-LU",),
    mandatory: bool = False,
    **amount: float,
) -> dict[str, Any]:
    """A GridEvent body; ``amount`` is the curtail or absorb block, e.g. reducePercent=25."""
    spec: dict[str, Any] = {
        "targets": {"zones": list(zones)},
        "window": {"start": rfc3339(start), "end": rfc3339(end)},
        "kind": kind,
        "mandatory": mandatory,
        "curtail" if kind == "Curtail" else "absorb": dict(amount),
    }
    return {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridEvent",
        "metadata": {"name": name, "uid": str(uuid.uuid4()), "generation": 1},
        "spec": spec,
        "status": {},
    }


def start_running(world: World, keys: list[str], spec: dict[str, Any]) -> None:
    """Place each job and let its member Job's pods run."""
    for key in keys:
        ns, name = key.split("/")
        world.hub.add_job(ns, name, spec)
        world.services.placement.place(world.hub.body(key))
    for key in keys:
        cluster = world.status(key)["cluster"]
        job = world.members[cluster].jobs[key]
        job.state, job.started = "Running", world.clock.t
    world.sync()
