"""Interruptible run plans: a pausable job with a deadline runs in the greenest intervals
before it, paused in place between them.

While such a job runs, the plan of its remaining work (``core.interruptible``, the function
the simulator replays) is recomputed from the latest forecast at most every
``migration_check_grid_seconds`` of grid time; when the plan's current run ends now, the job
is paused until the next run starts (``PauseService``: the member Job is suspended, the
workload checkpoints on SIGTERM and resumes in place). While it is paused, its resume is
re-planned the same way, so a fresher forecast can bring it forward or push it back. The
deadline always wins: without a forecast, or when the work no longer fits, a running job
keeps running; a paused one keeps its planned resume unless the work would then miss the
deadline, and then resumes now. Jobs too short for two runs are never paused by a plan.
"""

from __future__ import annotations

import logging

from gridaware.api.v1alpha1 import GridAwareJobSpec, parse_time, rfc3339
from gridaware.core import interruptible, lifecycle, planning, quantity
from gridaware.core.placement import JobRequest
from gridaware.services.pause import NotPausableError, PauseService
from gridaware.services.placement import PlacementService
from gridaware.services.ports import Clock, EventsPort, Settings
from gridaware.services.statuses import JobRecord, Statuses

log = logging.getLogger("gridaware.runplan")

GREENER = "a greener window is forecast"
MOVE_SECONDS = 60.0  # a planned resume moves only for a change at least this large


