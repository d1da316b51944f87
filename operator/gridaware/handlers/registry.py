"""The operator's in-memory view, rebuilt from the hub and member clusters after a restart.

It holds, per member cluster, a client, health, capacity and signals (from the cluster
daemon) and the gridaware Jobs seen by its watch; per GridAwareJob the last status this
operator wrote. Status writes for one job are serialised through ``update_status`` so that
the placement handler and the member watch never overwrite each other.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gridaware.api.signals import Reading
from gridaware.api.v1alpha1 import (
    GridAwareJobStatus,
    GridClusterSpec,
    MemberJobState,
    Resources,
)
from gridaware.core import lifecycle, money
from gridaware.core.placement import ClusterSnapshot
from gridaware.k8s import hub


@dataclass
class Member:
    name: str
    spec: GridClusterSpec
    labels: dict[str, str]
    client: Any = None
    reachable: bool = False
    version: str | None = None
    allocatable: Resources = field(default_factory=Resources)
    other_requests: Resources = field(default_factory=Resources)
    carbon: Reading | None = None
    price: Reading | None = None
    jobs: dict[str, MemberJobState] = field(default_factory=dict)  # owner "ns/name" -> state
    synced: threading.Event = field(default_factory=threading.Event)


@dataclass
class _JobStatus:
    status: GridAwareJobStatus
    raw: dict[str, Any]
    lock: threading.Lock = field(default_factory=threading.Lock)


class Registry:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.members: dict[str, Member] = {}
        self.pending: dict[str, tuple[str, Resources]] = {}  # owner -> (cluster, requests)
        self._status: dict[str, _JobStatus] = {}
        self.hub_client: Any = None

    # --- clusters ------------------------------------------------------------------------
    def upsert_member(self, name: str, spec: GridClusterSpec, labels: dict[str, str]) -> Member:
        with self.lock:
            m = self.members.get(name)
            if m is None:
                m = self.members[name] = Member(name, spec, labels)
            else:
                m.spec, m.labels = spec, labels
            return m

    def remove_member(self, name: str) -> None:
        with self.lock:
            self.members.pop(name, None)

    def all_synced(self) -> bool:
        with self.lock:
            return all(m.synced.is_set() or not m.reachable for m in self.members.values())

    def find_member_job(self, owner: str) -> MemberJobState | None:
        with self.lock:
            for m in self.members.values():
                if owner in m.jobs:
                    return m.jobs[owner]
        return None

    def free(self, member: Member) -> Resources:
        # plain float sums: this runs for every placement over every job of the cluster
        with self.lock:
            o = member.other_requests
            cpu, memory, gpu = o.cpu, o.memory, o.gpu
            for state in member.jobs.values():
                if not state.finished:
                    r = state.requests
                    cpu, memory, gpu = cpu + r.cpu, memory + r.memory, gpu + r.gpu
            for owner, (cluster, r) in self.pending.items():
                if cluster == member.name and owner not in member.jobs:
                    cpu, memory, gpu = cpu + r.cpu, memory + r.memory, gpu + r.gpu
            a = member.allocatable
            return Resources(cpu=a.cpu - cpu, memory=a.memory - memory, gpu=a.gpu - gpu)

    def snapshot(self) -> list[ClusterSnapshot]:
        with self.lock:
            out = []
            for m in self.members.values():
                cap = m.spec.capacity
                allocatable = m.allocatable
                if cap is not None:
                    from gridaware.core import quantity  # noqa: PLC0415

                    allocatable = Resources(
                        cpu=min(allocatable.cpu, quantity.parse(cap.cpu))
                        if cap.cpu
                        else allocatable.cpu,
                        memory=min(allocatable.memory, quantity.parse(cap.memory))
                        if cap.memory
                        else allocatable.memory,
                        gpu=min(allocatable.gpu, cap.gpu)
                        if cap.gpu is not None
                        else allocatable.gpu,
                    )
                free = self.free(m)
                free = Resources(
                    cpu=min(free.cpu, allocatable.cpu),
                    memory=min(free.memory, allocatable.memory),
                    gpu=min(free.gpu, allocatable.gpu),
                )
                price = None
                if m.price is not None:
                    try:
                        price = money.to_usd_per_mwh(m.price.value, m.price.unit)
                    except KeyError:
                        price = None
                out.append(
                    ClusterSnapshot(
                        name=m.name,
                        region=m.spec.region,
                        zone=m.spec.grid_zone,
                        labels=m.labels,
                        reachable=m.reachable and m.synced.is_set(),
                        allocatable=allocatable,
                        free=free,
                        carbon=m.carbon.value if m.carbon else None,
                        price_usd=price,
                        pue=m.spec.pue,
                        stale=bool((m.carbon and m.carbon.stale) or (m.price and m.price.stale)),
                    )
                )
            return out

    # --- job statuses --------------------------------------------------------------------
    def seed_status(self, key: str, raw: dict[str, Any] | None) -> None:
        """Remember the hub's status of a job unless this operator already wrote a newer one."""
        with self.lock:
            if key not in self._status:
                raw = dict(raw or {})
                self._status[key] = _JobStatus(GridAwareJobStatus.model_validate(raw), raw)

    def phase_counts(self) -> dict[tuple[str, str], int]:
        """(phase, cluster) -> number of jobs, from the statuses this operator knows."""
        counts: dict[tuple[str, str], int] = {}
        with self.lock:
            for entry in self._status.values():
                k = (entry.status.phase or "Pending", entry.status.cluster or "")
                counts[k] = counts.get(k, 0) + 1
        return counts

    def forget(self, key: str) -> None:
        with self.lock:
            self._status.pop(key, None)
            self.pending.pop(key, None)

    def status(self, key: str) -> GridAwareJobStatus | None:
        with self.lock:
            entry = self._status.get(key)
        return entry.status if entry else None

    def update_status(
        self, key: str, change: Callable[[GridAwareJobStatus], GridAwareJobStatus]
    ) -> bool:
        """Apply ``change`` to the job's status and write it to the hub if it changed."""
        with self.lock:
            entry = self._status.get(key)
            if entry is None:
                ns, name = key.split("/", 1)
                body = hub.get_job(self.hub_client, ns, name)
                if body is None:
                    return False
                raw = dict(body.get("status") or {})
                entry = self._status.setdefault(
                    key, _JobStatus(GridAwareJobStatus.model_validate(raw), raw)
                )
        with entry.lock:
            new = change(entry.status)
            diff = lifecycle.patch(entry.raw, new)
            if diff is None:
                return False
            ns, name = key.split("/", 1)
            hub.patch_job_status(self.hub_client, ns, name, diff)
            entry.status = new
            entry.raw = {**entry.raw, **diff}
            return True


REGISTRY = Registry()
