"""Placing GridAwareJobs: choose a cluster (and, with a time window, a start time), record the
decision, create the member Job; refuse spec changes that cannot apply; delete every copy
when the GridAwareJob goes.

The decision is written to the hub *before* the member Job is created (``status.memberJob``
without a uid): a restarted operator that finds such a status waits until that cluster's Jobs
are listed and then adopts or creates the one Job, so a crash between the two writes never
leaves a second copy. A Job that disappears from its member outside gridaware before it
finishes is noticed (watch or re-list) and the job is placed again, never lost.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import numpy as np
from pydantic import ValidationError

from gridaware.api.signals import Signal
from gridaware.api.v1alpha1 import (
    Deferral,
    GridAwareJobSpec,
    MemberJobRef,
    MemberJobState,
    Objective,
    PlacementRecord,
    Resources,
    parse_time,
    rfc3339,
)
from gridaware.core import (
    interruptible,
    lifecycle,
    money,
    namespaces,
    podsecurity,
    power,
    quantity,
    shifting,
)
from gridaware.core.placement import ClusterSnapshot, Decision, JobRequest, could_run_later, decide
from gridaware.k8s import members
from gridaware.k8s.gateway import ConflictError, GatewayError, RejectedError
from gridaware.services.cache import Cache, Member
from gridaware.services.ledger import Ledger, job_power_kw
from gridaware.services.metrics import Metrics
from gridaware.services.ports import Clock, EventsPort, Settings, SignalsPort, StartGate
from gridaware.services.statuses import JobRecord, Statuses
from gridaware.signals.errors import SignalError

log = logging.getLogger("gridaware.placement")
HOUR = 3600.0
MARKET_BASED = "market-based: contracted supply at the contracts' intensity and price"


class RetryLaterError(Exception):
    """Not done yet: call again after ``delay`` wall seconds (Kopf's TemporaryError)."""

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


@dataclass(frozen=True)
class Window:
    """A job's time window in grid time."""

    earliest: float
    deadline: float | None
    duration: float | None


def checkpoint_env(spec: GridAwareJobSpec, runs_before: int) -> dict[str, str]:
    """What the workload is told: a pausable job always gets its checkpoint location (it
    may be paused and resumed in place, where the pod spec cannot change); a job that starts
    again after a move also learns that it resumes."""
    env: dict[str, str] = {}
    if spec.pausable:
        env["GRIDAWARE_CHECKPOINT_DIR"] = spec.migration.checkpoint_dir
    if runs_before > 0:
        env["GRIDAWARE_MIGRATION"] = str(runs_before)
        if spec.migration.policy == "Checkpoint":
            env["GRIDAWARE_RESUME"] = "1"
    return env


class PlacementService:
    def __init__(
        self,
        cache: Cache,
        statuses: Statuses,
        events: EventsPort,
        feeds: SignalsPort | None,
        clock: Clock,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.cache = cache
        self.statuses = statuses
        self.events = events
        self.feeds = feeds
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self.gate: StartGate | None = None  # grid events and power budgets (set at build)
        self.ledger: Ledger | None = None  # contracted supply, for objective.valueContracts

    # --- entry points --------------------------------------------------------------------
    def watched(self, body: dict[str, Any], deleted: bool = False) -> str:
        """Remember the latest body of a job (from the hub's watch); its key to process."""
        rec = self.statuses.seed(body)
        rec.gone = rec.gone or deleted
        return rec.key

    def reconcile(self, key: str) -> float | None:
        """Process a job from the work queue; None when done, else seconds until a retry."""
        rec = self.statuses.get(key)
        if rec is None:
            return None
        try:
            with self.metrics.timed("delete" if rec.gone else "reconcile"):
                if rec.gone:
                    self._delete(rec)
                else:
                    self._reconcile(rec)
        except RetryLaterError as exc:
            log.debug("%s: %s", key, exc)
            return exc.delay
        except GatewayError as exc:
            log.info("%s: %s", key, exc)
            return 2.0
        return None

    def place(self, body: dict[str, Any]) -> None:
        """Observe and process at once (raising ``RetryLaterError`` when not done)."""
        self._reconcile(self.statuses.get(self.watched(body)) or self.statuses.seed(body))

    def delete(self, body: dict[str, Any]) -> None:
        """The job is gone from the hub: delete its copies at once (raising
        ``RetryLaterError`` while a cluster that may hold one does not answer)."""
        rec = self.statuses.get(self.watched(body, deleted=True))
        assert rec is not None
        self._delete(rec)

    def _reconcile(self, rec: JobRecord) -> None:
        if rec.deleting or rec.status.phase in lifecycle.TERMINAL:
            return
        spec = self._parse(rec, rec.spec_raw, report=rec.status.member_job is None)
        if spec is None:
            return
        with rec.busy:
            if rec.status.member_job is None:
                if not self._refused_before(rec):
                    self._place(rec, spec)
                return
            self._check_spec(rec, spec)
            self.verify(rec)

    @staticmethod
    def _refused_before(rec: JobRecord) -> bool:
        """A member refused this very generation of the spec: retrying cannot help (a spec
        change, a new generation, places it again)."""
        scheduled = lifecycle.condition(rec.status, "Scheduled")
        return (
            scheduled is not None
            and scheduled.reason == "InvalidSpec"
            and scheduled.observed_generation == rec.generation
        )

    def _check_spec(self, rec: JobRecord, spec: GridAwareJobSpec) -> None:
        """A placed job keeps the template and placement it was created with: a change is
        refused with a condition (and accepted again when reverted)."""
        placed = dict(
            part.split("=", 1) for part in (rec.status.spec_hash or "").split(",") if "=" in part
        )
        now = dict(part.split("=", 1) for part in spec_hash(spec).split(","))
        changed = [k for k in ("template", "placement") if placed and placed.get(k) != now[k]]
        generation, stamp = rec.generation, self._now()
        if not changed:
            refused = lifecycle.condition(rec.status, "SpecApplied")
            self.statuses.update(rec, lambda s: lifecycle.spec_applied(s, generation, stamp))
            if refused is not None and refused.status == "False":
                self.events.post(rec.ref, "Normal", "SpecApplied", "the spec applies again")
            return
        message = (
            f"spec.{', spec.'.join(changed)} cannot change after the job was placed in "
            f"{rec.status.cluster}; the running job keeps its original spec. Delete and "
            "re-create the GridAwareJob to apply the change"
        )
        if self.statuses.update(
            rec, lambda s: lifecycle.spec_refused(s, message, generation, stamp)
        ):
            self.events.post(rec.ref, "Warning", "SpecChangeRefused", message)

    def _delete(self, rec: JobRecord) -> None:
        """Delete every copy of the job in every cluster it may be in (including both ends
        of a migration in progress); retried while one of them cannot be reached (and swept
        by the member agent if the operator stops before)."""
        rec.deleting = True
        with rec.busy:
            for cluster in sorted(self._copies(rec)):
                member = self.cache.member(cluster)
                if member is None:
                    continue  # unregistered: nothing we can reach
                if member.api is None or not member.reachable:
                    raise RetryLaterError(
                        f"cluster {cluster} is unreachable; the member Job is deleted when it "
                        "answers",
                        5,
                    )
                try:
                    member.api.delete_job(rec.member_namespace, rec.name, kind=self._kind(rec))
                except GatewayError as exc:
                    raise RetryLaterError(
                        f"deleting the member Job in {cluster} failed: {exc}", 5
                    ) from exc
        self.cache.release(rec.key)
        self.statuses.forget(rec.key)

    @staticmethod
    def _kind(rec: JobRecord) -> str:
        """The workload kind of a job, also when its last spec did not parse."""
        return "JobSet" if (rec.spec and rec.spec.job_set) or "jobSet" in rec.spec_raw else "Job"

    def _copies(self, rec: JobRecord) -> set[str]:
        st, found = rec.status, set()
        if st.member_job is not None:
            found.add(st.member_job.cluster)
        if st.migration is not None:
            found |= {st.migration.source, st.migration.target}
        state = self.cache.find_job(rec.member_namespace, rec.name, rec.uid)
        if state is not None:
            found.add(state.cluster)
        return found

    # --- checking a recorded placement ---------------------------------------------------
    def verify(self, rec: JobRecord) -> None:
        """The status names a member Job: adopt it, create it (the operator stopped between
        recording and creating), or notice that it was deleted outside gridaware."""
        st = rec.status
        ref = st.member_job
        if ref is None or st.migration is not None or st.phase in lifecycle.TERMINAL:
            return
        member = self.cache.member(ref.cluster)
        if member is None:
            self._unplace(rec, "ClusterRemoved", f"cluster {ref.cluster} is not registered")
            raise RetryLaterError(f"cluster {ref.cluster} is gone; placing again", 1)
        if not member.synced:
            raise RetryLaterError(f"waiting until the Jobs of {ref.cluster} are listed", 2)
        state = self.cache.job_in(ref.cluster, ref.namespace, ref.name)
        if state is not None and state.owner_uid == rec.uid:
            if not self.observe(rec, state):  # ours, but recreated under another uid
                self._adopt(rec, state)
            return
        if st.phase == "Running" or st.start_time is not None or ref.uid is not None:
            self.lost(rec, f"the Job in {ref.cluster} was deleted outside gridaware")
            raise RetryLaterError("placing the job again", 1)
        spec = rec.spec
        assert spec is not None
        self._create(rec, spec, ref.cluster)

    def observe(self, rec: JobRecord, state: MemberJobState) -> bool:
        """Mirror the state of the member Job this job owns; False when it is not ours."""
        if state.owner_uid != rec.uid or not lifecycle.owns(rec.status, state):
            return False
        now = self._now()
        self.statuses.update(rec, lambda s: lifecycle.mirror(s, state, None, now))
        return True

    def lost(self, rec: JobRecord, message: str) -> None:
        now = self._now()
        started = rec.status.start_time
        if self.statuses.update(rec, lambda s: lifecycle.lost(s, started, now, message)):
            self.events.post(rec.ref, "Warning", "MemberJobLost", message + "; placing it again")

    # --- placing -------------------------------------------------------------------------
    def _parse(
        self, rec: JobRecord, raw: dict[str, Any], report: bool = True
    ) -> GridAwareJobSpec | None:
        try:
            spec = GridAwareJobSpec.model_validate(raw)
            quantity.workload_requests(spec)
        except (ValidationError, ValueError) as exc:
            if report:
                self._invalid(rec, f"spec is invalid: {_one_line(exc)}")
            return None
        refused = self._refused(rec, spec)
        if refused is not None:
            if report:
                self._invalid(rec, refused)
            return None
        rec.spec = spec
        return spec

    def _refused(self, rec: JobRecord, spec: GridAwareJobSpec) -> str | None:
        """Defence in depth behind the hub's admission policy: the member namespace the
        mapping gives, and the pod security rules; the reason when the job may not run."""
        try:
            rec.member_ns = namespaces.member_namespace(rec.namespace, self.settings.namespaces)
        except namespaces.NamespaceRefusedError as exc:
            return str(exc)
        found = podsecurity.violations(spec, rec.namespace, self.settings.pod_security)
        if found:
            return "the pod template may not run here: " + "; ".join(map(str, found))[:900]
        return None

    def _place(self, rec: JobRecord, spec: GridAwareJobSpec) -> None:
        requests, _ = quantity.workload_requests(spec)
        unsettled = self.cache.unsettled()  # (a plan on part of the fleet would be held)
        if unsettled:
            raise RetryLaterError(f"waiting for the first probe of {', '.join(unsettled)}", 1.0)
        existing = self.cache.find_job(rec.member_namespace, rec.name, rec.uid)
        if existing is not None:  # created by an operator that stopped before recording it
            self._adopt(rec, existing)
            return
        objective, preferred, must_start = spec.objective, None, False
        if spec.schedule is not None:
            objective, preferred, must_start = self._shift(rec, spec, requests)
        job = JobRequest(requests, spec.placement, objective)
        for _attempt in range(3):
            decision = self._decide(rec, job, preferred, must_start, spec)
            record = PlacementRecord(
                time=self._now(),
                cluster=decision.cluster.name if decision.cluster else None,
                reason=decision.reason,
                candidates=decision.candidates,
            )
            if decision.cluster is None:
                self._wait(rec, decision, record)
            if self.cache.reserve(rec.key, decision.cluster.name, requests):
                if self.gate is not None:
                    self.gate.note_start(
                        decision.cluster.name, power.job_kw(spec, decision.cluster.pue)
                    )
                self._record_and_create(rec, spec, decision.cluster, record)
                return
        raise RetryLaterError("capacity was taken by concurrent placements; deciding again", 0.5)

    def _decide(
        self,
        rec: JobRecord,
        job: JobRequest,
        preferred: str | None,
        must_start: bool,
        spec: GridAwareJobSpec,
    ) -> Decision:
        """Place now: in the cluster the start-time plan chose (greenest over the whole run)
        when it can take the job, else wherever scores best right now."""
        self._refresh_signals()
        snapshot = [self._blocked(rec, spec, c) for c in self.cache.snapshot()]
        decision = self._valued_decision(rec, spec, job, snapshot, must_start)
        if preferred is None or decision.cluster is None or decision.cluster.name == preferred:
            return decision
        ok = any(c.cluster == preferred and c.eligible for c in decision.candidates)
        target = next((c for c in snapshot if c.name == preferred), None)
        if not ok or target is None:
            return decision
        reason = (
            f"forecast greenest over the planned run ({preferred}); "
            f"right now {decision.cluster.name} scores best"
        )
        if job.objective.value_contracts and self.ledger is not None:
            reason += f" ({MARKET_BASED})"
        return Decision(target, reason, decision.candidates)

    def _valued_decision(
        self,
        rec: JobRecord,
        spec: GridAwareJobSpec,
        job: JobRequest,
        snapshot: list[ClusterSnapshot],
        must_start: bool,
    ) -> Decision:
        """``decide`` on the snapshot; with ``objective.valueContracts`` every candidate is
        scored market-based (never some location- and some market-based in one comparison).
        The chosen cluster is returned as it is on the grid: the status keeps the grid's
        intensity at placement (location-based), the record says how the score was valued."""
        if not job.objective.value_contracts or self.ledger is None:
            return decide(job, snapshot, must_start)
        hour0 = self.clock.grid_now() // HOUR * HOUR
        valued = [self._valued_now(rec.key, spec, c, hour0) for c in snapshot]
        d = decide(job, valued, must_start)
        if d.cluster is None:
            return d
        grid = next(c for c in snapshot if c.name == d.cluster.name)
        return Decision(grid, f"{d.reason} ({MARKET_BASED})", d.candidates, d.wait)

    def _valued_now(
        self, key: str, spec: GridAwareJobSpec, c: ClusterSnapshot, hour0: float
    ) -> ClusterSnapshot:
        """The cluster's current intensity and price with this hour's share that its
        contracts would cover for the job (after the other jobs' load) at the contracts'."""
        member = self.cache.member(c.name)
        if self.ledger is None or member is None or c.carbon is None:
            return c
        price = None if c.price_usd is None else np.array([c.price_usd])
        v = self.ledger.valued(
            member, hour0, np.array([c.carbon]), price, job_power_kw(spec), exclude=key
        )
        value = None if v.price_usd is None else float(v.price_usd[0])
        return replace(c, carbon=float(v.carbon[0]), price_usd=value, note=v.note)

    def _blocked(
        self, rec: JobRecord, spec: GridAwareJobSpec, c: ClusterSnapshot
    ) -> ClusterSnapshot:
        """The cluster as this job sees it: excluded by a foreign same-name Job, or by a grid
        event holding starts, a power budget or a ramp limit there."""
        if c.name in rec.blocked:
            return replace(
                c, blocked=f"a Job {rec.key} not created by this GridAwareJob exists there"
            )
        if self.gate is None:
            return c
        w = self.window(rec, spec)
        latest = (
            None
            if w.deadline is None or w.duration is None
            else shifting.latest_start(w.deadline, w.duration, self.settings.startup_seconds)
        )
        why = self.gate.hold_reason(c.name, power.job_kw(spec, c.pue), rec.key, latest)
        return c if why is None else replace(c, blocked=why)

    def _wait(self, rec: JobRecord, decision: Decision, record: PlacementRecord) -> NoReturn:
        assert decision.wait is not None
        reason, message = decision.wait.value, decision.reason
        gen, limit, now = rec.generation, self.settings.history_limit, self._now()
        if self.statuses.update(
            rec, lambda s: lifecycle.waiting(s, reason, message, record, gen, limit, now)
        ):
            self.events.post(rec.ref, "Normal", reason, message)
        self.metrics.placements.labels("none", reason).inc()
        raise RetryLaterError(message, self.settings.retry_delay)

    def _record_and_create(
        self, rec: JobRecord, spec: GridAwareJobSpec, target: ClusterSnapshot, record: Any
    ) -> None:
        ref = MemberJobRef(cluster=target.name, namespace=rec.member_namespace, name=rec.name)
        gen, limit = rec.generation, self.settings.history_limit
        try:
            digest = spec_hash(spec)
            self.statuses.update(
                rec,
                lambda s: lifecycle.placed(s, target, ref, record, gen, limit).model_copy(
                    update={"spec_hash": digest}
                ),
            )
        except GatewayError as exc:
            self.cache.release(rec.key)
            raise RetryLaterError(f"recording the placement failed: {exc}", 2) from exc
        if not self._create(rec, spec, target.name):
            return
        log.info("placed %s in %s", rec.key, target.name)
        self.metrics.placements.labels(target.name, "Placed").inc()
        self.events.post(
            rec.ref, "Normal", "Placed", f"placed in {target.name} ({target.zone}): {record.reason}"
        )

    def _create(self, rec: JobRecord, spec: GridAwareJobSpec, cluster: str) -> bool:
        """Create the recorded member Job. A refusal or a foreign Job of that name undoes the
        placement; no answer keeps it (the Job may exist: checked once the cluster answers)."""
        member = self.cache.member(cluster)
        if member is None or member.api is None:
            raise RetryLaterError(f"cluster {cluster} has no client yet", 2)
        env = checkpoint_env(spec, len(rec.status.run_segments))
        manifest = members.workload_manifest(
            rec.namespace, rec.name, rec.uid, cluster, spec, env, rec.member_namespace
        )
        try:
            member.api.create_job(manifest)
        except ConflictError:
            self.cache.release(rec.key)
            rec.blocked.add(cluster)
            message = f"a Job {rec.key} that this GridAwareJob did not create exists in {cluster}"
            self._unplace(rec, "NameConflict", message)
            raise RetryLaterError(message + "; choosing another cluster", 1) from None
        except RejectedError as exc:
            self.cache.release(rec.key)
            self._unplace(rec, "InvalidSpec", f"{cluster} refused the Job: {exc}")
            self.events.post(rec.ref, "Warning", "InvalidSpec", f"{cluster} refused the Job: {exc}")
            return False
        except GatewayError as exc:
            raise RetryLaterError(f"creating the Job in {cluster} failed: {exc}", 2) from exc
        return True

    def _unplace(self, rec: JobRecord, reason: str, message: str) -> None:
        now, gen = self._now(), rec.generation
        self.statuses.update(rec, lambda s: lifecycle.unplaced(s, reason, message, gen, now))

    def _adopt(self, rec: JobRecord, state: MemberJobState) -> None:
        m = self.cache.member(state.cluster)
        region, zone = (m.spec.region, m.spec.grid_zone) if m else (None, None)
        now, gen = self._now(), rec.generation
        digest = spec_hash(rec.spec) if rec.spec else None
        self.statuses.update(
            rec,
            lambda s: lifecycle.adopted(s, state, region, zone, gen, now).model_copy(
                update={"spec_hash": s.spec_hash or digest}
            ),
        )

    def _invalid(self, rec: JobRecord, message: str) -> None:
        now, gen = self._now(), rec.generation
        if self.statuses.update(rec, lambda s: lifecycle.invalid(s, message, gen, now)):
            self.events.post(rec.ref, "Warning", "InvalidSpec", message)

    def _refresh_signals(self) -> None:
        """Current readings for every member (from the feeds' cache: the agents probe only
        every few seconds, which is many grid minutes when a replay runs accelerated)."""
        if self.feeds is None:
            return
        for m in list(self.cache.members.values()):
            for signal, zone in (
                (Signal.CARBON, m.spec.grid_zone),
                (Signal.PRICE, m.spec.price_zone or m.spec.grid_zone),
            ):
                try:
                    reading = self.feeds.reading(zone, signal)
                except SignalError:
                    continue  # keep the agent's last reading
                if signal is Signal.CARBON:
                    m.carbon = reading
                else:
                    m.price = reading

    # --- time windows --------------------------------------------------------------------
    def window(self, rec: JobRecord, spec: GridAwareJobSpec) -> Window:
        sched = spec.schedule
        now = self.clock.grid_now()
        created = self.clock.grid_clock.grid(parse_time(rec.created)) if rec.created else now
        if sched is None:
            return Window(created, None, None)
        earliest = max(created, parse_time(sched.earliest_start) if sched.earliest_start else 0)
        duration = sched.expected_duration_seconds
        deadline = parse_time(sched.deadline) if sched.deadline else None
        if deadline is None and sched.max_delay_seconds is not None and duration:
            deadline = created + sched.max_delay_seconds + duration
        return Window(earliest, deadline, duration)

    def _shift(
        self, rec: JobRecord, spec: GridAwareJobSpec, requests: Resources
    ) -> tuple[Objective, str | None, bool]:
        """Defer the job (raising RetryLaterError) while a clearly greener window lies
        ahead within its deadline; returns the objective to place with now, the planned
        cluster, and whether the deadline leaves no more slack."""
        pulled = None if self.gate is None else self.gate.pulled_forward(rec.key)
        if pulled is not None:  # an Absorb event wants this deferred work now
            return spec.objective, pulled, False
        now = self.clock.grid_now()
        w = self.window(rec, spec)
        if w.earliest > now + 1 and (w.duration is None or w.deadline is None):
            self._defer(rec, w.earliest, "", None, None, now, "earliestStart")
        if w.duration is None or w.deadline is None:
            return spec.objective, None, False
        latest = shifting.latest_start(w.deadline, w.duration, self.settings.startup_seconds)
        if now >= latest:
            return spec.objective.model_copy(update={"carbon_ceiling": None}), None, True
        hour0 = now // 3600 * 3600
        hours = min(self.settings.forecast_hours, int(np.ceil((w.deadline - hour0) / 3600)) + 1)
        job = JobRequest(requests, spec.placement, spec.objective)
        forecasts = self.forecasts(job, hour0, hours, rec)
        bounds = interruptible.bounds_of(spec, len(rec.status.pauses))
        if spec.flexibility.pausable and interruptible.plans_pauses(w.duration, bounds):
            return spec.objective, self._first_run(rec, spec, forecasts, bounds, now, w), False
        plan = shifting.plan(
            forecasts,
            spec.objective,
            now,
            w.earliest,
            latest,
            w.duration,
            committed=_held(rec),
        )
        if plan is not None and plan.defers(now, tolerance=0.0):
            why = "valueContracts" if spec.objective.value_contracts else ""
            self._defer(
                rec, plan.start, plan.cluster, plan.expected_carbon, plan.start_now_carbon, now, why
            )
        return spec.objective, None if plan is None else plan.cluster, False

    def _first_run(
        self,
        rec: JobRecord,
        spec: GridAwareJobSpec,
        forecasts: list[shifting.Forecast],
        bounds: interruptible.Bounds,
        now: float,
        w: Window,
    ) -> str | None:
        """A pausable job's first run (``core.interruptible.first_run``, the plan the run
        plans then follow): deferred to its start, or the cluster to start in now."""
        assert w.deadline is not None and w.duration is not None
        held = _held(rec)
        if held is not None and held[0] == "-":
            held = None  # deferred for earliestStart, not to a cluster
        if held is not None and held[1] <= now:
            return held[0]  # its start has come (the plan's hour slots cannot start it late)
        got = interruptible.first_run(
            forecasts,
            spec.objective,
            max(now, w.earliest),
            w.deadline - self.settings.startup_seconds,
            w.duration,
            bounds,
            cluster=None if held is None else held[0],
        )
        if got is None:
            return None
        f, plan = got
        start = plan.intervals[0][0]
        if start > now:
            expected = interruptible.run_cost(f.carbon, f.hour0, plan.intervals)
            run_now = ((now, now + w.duration),)
            covered = now + w.duration <= f.hour0 + f.carbon.size * 3600
            carbon_now = interruptible.run_cost(f.carbon, f.hour0, run_now) if covered else None
            hours = w.duration / 3600
            self._defer(
                rec,
                start,
                f.cluster,
                expected / (plan.run_seconds / 3600),
                None if carbon_now is None else carbon_now / hours,
                now,
                "valueContracts" if spec.objective.value_contracts else "",
                runs=len(plan.intervals),
            )
        return f.cluster

    def forecasts(
        self, job: JobRequest, hour0: float, hours: int, rec: JobRecord | None = None
    ) -> list[shifting.Forecast]:
        """Hourly carbon (and price) forecasts of every cluster that may take the job; with
        ``objective.valueContracts`` (and the job's record, for its power and to leave its own
        load out) the hours its contracts would cover are valued market-based in every
        cluster (``Ledger.valued``)."""
        out: list[shifting.Forecast] = []
        if self.feeds is None:
            return out
        valuing = None  # (the job's key, its IT kW) when it values contracted supply
        if job.objective.value_contracts and rec is not None and rec.spec is not None:
            valuing = (rec.key, job_power_kw(rec.spec))
        for c in self.cache.snapshot():
            member = self.cache.member(c.name)
            if member is None or not could_run_later(job, c):
                continue
            price_zone = member.spec.price_zone or c.zone
            fc = self._forecast(c, price_zone, job.objective, hour0, hours)
            if fc is not None and valuing is not None:
                fc = self._valued_forecast(fc, member, *valuing)
            if fc is not None:
                out.append(fc)
        return out

    def _valued_forecast(
        self, fc: shifting.Forecast, member: Member, key: str, job_kw: float
    ) -> shifting.Forecast:
        """The forecast as a job that values contracted supply sees it (``Ledger.valued``)."""
        if self.ledger is None:
            return fc
        v = self.ledger.valued(member, fc.hour0, fc.carbon, fc.price_usd, job_kw, exclude=key)
        return replace(fc, carbon=v.carbon, price_usd=v.price_usd)

    def _forecast(
        self, c: ClusterSnapshot, price_zone: str, objective: Objective, hour0: float, hours: int
    ) -> shifting.Forecast | None:
        assert self.feeds is not None
        try:
            carbon = self.feeds.forecast(c.zone, Signal.CARBON, hours).hourly(int(hour0), hours)
            price = None
            if objective.price_weight > 0:
                p = self.feeds.forecast(price_zone, Signal.PRICE, hours)
                price = p.hourly(int(hour0), hours) * money.to_usd_per_mwh(1.0, p.unit)
        except (SignalError, KeyError) as exc:
            log.info("no forecast for %s: %s", c.name, exc)
            return None
        n = _finite_prefix(carbon)
        if price is not None:
            n = min(n, _finite_prefix(price))
        if n == 0:
            return None
        return shifting.Forecast(
            c.name, c.pue, hour0, carbon[:n], None if price is None else price[:n]
        )

    def _defer(
        self,
        rec: JobRecord,
        start: float,
        cluster: str,
        expected: float | None,
        now_carbon: float | None,
        now: float,
        why: str,
        runs: int = 1,
    ) -> NoReturn:
        when = rfc3339(start)
        if why == "earliestStart":
            message = f"waiting for spec.schedule.earliestStart {when}"
        else:
            message = (
                f"a greener window is forecast: start at {when} in {cluster} at "
                f"{expected or 0:.0f} gCO2e/kWh"
                + (f" over {runs} runs, paused in between" if runs > 1 else "")
                + (f" (now {now_carbon:.0f})" if now_carbon is not None else "")
                + (f" ({MARKET_BASED})" if why == "valueContracts" else "")
            )
        deferral = Deferral(
            planned_start=when,
            cluster=cluster or "-",
            expected_carbon=round(expected or 0.0, 1),
            carbon_now=None if now_carbon is None else round(now_carbon, 1),
        )
        prior = lifecycle.condition(rec.status, "Deferred")
        gen, stamp = rec.generation, self._now()
        if self.statuses.update(
            rec, lambda s: lifecycle.deferred(s, deferral, message, gen, stamp)
        ):
            self.events.post(rec.ref, "Normal", "Deferred", message)
        if prior is None or prior.status != "True":
            self.metrics.deferrals.labels(cluster or "-").inc()
        # wake up at the planned start (never later), or earlier to re-plan with newer forecasts
        delay = min(
            self.settings.replan_wall_seconds,
            self.clock.grid_clock.wall_seconds(start - now) + 0.5,
        )
        raise RetryLaterError(message, max(0.5, delay))

    def _now(self) -> str:
        return rfc3339(self.clock.wall())


def _held(rec: JobRecord) -> tuple[str, float] | None:
    """The plan a deferred job holds (its status' deferral while Deferred is True): a re-plan
    moves it only for a clearly better one (``core.shifting.plan``, ``committed``)."""
    d, cond = rec.status.deferral, lifecycle.condition(rec.status, "Deferred")
    if d is None or cond is None or cond.status != "True":
        return None
    return d.cluster, parse_time(d.planned_start)


def spec_hash(spec: GridAwareJobSpec) -> str:
    """Short digests of what a placed job cannot change: its template and placement."""
    parts = {
        "template": spec.template,
        "placement": spec.placement.model_dump(by_alias=True, exclude_none=True, mode="json"),
    }
    return ",".join(
        f"{k}={hashlib.sha256(json.dumps(v, sort_keys=True).encode()).hexdigest()[:12]}"
        for k, v in parts.items()
    )


def _finite_prefix(values: np.ndarray[Any, np.dtype[np.float64]]) -> int:
    bad = ~np.isfinite(values)
    return int(np.argmax(bad)) if bad.any() else len(values)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        text = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'spec'}: {e['msg']}" for e in exc.errors()
        )
    else:
        text = str(exc)
    return text.replace("\n", " ")[:900]
