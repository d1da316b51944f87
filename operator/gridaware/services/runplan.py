"""Interruptible run plans: a pausable job with a deadline runs in the greenest intervals
before it, paused in place between them.

While such a job runs, the plan of its remaining work (``core.interruptible``, the function
the simulator replays) is recomputed from the latest forecast at most every
``migration_check_grid_seconds`` of grid time; when the plan's current run ends now, the job
is paused until the next run starts (``PauseService``: the member Job is suspended, the
workload checkpoints on SIGTERM and resumes in place). The deadline always wins: without a
forecast, or when the work no longer fits, the job simply keeps running.
"""

from __future__ import annotations

import logging

from gridaware.api.v1alpha1 import GridAwareJobSpec, parse_time, rfc3339
from gridaware.core import interruptible, planning, quantity
from gridaware.core.placement import JobRequest
from gridaware.services.pause import NotPausableError, PauseService
from gridaware.services.placement import PlacementService
from gridaware.services.ports import Clock, Settings
from gridaware.services.statuses import JobRecord, Statuses

log = logging.getLogger("gridaware.runplan")


class RunPlanService:
    def __init__(
        self,
        statuses: Statuses,
        placement: PlacementService,
        pause: PauseService,
        clock: Clock,
        settings: Settings,
    ) -> None:
        self.statuses = statuses
        self.placement = placement
        self.pause = pause
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
        if spec is None or not spec.flexibility.pausable or st.phase != "Running":
            return False
        if st.pause is not None or st.migration is not None or rec.deleting:
            return False
        sched = spec.schedule
        if sched is None or sched.expected_duration_seconds is None:
            return False
        now = self.clock.grid_now()
        if now < rec.next_plan:
            return False
        rec.next_plan = now + self.settings.migration_check_grid_seconds
        return True

    def step(self, rec: JobRecord) -> None:
        """Pause the job now if its plan's current run ends now."""
        spec, st = rec.spec, rec.status
        assert spec is not None and st.cluster is not None
        now = self.clock.grid_now()
        window = self.placement.window(rec, spec)
        if window.deadline is None or window.duration is None:
            return
        running_for = now - self._segment_start(rec, now)
        done = self._done_before(rec) + running_for
        remaining = max(0.0, window.duration - done)
        plan = self._plan(rec, spec, now, window.deadline, remaining, running_for)
        resume = None if plan is None else _resume_at(plan, now)
        if resume is None:
            return  # the current run goes on; the next check re-plans with newer forecasts
        next_start = resume
        self.pause.pause(
            rec,
            f"a greener window is forecast: running again at {rfc3339(next_start)}",
            "plan",
            next_start,
        )

    def _plan(
        self,
        rec: JobRecord,
        spec: GridAwareJobSpec,
        now: float,
        deadline: float,
        remaining: float,
        running_for: float,
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
        bounds = interruptible.bounds_of(spec, len(rec.status.pauses))
        latest = deadline - self.settings.startup_seconds
        return interruptible.plan_intervals(
            score, f.hour0, now, latest, remaining, bounds, running_for=max(1.0, running_for)
        )

    def _segment_start(self, rec: JobRecord, now: float) -> float:
        stamp = rec.status.segment_start or rec.status.start_time
        return self.clock.grid_clock.grid(parse_time(stamp)) if stamp else now

    def _done_before(self, rec: JobRecord) -> float:
        grid = self.clock.grid_clock.grid
        return sum(
            grid(parse_time(r.end)) - grid(parse_time(r.start)) for r in rec.status.run_segments
        )


def _resume_at(plan: interruptible.IntervalPlan, now: float, slack: float = 60.0) -> float | None:
    """When the job should run again if the plan pauses it now, else None."""
    runs = [r for r in plan.intervals if r[1] > now + slack]
    if not runs:
        return None
    start, _end = runs[0]
    if start > now + slack:
        return start  # the current run ends now; the next one starts later
    return None
