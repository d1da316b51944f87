"""GridCluster handlers: a daemon per member cluster keeps its client, health, capacity and
signals, and watches the Jobs gridaware created there, mirroring their state into the owning
GridAwareJobs."""

from __future__ import annotations

import logging
import time
from typing import Any

import kopf

from gridaware.api.signals import Reading, Signal
from gridaware.api.v1alpha1 import (
    Condition,
    GridClusterSpec,
    GridClusterStatus,
    MemberJobState,
    SignalStatus,
    now_rfc3339,
)
from gridaware.core import lifecycle
from gridaware.handlers import accounts, metrics
from gridaware.handlers.registry import REGISTRY, Member
from gridaware.handlers.runtime import RUNTIME
from gridaware.k8s import clients, hub, members
from gridaware.k8s.clients import FAILURES, NETWORK_ERRORS, ApiError
from gridaware.signals.errors import SignalError

log = logging.getLogger("gridaware.clusters")


@kopf.on.resume("gridaware.dev", "v1alpha1", "gridclusters")
@kopf.on.create("gridaware.dev", "v1alpha1", "gridclusters")
@kopf.on.update("gridaware.dev", "v1alpha1", "gridclusters")
def register(name: str, spec: kopf.Spec, labels: kopf.Labels, **_: Any) -> None:
    REGISTRY.upsert_member(name, GridClusterSpec.model_validate(dict(spec)), dict(labels))


@kopf.on.delete("gridaware.dev", "v1alpha1", "gridclusters", optional=True)
def unregister(name: str, **_: Any) -> None:
    REGISTRY.remove_member(name)


def _record_signal(zone: str, signal: Signal, r: Reading | None) -> None:
    if r is None:
        return
    metrics.SIGNAL.labels(zone, signal.value, r.source, r.unit).set(r.value)
    metrics.SIGNAL_AGE.labels(zone, signal.value).set(r.age_seconds)
    for err in r.errors:  # providers that failed before the one that answered
        metrics.SIGNAL_ERRORS.labels(zone, err.split(":", 1)[0]).inc()


def _signal_status(r: Reading | None) -> SignalStatus | None:
    if r is None:
        return None
    return SignalStatus(
        value=round(r.value, 2),
        unit=r.unit,
        source=r.source,
        kind=r.kind.value if r.kind else None,
        age_seconds=round(r.age_seconds),
        stale=r.stale,
    )


def _condition(
    conds: list[Condition], type_: str, ok: bool, reason: str, message: str, generation: int | None
) -> list[Condition]:
    return [
        Condition.model_validate(c.model_dump())
        for c in lifecycle.set_condition(
            conds, type_, "True" if ok else "False", reason, message, generation, now_rfc3339()
        )
    ]


