"""The operator's in-memory view, rebuilt from the hub and the members after a restart: per
member cluster its gateway, health, capacity, signals and the gridaware Jobs its watch saw;
capacity reserved by placements whose Job the watch has not seen yet.

The cache does no API I/O. Capacity sums are kept incrementally (a placement costs O(clusters),
not O(jobs)), and choosing a cluster and reserving its capacity happen under one lock, so two
placements racing for the last CPUs cannot both win.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from gridaware.api.signals import Reading
from gridaware.api.v1alpha1 import GridClusterSpec, MemberJobState, Resources
from gridaware.core import money, quantity
from gridaware.core.placement import ClusterSnapshot
from gridaware.services.ports import MemberPort


@dataclass
class Usage:
    """Requests of unfinished jobs, summed as plain floats (they may exceed allocatable)."""

    cpu: float = 0.0
    memory: float = 0.0
    gpu: float = 0.0

    def add(self, r: Resources, sign: float = 1.0) -> None:
        self.cpu += sign * r.cpu
        self.memory += sign * r.memory
        self.gpu += sign * r.gpu


@dataclass
class Member:
    name: str
    spec: GridClusterSpec
    labels: dict[str, str]
    api: MemberPort | None = None
    secret_version: str = ""
    reachable: bool = False
    synced: bool = False  # listed since it last became reachable: its Jobs are known
    settled: bool = False  # its first probe has ended: unreachable, or reachable and listed
    draining: bool = False  # its GridCluster is being deleted: no new work
    version: str | None = None
    allocatable: Resources = field(default_factory=Resources)
    other_requests: Resources = field(default_factory=Resources)
    carbon: Reading | None = None
    price: Reading | None = None
    jobs: dict[str, MemberJobState] = field(default_factory=dict)  # "ns/name" in the member
    used: Usage = field(default_factory=Usage)

    def usable(self) -> Resources:
        """Allocatable, capped by the GridCluster's capacity override."""
        cap, a = self.spec.capacity, self.allocatable
        if cap is None:
            return a
        return Resources(
            cpu=min(a.cpu, quantity.parse(cap.cpu)) if cap.cpu else a.cpu,
            memory=min(a.memory, quantity.parse(cap.memory)) if cap.memory else a.memory,
            gpu=min(a.gpu, cap.gpu) if cap.gpu is not None else a.gpu,
        )


def member_key(state: MemberJobState) -> str:
    return f"{state.namespace}/{state.name}"


