"""The grid-event controller: makes the fleet a flexible load.

For each active ``GridEvent`` it measures what the targets draw, fixes the baseline and the
target when the window opens, and responds cheapest first (``core.events``): hold starts in
the targets, pause checkpointing jobs in place (``PauseService``, the one pause mechanism),
move checkpointing jobs out of the targets when pausing is not allowed or not enough (through
``MigrationService.move_out``, the one migration protocol: never two copies), pull deferred
work forward for Absorb. When the window closes (or the event is deleted) it
resumes what it paused, spread by the zone's ramp limit. Power budgets are enforced the same
way, as standing curtailments of one cluster.

Pre-curtailment: a Curtail is known before it opens, and a pause takes time to show in the
load (the pods' termination grace period, in which a workload checkpoints, and the rounds of
this controller and the member watch), so the window would otherwise open with the full load.
While an event is Pending the controller asks ``core.events.plan_ahead`` each round; from
``start - lead`` (lead: the zone's ramp spread of the pauses plus that reaction time, in
grid seconds at the clock's speed) it fixes the baseline and target from the load expected at
the start, holds starts and pauses, recorded like the window's own actions (reasons and the
``PreCurtailment`` condition and Event say so). That the baseline is set while the event is
Pending is what marks pre-curtailment as begun, so a restarted operator carries on. A power
budget's step down (an hourly or scheduled cap) is met the same way: its pauses begin at
``step - lead``, and from then on nothing is resumed that the coming cap could not take (the
budget's pauses are recorded in the jobs' ``status.pause``, so nothing else is needed).

Every action is recorded in the GridEvent's status (and the job's own ``status.pause`` names
the event) before or as it is taken, and is never repeated for the same job in the same
event, so an operator that restarts mid-event carries on: the baseline, the running figures
and the actions come back from the status. The only state kept in memory is the ramp
limiter's last minute of changes.

Placement asks ``hold_reason`` before it starts a job (held starts, budgets, ramp; then
``note_start``) and ``pulled_forward`` before it defers one (Absorb); a move out also holds
starts in the targets, and the migration service asks ``hold_reason`` before it moves a job
in, so that work moved out does not come back while the window lasts.

Each event's compliance, target, achieved and current kW are also metrics.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from gridaware.api.gridevents import GridEventAction, GridEventSpec, GridEventStatus
from gridaware.api.v1alpha1 import API_VERSION, PowerStatus, parse_time, rfc3339
from gridaware.core import accounting, budget, lifecycle, power, quantity
from gridaware.core import events as plan
from gridaware.core.events import Ahead, Move, Planned, Request, Room, Tally
from gridaware.core.placement import ClusterSnapshot, JobRequest, decide
from gridaware.core.power import JobLoad, LoadState
from gridaware.core.ramp import RampLimiter
from gridaware.k8s.gateway import GatewayError
from gridaware.services.cache import Cache, Member
from gridaware.services.metrics import Metrics
from gridaware.services.migration import MigrationService
from gridaware.services.pause import NotPausableError, PauseService
from gridaware.services.placement import RetryLaterError
from gridaware.services.ports import Clock, EventsPort
from gridaware.services.statuses import JobRecord, Statuses

log = logging.getLogger("gridaware.gridevents")

BUDGET = "budget"
DEADLINE_MARGIN = 600.0  # grid seconds kept in hand when a paused job must resume
# Kubernetes' default terminationGracePeriodSeconds: the longest a pod may take to checkpoint
# and stop when its Job is suspended (a pod template may set its own).
DEFAULT_GRACE_S = 30.0
# Wall seconds of one round of the controller (the handlers' timer) and of the member watch
# noticing the pods gone: two rounds after the grace period the load is measured gone.
ROUNDS_WALL_S = 2 * 1.0


def requester(name: str) -> str:
    return f"GridEvent/{name}"


@dataclass
class Active:
    """What placement needs to know of an event between reconciles."""

    spec: GridEventSpec
    clusters: set[str]
    holds: bool = False
    pulled: dict[str, str] = field(default_factory=dict)  # job key -> cluster


class GridEventService:
    def __init__(
        self,
        cache: Cache,
        statuses: Statuses,
        pause: PauseService,
        events: EventsPort,
        clock: Clock,
        migration: MigrationService | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.cache = cache
        self.statuses = statuses
        self.pause = pause
        self.events = events
        self.clock = clock
        self.migration = migration  # None: no moves out (pauses and holds only)
        self.metrics = metrics
        self.ramp = RampLimiter()
        self._lock = threading.Lock()
        self._active: dict[str, Active] = {}

    # --- the fleet's load ----------------------------------------------------------------
    def targets(self, spec: GridEventSpec) -> set[str]:
        """Clusters the event applies to: named ones and those in its zones."""
        zones, named = set(spec.targets.zones), set(spec.targets.clusters)
        with self.cache.lock:
            return {
                n for n, m in self.cache.members.items() if n in named or m.spec.grid_zone in zones
            }

    def known(self, clusters: set[str]) -> bool:
        """Whether every gridaware Job in these clusters is listed and its GridAwareJob
        seen with its spec (after a restart Kopf resumes the jobs one by one: until then
        the load, and what an event paused, are not fully known)."""
        if not self.cache.all_synced(clusters):
            return False
        with self.cache.lock:
            owners = [
                s.owner
                for c in clusters
                if (m := self.cache.members.get(c)) is not None
                for s in m.jobs.values()
                if s.owner and not s.finished
            ]
        for owner in owners:
            rec = self.statuses.get(owner)
            if rec is None or (rec.spec is None and rec.status.phase not in lifecycle.TERMINAL):
                return False
        return True

    def measured_kw(self, cluster: str) -> float:
        """What gridaware jobs with pods draw in ``cluster`` now (facility kW)."""
        m = self.cache.member(cluster)
        if m is None:
            return 0.0
        with self.cache.lock:
            states = [s for s in m.jobs.values() if not s.finished and s.active > 0]
        total = 0.0
        for s in states:
            rec = self.statuses.get(s.owner) if s.owner else None
            if rec is not None and rec.spec is not None:
                total += rec.kw(m.spec.pue)
            else:
                r = s.requests
                total += accounting.power_kw(None, None, None, r.cpu, r.gpu, 1) * m.spec.pue
        return total

    def loads(self, clusters: set[str] | None = None) -> list[JobLoad]:
        """Every unfinished job's load (in ``clusters`` only, when given)."""
        now = self.clock.grid_now()
        out = []
        for rec in self.statuses.records():
            st = rec.status
            where = st.cluster or (st.deferral.cluster if st.deferral else None)
            if clusters is not None and where not in clusters:
                continue  # (cheap: most jobs of a fleet run elsewhere)
            j = self._load(rec, now)
            if j is not None:
                out.append(j)
        return out

    def _load(self, rec: JobRecord, now: float) -> JobLoad | None:
        st, spec = rec.status, rec.spec
        if spec is None or rec.deleting or st.phase in lifecycle.TERMINAL:
            return None
        cluster = st.cluster or (st.deferral.cluster if st.deferral else None)
        m = self.cache.member(cluster) if cluster else None
        if m is None:
            return None
        state, start = self._state_of(rec, now)
        if state is None:
            return None
        flex, sched = spec.flexibility, spec.schedule
        duration = sched.expected_duration_seconds if sched else None
        return JobLoad(
            rec.key,
            m.name,
            m.spec.grid_zone,
            rec.kw(m.spec.pue),
            state,
            start,
            None if duration is None else max(0.0, duration - self._done(rec, now)),
            self._deadline(rec),
            spec.pausable,
            spec.migration.policy == "Checkpoint",
            flex.priority,
            flex.max_pause_seconds,
            max(0, flex.max_pauses - len(st.pauses)),
        )

    def _state_of(self, rec: JobRecord, now: float) -> tuple[LoadState | None, float]:
        st = rec.status
        if st.pause is not None and st.pause.step != "Resuming":
            resume = parse_time(st.pause.resume_at) if st.pause.resume_at else now
            return LoadState.PAUSED, resume
        if st.member_job is not None and st.migration is None:
            return LoadState.RUNNING, now
        if st.deferral is not None and st.member_job is None:
            return LoadState.DEFERRED, parse_time(st.deferral.planned_start)
        return None, now

    def _grid(self, wall_text: str) -> float:
        return self.clock.grid_clock.grid(parse_time(wall_text))

    def _done(self, rec: JobRecord, now: float) -> float:
        """Grid seconds of work done: earlier run segments and the current one."""
        st = rec.status
        done = sum(self._grid(s.end) - self._grid(s.start) for s in st.run_segments)
        current = st.segment_start or st.start_time
        if current and st.phase == "Running":
            done += max(0.0, now - self._grid(current))
        return done

    def _deadline(self, rec: JobRecord) -> float | None:
        sched = rec.spec.schedule if rec.spec else None
        if sched is None:
            return None
        if sched.deadline:
            return parse_time(sched.deadline)
        dur, delay = sched.expected_duration_seconds, sched.max_delay_seconds
        if dur is None or delay is None or rec.created is None:
            return None
        return self._grid(rec.created) + delay + dur

    def _update_ramps(self) -> None:
        limits: dict[str, float] = {}
        with self.cache.lock:
            for m in self.cache.members.values():
                b = m.spec.power_budget
                if b is not None and b.ramp_kw_per_minute is not None:
                    z = m.spec.grid_zone
                    limits[z] = min(limits.get(z, b.ramp_kw_per_minute), b.ramp_kw_per_minute)
            zones = {m.spec.grid_zone for m in self.cache.members.values()}
        for z in zones:
            self.ramp.set_limit(z, limits.get(z))

    # --- events --------------------------------------------------------------------------
    def reconcile(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """One round for one GridEvent; returns its new status (camelCase, for a patch)."""
        try:
            spec = GridEventSpec.model_validate(body.get("spec") or {})
        except ValidationError as exc:
            log.warning("GridEvent %s is invalid: %s", name, exc)
            return {}
        status = GridEventStatus.model_validate(body.get("status") or {})
        uid = str((body.get("metadata") or {}).get("uid", ""))
        before = status.model_copy(deep=True)
        self._update_ramps()
        now = self.clock.grid_now()
        w = spec.window
        if status.phase in ("Completed", "Cancelled"):
            self._export(name, spec, status)
            if status.phase == "Cancelled" and _pre_curtailing(status):
                self._release(name, uid, status)
            return (
                {}
                if status == before
                else status.model_dump(by_alias=True, exclude_none=True, mode="json")
            )
        if now < w.start_epoch:
            status.phase = "Pending"
            if spec.kind == "Curtail":
                status = self._pending_round(name, uid, spec, status, now)
        elif now < w.end_epoch:
            status = self._active_round(name, uid, spec, status, now)
        else:
            status = self._closing_round(name, uid, spec, status)
        status.observed_generation = (body.get("metadata") or {}).get("generation")
        self._export(name, spec, status)
        if status == before:
            return {}
        return status.model_dump(by_alias=True, exclude_none=True, mode="json")

    def _active_round(
        self, name: str, uid: str, spec: GridEventSpec, status: GridEventStatus, now: float
    ) -> GridEventStatus:
        clusters = self.targets(spec)
        if not self.known(clusters):
            return status  # jobs not all known yet (after a restart): no figures, no action
        current = sum(self.measured_kw(c) for c in clusters)
        if status.phase != "Active":
            ahead = (
                f" ({plan.PRE} since before it: {current:.3f} kW now)"
                if status.baseline_kw is not None
                else ""
            )
            self._post(name, uid, "Normal", "Started", f"{spec.kind} window opened{ahead}")
            if _pre_curtailing(status):
                status.conditions = lifecycle.set_condition(
                    status.conditions, "PreCurtailment", "False", "WindowOpened",
                    f"{plan.PRE} ended: the window is open", status.observed_generation,
                    rfc3339(self.clock.wall()),
                )  # fmt: skip
        status.phase = "Active"
        if status.baseline_kw is None:
            status.baseline_kw = round(current, 6)
            status.target_kw = round(spec.target_kw(current), 6)
        assert status.target_kw is not None
        tally = self._tally(spec, status).add(now, current, spec.kind, status.target_kw)
        self._store(status, tally)
        active = self._remember(name, spec, clusters, status)
        req = Request(
            name, spec.kind, status.target_kw, spec.window.start_epoch, spec.window.end_epoch,
            spec.mandatory,
        )  # fmt: skip
        loads = self.loads(clusters)
        deferred = [j for j in loads if j.state is LoadState.DEFERRED]
        if spec.kind == "Curtail":
            running = [j for j in loads if j.state is LoadState.RUNNING]
            # paused by others and back within a reaction: shed for them before they return
            running += plan.back_by(now + self._reaction(running), self._resuming(name, loads), now)
            steps = plan.plan_curtail(req, running, deferred, now)
            if self.migration is not None and _short(req, running, steps):
                moves, rooms = self._move_options(clusters, running, now)
                steps = plan.plan_curtail(req, running, deferred, now, moves, rooms)
        else:
            steps = plan.plan_absorb(req, current + self._pulled_kw(active, loads), deferred, now)
        for step in steps:
            self._act(name, uid, status, active, step, now)
        if not spec.mandatory:
            self._resume_due(name, uid, status, loads, now)
        self._target_condition(status, spec, current)
        return status

    def _pending_round(
        self, name: str, uid: str, spec: GridEventSpec, status: GridEventStatus, now: float
    ) -> GridEventStatus:
        """Pre-curtailment: hold and pause ahead of the window, from ``start - lead`` on."""
        clusters = self.targets(spec)
        if not self.known(clusters):
            return status
        loads = self.loads(clusters)
        running = [j for j in loads if j.state is LoadState.RUNNING]
        deferred = [j for j in loads if j.state is LoadState.DEFERRED]
        current = sum(self.measured_kw(c) for c in clusters)
        begun = status.baseline_kw is not None and status.target_kw is not None
        w = spec.window
        req = Request(name, "Curtail", 0.0, w.start_epoch, w.end_epoch, spec.mandatory)
        resuming = self._resuming(name, loads)
        if status.baseline_kw is not None and status.target_kw is not None:
            baseline, target = status.baseline_kw, status.target_kw
        else:  # measured, less the jobs known to end and plus those back before the start
            change = plan.load_at_start(req, running, now, resuming) - sum(j.kw for j in running)
            baseline = max(0.0, current + change)
            target = spec.target_kw(baseline)
        req = replace(req, target_kw=target)
        reaction = self._reaction(running)
        ahead = plan.plan_ahead(
            req, running, deferred, now, reaction, self._limits(clusters), begun, resuming
        )
        if not ahead.steps:
            return status
        if not begun:
            status.baseline_kw, status.target_kw = round(baseline, 6), round(target, 6)
            self._post(name, uid, "Normal", "PreCurtailment", _ahead_text(req, baseline, ahead))
        active = self._remember(name, spec, clusters, status)
        for step in ahead.steps:
            self._act(name, uid, status, active, step, now)
        if not spec.mandatory:
            self._resume_due(name, uid, status, loads, now)
        status.current_kw = round(current, 6)  # holds until the first sample in the window
        self._ahead_condition(status, req, current, reaction, ahead)
        return status

    def _resuming(self, name: str, loads: list[JobLoad]) -> list[JobLoad]:
        """Paused jobs with a planned resume that this event did not pause (a run plan's,
        another event's or a budget's): their load comes back by itself."""
        out = []
        for j in loads:
            rec = self.statuses.get(j.key) if j.state is LoadState.PAUSED else None
            p = rec.status.pause if rec is not None else None
            if p is not None and p.resume_at is not None and p.requested_by != requester(name):
                out.append(j)
        return out

    def _release(self, name: str, uid: str, status: GridEventStatus) -> None:
        """A pre-curtailed event cancelled before its window (the VEN marks one the VTN
        withdrew ``Cancelled``): stop holding, resume what it paused (ramp-limited, over as
        many rounds as that takes), then mark the pre-curtailment released."""
        with self._lock:
            self._active.pop(name, None)
        if self.resume_all(name, uid, status) > 0:
            return
        status.conditions = lifecycle.set_condition(
            status.conditions,
            "PreCurtailment",
            "False",
            "Released",
            f"{plan.PRE}: the event was cancelled before its window; what it paused resumed",
            status.observed_generation,
            rfc3339(self.clock.wall()),
        )

    def _reaction(self, running: list[JobLoad]) -> float:
        """Grid seconds from a pause decision to its load measured gone: the longest
        termination grace period of the pausable jobs, and two rounds (``ROUNDS_WALL_S``),
        all in wall time and so scaled by the clock's speed."""
        grace = max((self._grace(j.key) for j in running if j.pausable), default=0.0)
        return (grace + ROUNDS_WALL_S) * self.clock.grid_clock.speedup

    def _grace(self, key: str) -> float:
        rec = self.statuses.get(key)
        template = rec.spec.template if rec is not None and rec.spec is not None else None
        pod = ((template or {}).get("template") or {}).get("spec") or {}
        value = pod.get("terminationGracePeriodSeconds")
        return float(value) if isinstance(value, int | float) else DEFAULT_GRACE_S

    def _limits(self, clusters: set[str]) -> dict[str, float]:
        """Ramp limits (kW per minute) of the targets' zones that have one."""
        with self.cache.lock:
            zones = {m.spec.grid_zone for n, m in self.cache.members.items() if n in clusters}
        return {z: lim for z, lim in self.ramp.limits.items() if z in zones}

    def _ahead_condition(
        self, status: GridEventStatus, req: Request, current: float, reaction: float, a: Ahead
    ) -> None:
        message = (
            f"{plan.PRE}: {current:.3f} kW now, target {req.target_kw:.3f} kW when the window "
            f"opens at {rfc3339(req.start)}; begun {a.lead:.0f} s ahead (ramp spread of the "
            f"pauses and {reaction:.0f} s of reaction)"
        )
        status.conditions = lifecycle.set_condition(
            status.conditions,
            "PreCurtailment",
            "True",
            "PreCurtailing",
            message,
            status.observed_generation,
            rfc3339(self.clock.wall()),
        )

    def _tally(self, spec: GridEventSpec, status: GridEventStatus) -> Tally:
        assert status.target_kw is not None
        start = spec.window.start_epoch
        if status.sampled_until is None:  # the last load measured before the window holds
            first = status.current_kw if status.current_kw is not None else status.baseline_kw
            return Tally.start(start, first or 0.0, spec.kind, status.target_kw)
        if status.current_kw is None:
            return Tally.start(start, status.baseline_kw or 0.0, spec.kind, status.target_kw)
        return Tally(
            start,
            status.sampled_until,
            status.achieved_kw or 0.0,
            status.compliance or 0.0,
            status.current_kw,
            status.time_to_target_seconds,
        )

    @staticmethod
    def _store(status: GridEventStatus, t: Tally) -> None:
        status.sampled_until = t.until
        status.achieved_kw = round(t.achieved_kw, 6)
        status.compliance = round(min(1.0, max(0.0, t.compliance)), 6)
        status.current_kw = round(t.last_kw, 6)
        status.time_to_target_seconds = t.time_to_target

    def _remember(
        self, name: str, spec: GridEventSpec, clusters: set[str], status: GridEventStatus
    ) -> Active:
        with self._lock:
            a = self._active.get(name)
            if a is None or a.spec != spec:
                a = self._active[name] = Active(spec, clusters)
            a.clusters = clusters
            for act in status.actions:  # what an earlier operator decided (restart)
                if act.type in ("HoldStarts", "Migrate"):
                    a.holds = True
                elif act.type == "PullForward" and act.job and act.cluster:
                    a.pulled[act.job] = act.cluster
            return a

    def _pulled_kw(self, active: Active, loads: list[JobLoad]) -> float:
        """kW of pulled-forward jobs that have not started yet (already promised)."""
        return sum(j.kw for j in loads if j.key in active.pulled and j.state is LoadState.DEFERRED)

    def _act(
        self,
        name: str,
        uid: str,
        status: GridEventStatus,
        active: Active,
        step: Planned,
        now: float,
    ) -> None:
        done = {(a.type, a.job) for a in status.actions}
        if (step.type, step.job) in done:
            return
        if step.type == "HoldStarts":
            active.holds = True
        elif step.type == "PullForward":
            assert step.job is not None and step.cluster is not None
            active.pulled[step.job] = step.cluster
        elif step.type == "Pause":
            if not self._pause(name, step, now):
                return
        elif step.type == "Migrate":
            if not self._move(name, step, now):
                return
            active.holds = True  # what moved out must not be replaced by new starts
        else:
            return
        self._record(status, step, now)
        self._post(name, uid, "Normal", step.type, f"{step.job or 'starts'}: {step.reason}")

    def _pause(self, who: str, step: Planned, now: float) -> bool:
        rec = self.statuses.get(step.job or "")
        if rec is None or rec.status.cluster is None:
            return False
        m = self.cache.member(rec.status.cluster)
        if m is None or not self.ramp.admit(m.spec.grid_zone, step.delta_kw, now):
            return False
        try:
            self.pause.pause(rec, step.reason, requester(who) if who != BUDGET else BUDGET)
        except (NotPausableError, GatewayError) as exc:
            log.info("%s: not paused: %s", step.job, exc)
            return False
        return True

    # --- moving out ----------------------------------------------------------------------
    def _move_options(
        self, targets: set[str], running: list[JobLoad], now: float
    ) -> tuple[dict[str, Move], dict[str, Room]]:
        """Where each checkpointing job may go: reachable clusters outside the targets and
        outside every other Curtail, ranked by placement's own rules and score, with what
        each can still take (free resources, power-budget headroom)."""
        with self._lock:
            curtailed = {
                c for a in self._active.values() if a.spec.kind == "Curtail" for c in a.clusters
            }
        outside = [
            c
            for c in self.cache.snapshot()
            if c.reachable and c.name not in targets and c.name not in curtailed
        ]
        rooms = {c.name: Room(c.free, self._budget_room(c.name, now)) for c in outside}
        moves: dict[str, Move] = {}
        for j in running:
            move = self._move_for(j, outside) if j.checkpoint and outside else None
            if move is not None:
                moves[j.key] = move
        return moves, rooms

    def _budget_room(self, cluster: str, now: float) -> float:
        m = self.cache.member(cluster)
        if m is None or m.spec.power_budget is None:
            return float("inf")
        return budget.headroom(m.spec.power_budget, self.measured_kw(cluster), now)

    def _move_for(self, j: JobLoad, outside: list[ClusterSnapshot]) -> Move | None:
        rec = self.statuses.get(j.key)
        spec = rec.spec if rec is not None else None
        if rec is None or spec is None or rec.status.migration is not None:
            return None
        if len(rec.status.migrations) >= spec.migration.max_migrations:
            return None
        needs, _ = quantity.workload_requests(spec)
        clusters = [
            replace(c, blocked="a Job of the same name is in the way")
            if c.name in rec.blocked
            else c
            for c in outside
        ]
        decision = decide(JobRequest(needs, spec.placement, spec.objective), clusters)
        ranked = sorted(
            (c.score, c.cluster) for c in decision.candidates if c.eligible and c.score is not None
        )
        if not ranked:
            return None
        overhead = float(spec.migration.overhead_seconds)
        return Move(needs, tuple(name for _, name in ranked), overhead)

    def _move(self, who: str, step: Planned, now: float) -> bool:
        """Begin a planned move out (ramp-limited in both zones); the migration service's
        protocol does the rest, recorded in the job's ``status.migration``."""
        rec = self.statuses.get(step.job or "")
        if self.migration is None or rec is None or rec.status.cluster is None:
            return False
        source = self.cache.member(rec.status.cluster)
        target = self.cache.member(step.target or "")
        if source is None or target is None:
            return False
        zones, kw = (source.spec.grid_zone, target.spec.grid_zone), abs(step.delta_kw)
        if not all(self.ramp.allows(z, kw, now) for z in zones):
            return False
        if not self.migration.move_out(rec, target.name, f"{requester(who)}: {step.reason}"):
            return False
        for z in zones:
            self.ramp.admit(z, kw, now)
        try:
            self.migration.step(rec)  # start stopping the source now, not at the next tick
        except (RetryLaterError, GatewayError) as exc:
            log.info("%s: move out continues at the next round: %s", rec.key, exc)
        return True

    def _export(self, name: str, spec: GridEventSpec, status: GridEventStatus) -> None:
        """The figures of an Active event as metrics (the chart's GridEventNonCompliant alert
        watches them); the series go when the window closes (the status keeps the figures)."""
        m = self.metrics
        if m is None:
            return
        if status.phase != "Active" or status.target_kw is None:
            self._unexport(name)
            return
        labels = (name, spec.kind)
        m.gridevent_compliance.labels(*labels).set(status.compliance or 0.0)
        m.gridevent_target_kw.labels(*labels).set(status.target_kw)
        m.gridevent_achieved_kw.labels(*labels).set(status.achieved_kw or 0.0)
        m.gridevent_current_kw.labels(*labels).set(status.current_kw or 0.0)

    def _unexport(self, name: str) -> None:
        m = self.metrics
        if m is None:
            return
        for gauge in (
            m.gridevent_compliance,
            m.gridevent_target_kw,
            m.gridevent_achieved_kw,
            m.gridevent_current_kw,
        ):
            for kind in ("Curtail", "Absorb"):
                with contextlib.suppress(KeyError):  # never exported
                    gauge.remove(name, kind)

    def _record(self, status: GridEventStatus, step: Planned, now: float) -> None:
        status.actions = [
            *status.actions,
            GridEventAction(
                time=rfc3339(now),
                type=step.type,
                job=step.job,
                cluster=step.cluster,
                delta_kw=round(step.delta_kw, 6),
                reason=step.reason,
            ),
        ][-1000:]

    def _resume_due(
        self, name: str, uid: str, status: GridEventStatus, loads: list[JobLoad], now: float
    ) -> None:
        """A voluntary event lets a paused job go when its deadline cannot wait any more."""
        mine = self._paused_by(requester(name))
        for j in loads:
            rec = mine.get(j.key)
            if rec is not None and plan.must_resume(j, now, DEADLINE_MARGIN):
                self._resume(name, uid, status, rec, j, now, "its deadline cannot wait longer")

    def _paused_by(self, who: str) -> dict[str, JobRecord]:
        return {
            r.key: r
            for r in self.statuses.records()
            if r.status.pause is not None
            and r.status.pause.requested_by == who
            and r.status.pause.step != "Resuming"
        }

    def _resume(
        self,
        name: str,
        uid: str,
        status: GridEventStatus | None,
        rec: JobRecord,
        j: JobLoad | None,
        now: float,
        why: str,
    ) -> bool:
        zone = j.zone if j else (rec.status.zone or "")
        kw = j.kw if j else 0.0
        if not self.ramp.admit(zone, kw, now):
            return False
        try:
            self.pause.resume(rec)
        except GatewayError as exc:
            log.info("%s: not resumed yet: %s", rec.key, exc)
            return False
        if status is not None:
            status.actions = [
                *status.actions,
                GridEventAction(
                    time=rfc3339(now),
                    type="Resume",
                    job=rec.key,
                    cluster=rec.status.cluster,
                    delta_kw=round(kw, 6),
                    reason=why,
                ),
            ][-1000:]
            self._post(name, uid, "Normal", "Resume", f"{rec.key}: {why}")
        return True

    def _closing_round(
        self, name: str, uid: str, spec: GridEventSpec, status: GridEventStatus
    ) -> GridEventStatus:
        """After the window: close the figures at its end, resume (ramp-limited), complete."""
        end = spec.window.end_epoch
        if not self.known(self.targets(spec)):
            return status
        if status.target_kw is not None and (status.sampled_until or 0) < end:
            last = status.current_kw if status.current_kw is not None else 0.0
            tally = self._tally(spec, status).add(end, last, spec.kind, status.target_kw)
            self._store(status, tally)
        with self._lock:
            self._active.pop(name, None)
        if self.resume_all(name, uid, status) == 0:
            if status.phase != "Completed":
                self._post(name, uid, "Normal", "Completed", _summary(status))
            status.phase = "Completed"
        return status

    def resume_all(self, name: str, uid: str, status: GridEventStatus | None) -> int:
        """Resume what the event paused, as fast as the ramp allows; how many are left."""
        now = self.clock.grid_now()
        loads = {j.key: j for j in self.loads()}
        left = 0
        mine = self._paused_by(requester(name))
        for rec in sorted(mine.values(), key=lambda r: _deadline_key(loads.get(r.key))):
            j = loads.get(rec.key)
            if not self._resume(name, uid, status, rec, j, now, f"{name} has ended"):
                left += 1
        return left

    def cancel(self, name: str, uid: str) -> int:
        """The event was deleted: stop holding, resume what it paused; how many are left."""
        with self._lock:
            self._active.pop(name, None)
        self._unexport(name)
        return self.resume_all(name, uid, None)

    def _target_condition(
        self, status: GridEventStatus, spec: GridEventSpec, current: float
    ) -> None:
        assert status.target_kw is not None
        ok = plan.met(spec.kind, current, status.target_kw)
        relation = "at or below" if spec.kind == "Curtail" else "at or above"
        message = f"{current:.3f} kW now, target {relation} {status.target_kw:.3f} kW"
        status.conditions = lifecycle.set_condition(
            status.conditions,
            "TargetMet",
            "True" if ok else "False",
            "TargetMet" if ok else "Responding",
            message,
            status.observed_generation,
            rfc3339(self.clock.wall()),
        )

    def _post(self, name: str, uid: str, type_: str, reason: str, message: str) -> None:
        meta = {"name": name, "uid": uid} if uid else {"name": name}
        ref = {"apiVersion": API_VERSION, "kind": "GridEvent", "metadata": meta}
        try:
            self.events.post(ref, type_, reason, message)
        except GatewayError as exc:
            log.info("cannot post an Event for GridEvent %s: %s", name, exc)

    # --- placement's questions -----------------------------------------------------------
    def hold_reason(
        self, cluster: str, kw: float, key: str, latest_start: float | None
    ) -> str | None:
        """Why a job drawing ``kw`` may not start in ``cluster`` now, None if it may: a
        Curtail holding starts there (never a job whose latest start comes before the
        event's end, unless the event is mandatory), the cluster's power budget, or the
        zone's ramp limit used up for this minute. Placement marks such clusters blocked
        and calls ``note_start`` for the one it starts the job in."""
        self._update_ramps()
        now = self.clock.grid_now()
        with self._lock:
            active = list(self._active.items())
        for name, a in active:
            if a.spec.kind != "Curtail" or not a.holds or cluster not in a.clusters:
                continue
            end = a.spec.window.end_epoch
            if a.spec.mandatory or latest_start is None or latest_start >= end:
                ahead = (
                    f" ({plan.PRE}: it opens at {rfc3339(a.spec.window.start_epoch)})"
                    if now < a.spec.window.start_epoch
                    else ""
                )
                return (
                    f"starts are held in {cluster} for GridEvent {name} until {rfc3339(end)}"
                    + ahead
                )
        m = self.cache.member(cluster)
        if m is None:
            return None
        if m.spec.power_budget is None:
            return None  # no budget: no cap and no ramp limit for this cluster
        drawn = self.measured_kw(cluster)
        if not budget.admits(m.spec.power_budget, drawn, kw, now):
            cap = budget.cap_at(m.spec.power_budget, now)
            return f"the power budget of {cluster} ({cap:g} kW) would be exceeded"
        if not self.ramp.allows(m.spec.grid_zone, kw, now):
            return f"the ramp limit of {m.spec.grid_zone} is used up for this minute"
        return None

    def note_start(self, cluster: str, kw: float) -> None:
        """Count a start against the zone's ramp limit."""
        m = self.cache.member(cluster)
        if m is not None:
            self.ramp.admit(m.spec.grid_zone, kw, self.clock.grid_now())

    def pulled_forward(self, key: str) -> str | None:
        """The cluster an Absorb event wants this deferred job started in now, if any."""
        with self._lock:
            for a in self._active.values():
                if key in a.pulled:
                    return a.pulled[key]
        return None

    # --- power budgets and the power status ----------------------------------------------
    def enforce_budget(self, cluster: str) -> dict[str, Any] | None:
        """Pause work over the cluster's budget, resume it under, and return the cluster's
        ``status.power`` (camelCase) for the member agent's status write."""
        m = self.cache.member(cluster)
        if m is None or not m.synced:
            return None
        self._update_ramps()
        now = self.clock.grid_now()
        loads = self.loads({cluster})
        drawn = self.measured_kw(cluster)
        b = m.spec.power_budget
        if budget.excess(b, drawn, now) > 0:
            acted = self._over_budget(m, loads, drawn, now)
        else:
            coming, acted = self._budget_ahead(m, loads, drawn, now)
            room = min(coming, budget.headroom(b, drawn, now))
            acted = self._under_budget(m, loads, room, now) or acted
        status = self.power_status(m, now, None if acted else loads)
        return status.model_dump(by_alias=True, exclude_none=True)

    def _over_budget(self, m: Member, loads: list[JobLoad], drawn: float, now: float) -> bool:
        b = m.spec.power_budget
        cap = budget.cap_at(b, now)
        assert cap is not None
        until = budget.next_change(b, now) or now + 3600
        running = [j for j in loads if j.state is LoadState.RUNNING]
        modelled = sum(j.kw for j in running)  # shed the measured excess from the model
        req = Request(BUDGET, "Curtail", modelled - (drawn - cap), now, until)
        steps = [s for s in plan.plan_curtail(req, running, [], now) if s.type == "Pause"]
        for step in steps:
            self._pause(BUDGET, step, now)
        return bool(steps)

    def _budget_ahead(
        self, m: Member, loads: list[JobLoad], drawn: float, now: float
    ) -> tuple[float, bool]:
        """Pre-curtailment of a step down of the budget (an hourly or scheduled cap): when
        the cap falls within the lead of the pauses it needs, pause ahead as for a Curtail,
        and resume nothing the coming cap could not take. Returns the room the coming cap
        leaves (inf: no step within reach) and whether anything was paused."""
        b = m.spec.power_budget
        if b is None or not (b.hourly or b.schedule):
            return float("inf"), False  # a standing cap (or none) has no step to meet
        running = [j for j in loads if j.state is LoadState.RUNNING]
        paused = self._paused_by(BUDGET)
        mine = [j for j in loads if j.state is LoadState.PAUSED and j.key in paused]
        reaction, limits = self._reaction(running), self._limits({m.name})
        zones = {j.key: j.zone for j in running + mine}
        reach = plan.zone_lead(_as_pauses(running + mine), zones, limits, reaction)
        step = budget.next_change(b, now, min(reach, 86400.0)) if reach > 0 else None
        cap = budget.cap_at(b, step) if step is not None else None
        if step is None or cap is None:
            return float("inf"), False
        offset = drawn - sum(j.kw for j in running)  # shed from the model, as over budget
        until = budget.next_change(b, step) or step + 3600
        name = f"the lower power budget of {m.name}"
        req = Request(name, "Curtail", cap - offset, step, until)
        ahead = plan.plan_ahead(req, running, [], now, reaction, limits)
        pauses = [p for p in ahead.steps if p.type == "Pause"]
        for p in pauses:
            self._pause(BUDGET, p, now)
        held = plan.zone_lead([*_as_pauses(mine), *pauses], zones, limits, reaction)
        if now < step - held:
            return float("inf"), bool(pauses)
        return max(0.0, cap - drawn), bool(pauses)

    def _under_budget(self, m: Member, loads: list[JobLoad], room: float, now: float) -> bool:
        paused = self._paused_by(BUDGET)
        mine = [j for j in loads if j.key in paused and j.state is LoadState.PAUSED]
        resumed = plan.resumable(mine, room)
        for j in resumed:
            self._resume(BUDGET, "", None, paused[j.key], j, now, "within the power budget")
        return bool(resumed)

    def power_status(
        self, m: Member, now: float, loads: list[JobLoad] | None = None
    ) -> PowerStatus:
        """``status.power`` of the cluster (from ``loads`` when the caller has them)."""
        loads = self.loads({m.name}) if loads is None else loads
        group = power.by(loads, "cluster", now).get(m.name)
        cap = budget.cap_at(m.spec.power_budget, now)
        return PowerStatus(
            now_kw=round(self.measured_kw(m.name), 6),
            cap_kw=cap,
            planned_from=rfc3339(now // 3600 * 3600),
            planned_kw=[] if group is None else [round(float(x), 6) for x in group.planned_kw],
            paused_jobs=0 if group is None else group.paused,
        )


def _pre_curtailing(status: GridEventStatus) -> bool:
    return any(c.type == "PreCurtailment" and c.status == "True" for c in status.conditions)


def _as_pauses(jobs: list[JobLoad]) -> list[Planned]:
    """The pausable jobs as pauses (to bound a lead: what pausing them all would take)."""
    return [Planned("Pause", j.key, j.cluster, -j.kw, "") for j in jobs if j.pausable]


def _short(req: Request, running: list[JobLoad], steps: list[Planned]) -> bool:
    """Whether the planned pauses leave the running load above the target."""
    paused = sum(s.delta_kw for s in steps if s.type == "Pause")
    return sum(j.kw for j in running) + paused > req.target_kw + plan.TOLERANCE_KW


def _ahead_text(req: Request, baseline: float, a: Ahead) -> str:
    paused = sum(1 for s in a.steps if s.type == "Pause")
    return (
        f"{plan.PRE}: {req.name} opens at {rfc3339(req.start)}; baseline {baseline:.3f} kW, "
        f"target {req.target_kw:.3f} kW; {paused} pauses and held starts begin "
        f"{a.lead:.0f} s ahead"
    )


def _deadline_key(j: JobLoad | None) -> float:
    return float("inf") if j is None or j.deadline is None else j.deadline


def _summary(status: GridEventStatus) -> str:
    return (
        f"window closed: baseline {status.baseline_kw or 0:.3f} kW, target "
        f"{status.target_kw or 0:.3f} kW, achieved {status.achieved_kw or 0:.3f} kW, "
        f"compliance {100 * (status.compliance or 0):.1f} %"
    )