class _Daemon:
    def __init__(self, name: str, body: dict[str, Any], stopped: Any) -> None:
        self.name = name
        self.body = body
        self.stopped = stopped
        self.status = GridClusterStatus.model_validate(body.get("status") or {})
        self.raw_status: dict[str, Any] = dict(body.get("status") or {})
        self.resource_version: str | None = None
        self.was_reachable: bool | None = None

    @property
    def member(self) -> Member | None:
        return REGISTRY.members.get(self.name)

    def _write_status(self, status: GridClusterStatus) -> None:
        new = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        comparable = {k: v for k, v in new.items() if k != "lastProbeTime"}
        if {k: v for k, v in self.raw_status.items() if k != "lastProbeTime"} == comparable:
            return
        hub.patch_cluster_status(REGISTRY.hub_client, self.name, new)
        self.raw_status, self.status = new, status

    def connect(self, m: Member) -> None:
        ref = m.spec.kubeconfig_secret_ref
        config = hub.read_kubeconfig_secret(REGISTRY.hub_client, ref.namespace, ref.name, ref.key)
        m.client = clients.from_kubeconfig(config)

    def read_signals(self, m: Member) -> list[str]:
        """Current carbon and price for the member's zones; the errors if there are none."""
        feeds = RUNTIME.feeds
        errors: list[str] = []
        if feeds is not None:
            for signal, zone in (
                (Signal.CARBON, m.spec.grid_zone),
                (Signal.PRICE, m.spec.price_zone or m.spec.grid_zone),
            ):
                try:
                    reading = feeds.reading(zone, signal)
                except SignalError as exc:
                    reading = None
                    errors.append(str(exc))
                    metrics.SIGNAL_ERRORS.labels(zone, "all").inc()
                _record_signal(zone, signal, reading)
                if signal is Signal.CARBON:
                    m.carbon = reading
                else:
                    m.price = reading
        return errors

    def probe(self, m: Member) -> None:
        gen = self.body.get("metadata", {}).get("generation")
        status = self.status.model_copy(deep=True)
        try:
            if m.client is None:
                self.connect(m)
            m.version = clients.server_version(m.client)
            allocatable, other = members.capacity(m.client)
            m.allocatable, m.other_requests = allocatable, other
            m.reachable = True
            status.conditions = _condition(
                status.conditions,
                "Reachable",
                True,
                "APIReachable",
                f"API server {m.version} answered",
                gen,
            )
        except hub.SecretError as exc:
            m.reachable, m.client = False, None
            status.conditions = _condition(
                status.conditions, "Reachable", False, "KubeconfigInvalid", str(exc), gen
            )
        except FAILURES as exc:
            m.reachable = False
            status.conditions = _condition(
                status.conditions,
                "Reachable",
                False,
                "ClusterUnreachable",
                f"{exc.__class__.__name__}: {str(exc)[:200]}",
                gen,
            )
        errors = self.read_signals(m)
        status.carbon, status.price = _signal_status(m.carbon), _signal_status(m.price)
        stale = any(r is None or r.stale for r in (m.carbon, m.price))
        ready = m.reachable and m.carbon is not None
        reason = "Ready" if ready else ("SignalsUnavailable" if m.reachable else "Unreachable")
        msg = "reachable, capacity and signals known" if ready else "; ".join(errors) or reason
        if ready and stale:
            reason, msg = "SignalsStale", "using stale or missing price/carbon values"
        status.conditions = _condition(status.conditions, "Ready", ready, reason, msg, gen)
        status.server_version = m.version
        status.allocatable = m.allocatable if m.reachable else status.allocatable
        status.free = REGISTRY.free(m) if m.reachable else status.free
        status.jobs = sum(1 for j in m.jobs.values() if not j.finished)
        status.last_probe_time = now_rfc3339()
        self._write_status(status)
        metrics.CLUSTER_REACHABLE.labels(self.name).set(1 if m.reachable else 0)
        metrics.JOBS.clear()
        for (phase, cluster), count in REGISTRY.phase_counts().items():
            metrics.JOBS.labels(phase, cluster).set(count)
        if self.was_reachable is not None and self.was_reachable != m.reachable:
            self._reachability_changed(m)
        self.was_reachable = m.reachable

    def _reachability_changed(self, m: Member) -> None:
        cond = next(c for c in self.status.conditions if c.type == "Reachable")
        hub.post_event(
            REGISTRY.hub_client,
            self.body,
            "Normal" if m.reachable else "Warning",
            cond.reason,
            f"member cluster {self.name}: {cond.message}",
        )
        for owner, state in list(m.jobs.items()):
            if state.finished:
                continue
            ok = m.reachable

            def change(s: Any, ok: bool = ok, msg: str = cond.message) -> Any:
                s = s.model_copy(deep=True)
                s.conditions = lifecycle.set_condition(
                    s.conditions,
                    "ClusterReachable",
                    "True" if ok else "False",
                    "ClusterReachable" if ok else "ClusterUnreachable",
                    f"cluster {self.name}: {msg}",
                    None,
                    now_rfc3339(),
                )
                return s

            try:
                REGISTRY.update_status(owner, change)
                job_body = hub.get_job(REGISTRY.hub_client, *owner.split("/", 1))
                if job_body is not None:
                    hub.post_event(
                        REGISTRY.hub_client,
                        job_body,
                        "Normal" if ok else "Warning",
                        "ClusterReachable" if ok else "ClusterUnreachable",
                        f"cluster {self.name}: {cond.message}",
                    )
            except ApiError as exc:
                log.warning("cannot mark %s: %s", owner, exc.reason)

    def observe(self, m: Member, state: MemberJobState, deleted: bool = False) -> None:
        owner = state.owner
        if not owner:
            return
        with REGISTRY.lock:
            if deleted:
                m.jobs.pop(owner, None)
            else:
                m.jobs[owner] = state
                REGISTRY.pending.pop(owner, None)
        if deleted:
            return
        current = REGISTRY.status(owner)
        if current is not None and (
            current.member_job is None or current.member_job.cluster != self.name
        ):
            return  # placed elsewhere (or not yet recorded): not this copy's business
        try:
            REGISTRY.update_status(owner, lambda s: lifecycle.mirror(s, state, None, now_rfc3339()))
            if state.finished:
                accounts.record(owner, state, m)
        except ApiError as exc:
            if exc.status != 404:
                log.warning("cannot mirror %s: %s", owner, exc.reason)

    def sync(self, m: Member) -> None:
        states, rv = members.list_jobs(m.client, self.name)
        with REGISTRY.lock:
            m.jobs = {s.owner: s for s in states if s.owner}
        for s in states:
            self.observe(m, s)
        self.resource_version = rv
        m.synced.set()

    def watch(self, m: Member, seconds: float) -> None:
        assert self.resource_version is not None
        for kind, state in members.watch_jobs(
            m.client, self.name, self.resource_version, max(1, int(seconds))
        ):
            self.resource_version = state.resource_version or self.resource_version
            self.observe(m, state, deleted=kind == "DELETED")
            if self.stopped:
                return

    def run(self) -> None:
        next_probe = 0.0
        while not self.stopped:
            m = self.member
            if m is None:
                self.stopped.wait(1)
                continue
            if time.monotonic() >= next_probe:
                self.probe(m)
                next_probe = time.monotonic() + RUNTIME.probe_interval
            if not m.reachable:
                m.synced.clear()
                self.stopped.wait(min(5.0, RUNTIME.probe_interval))
                continue
            try:
                if not m.synced.is_set() or self.resource_version is None:
                    self.sync(m)
                self.watch(m, max(1.0, next_probe - time.monotonic()))
            except ApiError as exc:
                if exc.status == 410:
                    self.resource_version = None  # expired: relist
                    m.synced.clear()
                else:
                    log.warning("watch of %s failed: %s", self.name, exc.reason)
                    next_probe = 0
            except NETWORK_ERRORS as exc:
                log.warning("member %s unreachable: %s", self.name, exc.__class__.__name__)
                next_probe = 0
                m.synced.clear()


@kopf.daemon("gridaware.dev", "v1alpha1", "gridclusters", cancellation_timeout=5.0)
def member_daemon(name: str, body: kopf.Body, stopped: kopf.DaemonStopped, **_: Any) -> None:
    _Daemon(name, dict(body), stopped).run()