class Cache:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.members: dict[str, Member] = {}
        self._reserved: dict[str, tuple[str, Resources]] = {}  # owner -> (cluster, requests)
        self._reserved_by: dict[str, Usage] = {}

    # --- members -------------------------------------------------------------------------
    def upsert_member(self, name: str, spec: GridClusterSpec, labels: dict[str, str]) -> Member:
        with self.lock:
            m = self.members.get(name)
            if m is None:
                m = self.members[name] = Member(name, spec, labels)
            else:
                if m.spec.kubeconfig_secret_ref != spec.kubeconfig_secret_ref:
                    m.api, m.secret_version = None, ""  # reconnect with the new Secret
                m.spec, m.labels = spec, labels
            return m

    def remove_member(self, name: str) -> None:
        with self.lock:
            self.members.pop(name, None)

    def member(self, name: str) -> Member | None:
        # no lock: one dict lookup is atomic, and every worker asks this for every job
        return self.members.get(name)

    # --- member Jobs ---------------------------------------------------------------------
    def set_job(self, m: Member, state: MemberJobState) -> None:
        with self.lock:
            old = m.jobs.get(member_key(state))
            if old is not None and not old.finished:
                m.used.add(old.requests, -1)
            m.jobs[member_key(state)] = state
            if not state.finished:
                m.used.add(state.requests)
            if state.owner:
                self._release_locked(state.owner, m.name)

    def drop_job(self, m: Member, key: str) -> MemberJobState | None:
        with self.lock:
            old = m.jobs.pop(key, None)
            if old is not None and not old.finished:
                m.used.add(old.requests, -1)
            return old

    def replace_jobs(self, m: Member, states: list[MemberJobState]) -> list[MemberJobState]:
        """Set the member's Jobs from a fresh list; returns the ones that disappeared."""
        with self.lock:
            listed = {member_key(x) for x in states}  # once: a relist may hold 10,000 Jobs
            gone = [s for k, s in m.jobs.items() if k not in listed]
            m.jobs, m.used = {}, Usage()
            for s in states:
                self.set_job(m, s)
            return gone

    def job_in(self, cluster: str, namespace: str, name: str) -> MemberJobState | None:
        with self.lock:
            m = self.members.get(cluster)
            return None if m is None else m.jobs.get(f"{namespace}/{name}")

    def find_job(self, namespace: str, name: str, owner_uid: str) -> MemberJobState | None:
        """The member Job that this GridAwareJob (by uid) created, in any cluster."""
        with self.lock:
            for m in self.members.values():
                state = m.jobs.get(f"{namespace}/{name}")
                if state is not None and state.owner_uid == owner_uid:
                    return state
        return None

    def all_synced(self, clusters: set[str] | None = None) -> bool:
        """Whether every (or each named) registered member's Jobs are known."""
        with self.lock:
            return all(
                m.synced for m in self.members.values() if clusters is None or m.name in clusters
            )

    # --- capacity ------------------------------------------------------------------------
    def _free_locked(self, m: Member) -> Resources:
        usable = m.usable()
        r = self._reserved_by.get(m.name, Usage())
        o = m.other_requests
        cpu = usable.cpu - o.cpu - m.used.cpu - r.cpu
        memory = usable.memory - o.memory - m.used.memory - r.memory
        gpu = usable.gpu - o.gpu - m.used.gpu - r.gpu
        # over-committed (cordoned nodes still holding pods, racing placements): no room,
        # never a negative amount
        return Resources(cpu=max(0.0, cpu), memory=max(0.0, memory), gpu=max(0.0, gpu))

    def free(self, m: Member) -> Resources:
        with self.lock:
            return self._free_locked(m)

    def reserve(self, owner: str, cluster: str, requests: Resources) -> bool:
        """Reserve ``requests`` in ``cluster`` for ``owner`` if they still fit (atomic)."""
        with self.lock:
            self._release_locked(owner, None)
            m = self.members.get(cluster)
            if m is None or not self._free_locked(m).fits(requests):
                return False
            self._reserved[owner] = (cluster, requests)
            self._reserved_by.setdefault(cluster, Usage()).add(requests)
            return True

    def release(self, owner: str) -> None:
        with self.lock:
            self._release_locked(owner, None)

    def _release_locked(self, owner: str, cluster: str | None) -> None:
        held = self._reserved.get(owner)
        if held is None or (cluster is not None and held[0] != cluster):
            return
        del self._reserved[owner]
        self._reserved_by[held[0]].add(held[1], -1)

    def unsettled(self) -> list[str]:
        """Members whose first probe has not ended: deciding before they are known would
        choose among the clusters that happened to answer first."""
        return sorted(m.name for m in list(self.members.values()) if not m.settled)

    # --- snapshot ------------------------------------------------------------------------
    def snapshot(self) -> list[ClusterSnapshot]:
        with self.lock:
            return [self._snapshot_of(m) for m in self.members.values()]

    def _snapshot_of(self, m: Member) -> ClusterSnapshot:
        price = None
        if m.price is not None:
            try:
                price = money.to_usd_per_mwh(m.price.value, m.price.unit)
            except KeyError:
                price = None
        return ClusterSnapshot(
            name=m.name,
            region=m.spec.region,
            zone=m.spec.grid_zone,
            labels=m.labels,
            reachable=m.reachable and m.synced and not m.draining,
            allocatable=m.usable(),
            free=self._free_locked(m),
            carbon=m.carbon.value if m.carbon else None,
            price_usd=price,
            pue=m.spec.pue,
            stale=bool((m.carbon and m.carbon.stale) or (m.price and m.price.stale)),
            carbon_kind=m.carbon.kind.value if m.carbon and m.carbon.kind else None,
        )