class RunPlanService:
    def __init__(
        self,
        statuses: Statuses,
        placement: PlacementService,
        pause: PauseService,
        events: EventsPort,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.statuses = statuses
        self.placement = placement
        self.pause = pause
        self.events = events
        self.clock = clock
        self.settings = settings

    def tick(self) -> None:
        for rec in self.statuses.records():
            if self._due(rec):
                try:
                    self.step(rec)
                except NotPausableError as exc:
                    log.debug("%s: %s", rec.key, exc)

    def _due(self, rec: JobRecord) -> bool:
        spec, st = rec.spec, rec.status
        if spec is None or not spec.flexibility.pausable or st.migration is not None:
            return False
        running = st.phase == "Running" and st.pause is None
        if not (running or _paused_by_plan(rec)) or rec.deleting:
            return False
        sched = spec.schedule
        if sched is None or sched.expected_duration_seconds is None:
            return False
        # a job too short for two runs is deferred as one and never paused by a plan
        full = interruptible.bounds_of(spec, 0)
        if not interruptible.plans_pauses(float(sched.expected_duration_seconds), full):
            return False
        now = self.clock.grid_now()
        if now < rec.next_plan:
            return False
        rec.next_plan = now + self.settings.migration_check_grid_seconds
        return True

    def step(self, rec: JobRecord) -> None:
        """Pause the job now if its plan's current run ends now; a job its plan paused is
        re-planned like a waiting one."""
        spec, st = rec.spec, rec.status
        assert spec is not None and st.cluster is not None
        now = self.clock.grid_now()
        window = self.placement.window(rec, spec)
        if window.deadline is None or window.duration is None:
            return
        if st.pause is not None:
            self._move_resume(rec, spec, now, window.deadline, window.duration)
            return
        running_for = now - self._segment_start(rec, now)
        done = self._done_before(rec) + running_for
        remaining = max(0.0, self._work(rec, spec, window.duration) - done)
        plan = self._plan(rec, spec, now, window.deadline, remaining, max(1.0, running_for))
        resume = None if plan is None else _resume_at(plan, now)
        if resume is None:
            return  # the current run goes on; the next check re-plans with newer forecasts
        self.pause.pause(rec, f"{GREENER}: running again at {rfc3339(resume)}", "plan", resume)

    def _move_resume(
        self, rec: JobRecord, spec: GridAwareJobSpec, now: float, deadline: float, duration: float
    ) -> None:
        """Move a planned resume to where the fresher forecast puts the next run. The resume
        redoes the overhead, and the pause under way counts against the job's pauses, as in
        the simulator. Without a plan (no forecast yet after a restart, a feed down) the
        planned resume stays unless the work would then miss the deadline: it resumes now."""
        due = rec.status.pause.resume_at if rec.status.pause is not None else None
        if due is None or parse_time(due) <= now:
            return  # its time has come: PauseService resumes it (hour slots could not now)
        remaining = max(0.0, self._work(rec, spec, duration) - self._done_before(rec))
        remaining += float(spec.migration.overhead_seconds)  # its own resume redoes it too
        plan = self._plan(rec, spec, now, deadline, remaining, 0.0, pauses_taken=1)
        end = deadline - self.settings.startup_seconds
        resume = interruptible.replanned_resume(plan, now, parse_time(due), remaining, end)
        if resume is None:
            return
        why = GREENER if plan is not None and plan.intervals else "the deadline cannot wait"
        with rec.busy:
            p = rec.status.pause
            if not _paused_by_plan(rec) or p is None or p.resume_at is None:
                return
            if parse_time(p.resume_at) <= self.clock.grid_now():
                return  # it came due while this was planned: PauseService resumes it
            limit = spec.flexibility.max_pause_seconds
            if limit is not None:
                resume = min(resume, self.clock.grid_clock.grid(parse_time(p.since)) + limit)
            if abs(parse_time(p.resume_at) - resume) < MOVE_SECONDS:
                return
            when = rfc3339(resume)
            reason = f"{why}: running again at {when}"
            stamp = rfc3339(self.clock.wall())
            if self.statuses.update(rec, lambda s: lifecycle.resume_moved(s, when, reason, stamp)):
                self.events.post(rec.ref, "Normal", "ResumeMoved", f"plan: {reason}")

    def _plan(
        self,
        rec: JobRecord,
        spec: GridAwareJobSpec,
        now: float,
        deadline: float,
        remaining: float,
        running_for: float,
        pauses_taken: int = 0,
    ) -> interruptible.IntervalPlan | None:
        requests, _ = quantity.workload_requests(spec)
        job = JobRequest(requests, spec.placement, spec.objective)
        hour0 = now // 3600 * 3600
        hours = min(self.settings.forecast_hours, int((deadline - hour0) // 3600) + 2)
        here = [
            f
            for f in self.placement.forecasts(job, hour0, hours, rec)
            if f.cluster == rec.status.cluster
        ]
        if not here:
            return None
        f, o = here[0], spec.objective
        score = planning.cost_series(f.carbon, f.price_usd, o.carbon_weight, o.price_weight, f.pue)
        bounds = interruptible.bounds_of(spec, len(rec.status.pauses) + pauses_taken)
        latest = deadline - self.settings.startup_seconds
        return interruptible.plan_intervals(
            score, f.hour0, now, latest, remaining, bounds, running_for=running_for
        )

    @staticmethod
    def _work(rec: JobRecord, spec: GridAwareJobSpec, duration: float) -> float:
        """The run time the job needs in all: its duration and the progress each resume
        redid (the simulator adds the overhead at every pause)."""
        return duration + float(spec.migration.overhead_seconds) * len(rec.status.pauses)

    def _segment_start(self, rec: JobRecord, now: float) -> float:
        stamp = rec.status.segment_start or rec.status.start_time
        return self.clock.grid_clock.grid(parse_time(stamp)) if stamp else now

    def _done_before(self, rec: JobRecord) -> float:
        grid = self.clock.grid_clock.grid
        return sum(
            grid(parse_time(r.end)) - grid(parse_time(r.start)) for r in rec.status.run_segments
        )


def _paused_by_plan(rec: JobRecord) -> bool:
    p = rec.status.pause
    return p is not None and p.step == "Paused" and p.requested_by == "plan"


def _resume_at(plan: interruptible.IntervalPlan, now: float, slack: float = 60.0) -> float | None:
    """When the job should run again if the plan pauses it now, else None."""
    runs = [r for r in plan.intervals if r[1] > now + slack]
    if not runs:
        return None
    start, _end = runs[0]
    if start > now + slack:
        return start  # the current run ends now; the next one starts later
    return None
