"""The member agent: per registered cluster a loop that keeps its client (reloaded when the
kubeconfig Secret changes or the credential is refused), health, capacity and signals, and
watches the Jobs gridaware created there, mirroring their state into the owning
GridAwareJobs.

A Job is trusted as a job's own only when its owner-uid annotation matches the GridAwareJob's
uid. A Job of a job that disappears before it finished (deleted outside gridaware, or missed
while the operator was down) is reported to the placement service, which places it again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from gridaware.api.signals import Reading, Signal
from gridaware.api.v1alpha1 import (
    API_VERSION,
    Condition,
    GridAwareJobStatus,
    GridClusterSpec,
    GridClusterStatus,
    MemberJobState,
    SignalStatus,
    parse_time,
    rfc3339,
)
from gridaware.core import lifecycle
from gridaware.k8s.gateway import ExpiredError, GatewayError, UnauthorizedError
from gridaware.k8s.hub import SecretError
from gridaware.services.accounts import AccountService
from gridaware.services.cache import Cache, Member, member_key
from gridaware.services.metrics import Metrics
from gridaware.services.placement import PlacementService, RetryLaterError
from gridaware.services.ports import Clock, EventsPort, HubPort, Settings, SignalsPort, Stopped
from gridaware.services.statuses import Statuses
from gridaware.signals.errors import SignalError

log = logging.getLogger("gridaware.members")

# how long a finished member Job is kept for its GridAwareJob's account at most (the account
# waits for the energy counters' last scrapes; one that never comes must not keep the Job)
ACCOUNT_GRACE_SECONDS = 600.0


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


def _cluster_ref(name: str) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": "GridCluster", "metadata": {"name": name}}


class MemberAgent:
    def __init__(
        self,
        cache: Cache,
        statuses: Statuses,
        hub: HubPort,
        placement: PlacementService,
        accounts: AccountService,
        events: EventsPort,
        feeds: SignalsPort | None,
        clock: Clock,
        settings: Settings,
        metrics: Metrics,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        self.active = active
        self.cache = cache
        self.statuses = statuses
        self.hub = hub
        self.placement = placement
        self.accounts = accounts
        self.events = events
        self.feeds = feeds
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        # the work queue's add: a member Job's change is mirrored into the hub by a worker
        # (None: here, in the watch thread, as the in-memory tests and a drain do)
        self.notify: Callable[[str], None] | None = None
        self._cluster_status: dict[str, dict[str, Any]] = {}
        self._rv: dict[str, str] = {}
        self._started = clock.wall()

    # --- GridCluster lifecycle -----------------------------------------------------------
    def register(self, name: str, spec: dict[str, Any], labels: dict[str, str]) -> None:
        self.cache.upsert_member(name, GridClusterSpec.model_validate(spec), labels)

    def preload(self) -> None:
        """Register every GridCluster the hub has, before any job is processed: Kopf hands
        them over one by one, and a job seen first would find no cluster (or only some).
        Placement then waits for each one's first probe (``Cache.unsettled``)."""
        try:
            bodies = self.hub.list_clusters()
        except GatewayError as exc:
            log.warning("cannot list GridClusters at start-up: %s", exc)
            return
        for body in bodies:
            meta = body.get("metadata") or {}
            if meta.get("deletionTimestamp"):
                continue
            try:
                self.register(meta["name"], body.get("spec") or {}, meta.get("labels") or {})
            except ValidationError as exc:  # its own handler reports it on the GridCluster
                log.info("GridCluster %s is invalid: %s", meta.get("name"), exc)

    def unregister(self, name: str) -> None:
        """The GridCluster is being deleted: no new work goes there; it is let go once no
        unfinished gridaware job is placed in it (they finish or move first)."""
        m = self.cache.member(name)
        if m is None:
            return
        m.draining = True
        # Kopf stops the member's loop once deletion is requested: follow its Jobs from here
        self.probe(m)
        if m.reachable:
            try:
                self.sync(m)
            except GatewayError as exc:
                log.info("draining %s: %s", name, exc)
        active = [
            r.key
            for r in self.statuses.records()
            if r.status.cluster == name and r.status.phase not in lifecycle.TERMINAL
        ]
        if active:
            raise RetryLaterError(
                f"{len(active)} unfinished jobs run in {name} (e.g. {active[0]}); the cluster is "
                "removed when they have finished or moved",
                10,
            )
        self.cache.remove_member(name)

    # --- the loop ------------------------------------------------------------------------
    def run(self, name: str, body: dict[str, Any], stopped: Stopped) -> None:
        self._cluster_status[name] = dict(body.get("status") or {})
        was: bool | None = None
        next_probe = 0.0
        while not stopped.is_set():
            m = self.cache.member(name)
            if m is None or not self.active():  # a paused HA replica does nothing
                if m is not None:
                    m.synced = False
                stopped.wait(1)
                continue
            if time.monotonic() >= next_probe:
                self.probe(m)
                next_probe = time.monotonic() + self.settings.probe_interval
                if was is not None and was != m.reachable:
                    self._reachability_changed(m)
                was = m.reachable
            if not m.reachable:
                m.synced = False
                stopped.wait(min(5.0, self.settings.probe_interval))
                continue
            try:
                if not m.synced or name not in self._rv:
                    self.sync(m)
                self.watch(m, max(1.0, next_probe - time.monotonic()), stopped)
            except ExpiredError:
                self._rv.pop(name, None)
                m.synced = False
            except UnauthorizedError as exc:
                log.warning("member %s refused our credential: %s", name, exc)
                m.api, m.synced, next_probe = None, False, 0.0
            except GatewayError as exc:
                log.warning("member %s: %s", name, exc)
                m.synced, next_probe = False, 0.0

    def sync(self, m: Member) -> None:
        """List the member's gridaware Jobs; Jobs that vanished while we were not watching
        are handled like deletions."""
        assert m.api is not None
        states, rv = m.api.list_jobs(m.name)
        states += m.api.list_jobsets(m.name)
        gone = self.cache.replace_jobs(m, states)
        self._rv[m.name] = rv
        m.synced = m.settled = True  # its Jobs are known: workers may verify against them now
        for s in states:
            self.observe(m, s)
        for s in gone:
            self._deleted(m, s)

    def watch(self, m: Member, seconds: float, stopped: Stopped) -> None:
        assert m.api is not None
        for kind, state in m.api.watch_jobs(m.name, self._rv[m.name], max(1, int(seconds))):
            self._rv[m.name] = state.resource_version or self._rv[m.name]
            if kind == "DELETED":
                self.cache.drop_job(m, member_key(state))
                self._deleted(m, state)
            else:
                self.cache.set_job(m, state)
                self.observe(m, state)
            if stopped.is_set():
                return

    # --- member Jobs ---------------------------------------------------------------------
    def observe(self, m: Member, state: MemberJobState) -> None:
        rec = self.statuses.get(state.owner) if state.owner else None
        if rec is None:
            return  # not a job this operator knows
        st = rec.status
        queued = st.migration is None and st.pause is None and not state.finished
        if self.notify is not None and queued:
            if state.owner_uid == rec.uid and lifecycle.owns(st, state):
                self.notify(rec.key)  # a worker mirrors it: in parallel, changes coalesced
            return
        if not self.placement.observe(rec, state):
            return  # not its copy
        if state.finished:
            self.accounts.record(rec, state, m)

    def _deleted(self, m: Member, state: MemberJobState) -> None:
        rec = self.statuses.get(state.owner) if state.owner else None
        if rec is None or rec.deleting or state.owner_uid != rec.uid:
            return
        st = rec.status
        if st.migration is not None or st.phase in lifecycle.TERMINAL:
            return
        if not lifecycle.owns(st, state) or state.finished:
            return
        with rec.busy:
            self.placement.lost(rec, f"the Job in {m.name} was deleted outside gridaware")
        rec.requeued = True

    def poll_jobsets(self, m: Member) -> None:
        """JobSets are listed at every probe (the watch follows Jobs only)."""
        assert m.api is not None
        states = m.api.list_jobsets(m.name)
        seen = {member_key(s) for s in states}
        for state in states:
            if m.jobs.get(member_key(state)) == state:
                continue  # unchanged since the last probe
            self.cache.set_job(m, state)
            self.observe(m, state)
        for key, old in list(m.jobs.items()):
            if old.kind == "JobSet" and key not in seen:
                self.cache.drop_job(m, key)
                self._deleted(m, old)

    def sweep_orphans(self, m: Member, limit: int = 50) -> int:
        """Delete member Jobs whose GridAwareJob is gone (deleted while the operator was
        down or the member unreachable); each is confirmed with the hub first."""
        if m.api is None or self.clock.wall() - self._started < self.settings.sweep_grace_seconds:
            return 0
        deleted = 0
        for state in list(m.jobs.values()):
            if limit <= 0 or not state.owner:
                continue
            rec = self.statuses.get(state.owner)
            if rec is not None and rec.uid == state.owner_uid and not rec.gone:
                continue
            limit -= 1
            namespace, name = state.owner.split("/", 1)
            body = self.hub.get_job(namespace, name)
            if body is not None and body["metadata"].get("uid") == state.owner_uid:
                continue
            try:
                m.api.delete_job(state.namespace, state.name, kind=state.kind)
                deleted += 1
                log.info(
                    "deleted %s/%s in %s: its GridAwareJob is gone",
                    state.namespace,
                    state.name,
                    m.name,
                )
            except GatewayError as exc:
                log.info("cannot delete orphan %s in %s: %s", state.name, m.name, exc)
        return deleted

    def sweep_finished(self, m: Member) -> None:
        """Delete finished member Jobs whose template asked for ``ttlSecondsAfterFinished``
        once the hub has recorded their outcome and account (the member itself never deletes
        them, so neither is missed while the operator is down)."""
        if m.api is None:
            return
        now = self.clock.wall()
        for state in list(m.jobs.values()):
            if state.ttl_after_finished is None or not state.finished:
                continue
            done = parse_time(state.completion_time) if state.completion_time else now
            rec = self.statuses.get(state.owner) if state.owner else None
            recorded = rec is None or (
                rec.status.phase in lifecycle.TERMINAL
                # its account too (measured energy waits for the last scrapes), within reason
                and (rec.status.account is not None or now - done >= ACCOUNT_GRACE_SECONDS)
            )
            if recorded and now - done >= state.ttl_after_finished:
                try:
                    m.api.delete_job(state.namespace, state.name, kind=state.kind)
                except GatewayError as exc:
                    log.info("cannot delete finished %s in %s: %s", state.name, m.name, exc)

    # --- health, capacity, signals -------------------------------------------------------
    def _connect(self, m: Member) -> None:
        ref = m.spec.kubeconfig_secret_ref
        if m.api is not None:
            if self.hub.secret_version(ref.namespace, ref.name) == m.secret_version:
                return
            log.info("kubeconfig Secret of %s changed: reconnecting", m.name)
        m.api, m.secret_version = self.hub.connect_member(ref.namespace, ref.name, ref.key)

    def probe(self, m: Member) -> None:
        gen = None
        status = GridClusterStatus.model_validate(self._cluster_status.get(m.name) or {})
        try:
            self._connect(m)
            assert m.api is not None
            m.version = m.api.server_version()
            m.allocatable, m.other_requests = m.api.capacity()
            m.reachable = True
            ok = ("Reachable", True, "APIReachable", f"API server {m.version} answered")
            self.sweep_finished(m)
            if m.synced:
                self.poll_jobsets(m)
                self.sweep_orphans(m)
        except SecretError as exc:
            m.reachable, m.api = False, None
            ok = ("Reachable", False, "KubeconfigInvalid", str(exc))
        except UnauthorizedError as exc:
            m.reachable, m.api = False, None
            ok = ("Reachable", False, "Unauthorized", f"the member refused the credential: {exc}")
        except GatewayError as exc:
            m.reachable = False
            ok = ("Reachable", False, "ClusterUnreachable", str(exc)[:300])
        status.conditions = self._condition(status.conditions, *ok, gen)
        errors = self._read_signals(m)
        self._finish_probe(m, status, errors, gen)

    def _finish_probe(
        self, m: Member, status: GridClusterStatus, errors: list[str], gen: int | None
    ) -> None:
        m.settled = m.settled or not m.reachable  # else when its Jobs are listed (``sync``)
        status.carbon, status.price = _signal_status(m.carbon), _signal_status(m.price)
        stale = any(r is None or r.stale for r in (m.carbon, m.price))
        ready = m.reachable and m.carbon is not None
        reason = "Ready" if ready else ("SignalsUnavailable" if m.reachable else "Unreachable")
        msg = "reachable, capacity and signals known" if ready else "; ".join(errors) or reason
        if ready and stale:
            reason, msg = "SignalsStale", "using stale or missing price/carbon values"
        if m.draining:
            ready, reason, msg = False, "Draining", "being deleted: no new jobs are placed here"
        status.conditions = self._condition(status.conditions, "Ready", ready, reason, msg, gen)
        status.server_version = m.version
        if m.reachable:
            status.allocatable, status.free = m.usable(), self.cache.free(m)
        status.jobs = sum(1 for j in m.jobs.values() if not j.finished)
        status.last_probe_time = rfc3339(self.clock.wall())
        self._write(m.name, status)
        self.metrics.cluster_reachable.labels(m.name).set(1 if m.reachable else 0)
        self.metrics.jobs.clear()
        for (phase, cluster), count in self.statuses.phase_counts().items():
            self.metrics.jobs.labels(phase, cluster).set(count)

    def _write(self, name: str, status: GridClusterStatus) -> None:
        new = status.model_dump(by_alias=True, exclude_none=True, mode="json")
        new.pop("power", None)  # written by the power-budget controller, not by the probe
        old = self._cluster_status.get(name) or {}
        if {k: v for k, v in old.items() if k != "lastProbeTime"} == {
            k: v for k, v in new.items() if k != "lastProbeTime"
        }:
            return
        try:
            self.hub.patch_cluster_status(name, new)
        except GatewayError as exc:
            log.warning("cannot write the status of GridCluster %s: %s", name, exc)
            return
        self._cluster_status[name] = new

    def _condition(
        self,
        conds: list[Condition],
        type_: str,
        ok: bool,
        reason: str,
        message: str,
        generation: int | None,
    ) -> list[Condition]:
        now = rfc3339(self.clock.wall())
        return lifecycle.set_condition(
            conds, type_, "True" if ok else "False", reason, message, generation, now
        )

    def _read_signals(self, m: Member) -> list[str]:
        """Current carbon and price for the member's zones; the errors if there are none."""
        errors: list[str] = []
        if self.feeds is None:
            return errors
        for signal, zone in (
            (Signal.CARBON, m.spec.grid_zone),
            (Signal.PRICE, m.spec.price_zone or m.spec.grid_zone),
        ):
            try:
                reading: Reading | None = self.feeds.reading(zone, signal)
            except SignalError as exc:
                reading = None
                errors.append(str(exc))
                self.metrics.signal_errors.labels(zone, "all").inc()
            self._record_signal(zone, signal, reading)
            if signal is Signal.CARBON:
                m.carbon = reading
            else:
                m.price = reading
        return errors

    def _record_signal(self, zone: str, signal: Signal, r: Reading | None) -> None:
        if r is None:
            return
        self.metrics.signal.labels(zone, signal.value, r.source, r.unit).set(r.value)
        self.metrics.signal_age.labels(zone, signal.value).set(r.age_seconds)
        for err in r.errors:  # providers that failed before the one that answered
            self.metrics.signal_errors.labels(zone, err.split(":", 1)[0]).inc()

    def _reachability_changed(self, m: Member) -> None:
        status = GridClusterStatus.model_validate(self._cluster_status.get(m.name) or {})
        cond = next((c for c in status.conditions if c.type == "Reachable"), None)
        message = cond.message if cond else ("reachable" if m.reachable else "unreachable")
        reason = cond.reason if cond else "ClusterUnreachable"
        self.events.post(
            _cluster_ref(m.name),
            "Normal" if m.reachable else "Warning",
            reason,
            f"member cluster {m.name}: {message}",
        )
        now, ok = rfc3339(self.clock.wall()), m.reachable

        def mark(s: GridAwareJobStatus) -> GridAwareJobStatus:
            return lifecycle.reachability(s, m.name, ok, message, now)

        for rec in self.statuses.records():
            if rec.status.cluster != m.name or rec.status.phase in lifecycle.TERMINAL:
                continue
            if self.statuses.update(rec, mark):
                self.events.post(
                    rec.ref,
                    "Normal" if ok else "Warning",
                    "ClusterReachable" if ok else "ClusterUnreachable",
                    f"cluster {m.name}: {message}",
                )
