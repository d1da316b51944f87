"""Moving running jobs to greener clusters: the migration protocol as an idempotent state
machine recorded in ``status.migration``.

Stopping (record the segment, delete the source Job with the grace period so the workload
checkpoints on SIGTERM) -> WaitingForStop (until no pod of the job is left in the source) ->
Starting (create in the target with the checkpoint location in the environment) -> Started
(until the target's pods run; then the takeover time is recorded). Each step is written
before it acts and every action tolerates being repeated, so an operator killed at any step
resumes where it was, and a copy in the target is only created once the source has none.

If the target turns out to hold a Job of the same name that is not ours, the job goes back to
its source cluster (its name is free there: we just deleted our Job), and if that fails too it
is placed again; it is never left without a Job.

One loop (``tick``) serves every job: the cheap checks (policy, phase, dwell time, when it was
last considered) come first, so thousands of running jobs cost little between decisions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from gridaware.api.v1alpha1 import (
    GridAwareJobSpec,
    GridAwareJobStatus,
    MemberJobRef,
    MigrationRecord,
    MigrationState,
    RunRecord,
    job_label_value,
    parse_time,
    rfc3339,
)
from gridaware.core import lifecycle, migration, quantity
from gridaware.core.placement import JobRequest
from gridaware.k8s import members
from gridaware.k8s.gateway import ConflictError, GatewayError
from gridaware.services.cache import Cache, Member
from gridaware.services.metrics import Metrics
from gridaware.services.placement import PlacementService, RetryLaterError, checkpoint_env
from gridaware.services.ports import Clock, EventsPort, Settings
from gridaware.services.statuses import JobRecord, Statuses

log = logging.getLogger("gridaware.migration")


class MigrationService:
    def __init__(
        self,
        cache: Cache,
        statuses: Statuses,
        placement: PlacementService,
        events: EventsPort,
        clock: Clock,
        settings: Settings,
        metrics: Metrics,
    ) -> None:
        self.cache = cache
        self.statuses = statuses
        self.placement = placement
        self.events = events
        self.clock = clock
        self.settings = settings
        self.metrics = metrics

    def tick(self) -> None:
        """One round over every known job: advance migrations in progress, consider moves."""
        for rec in self.statuses.records():
            try:
                self.step(rec)
            except RetryLaterError as exc:
                log.debug("%s: %s", rec.key, exc)
            except GatewayError as exc:
                log.info("%s: migration step failed: %s", rec.key, exc)

    def step(self, rec: JobRecord) -> None:
        spec, st = rec.spec, rec.status
        if spec is None or rec.deleting or st.member_job is None:
            return
        if st.phase in lifecycle.TERMINAL:
            if st.migration is not None:
                self.statuses.update(rec, lambda s: s.model_copy(update={"migration": None}))
            return
        with rec.busy:
            if rec.deleting:
                return
            if rec.status.migration is None and self._due(rec, spec):
                with self.metrics.timed("migrate"):
                    self._consider(rec, spec)
            if rec.status.migration is not None:
                self._advance(rec, spec)

    # --- deciding ------------------------------------------------------------------------
    def _due(self, rec: JobRecord, spec: GridAwareJobSpec) -> bool:
        st = rec.status
        if spec.migration.policy == "Never" or st.phase != "Running" or st.cluster is None:
            return False
        if spec.schedule is None or spec.schedule.expected_duration_seconds is None:
            return False
        now = self.clock.grid_now()
        started = self._segment_start(st)
        if started is None or now - started < spec.migration.min_dwell_seconds:
            return False
        if now < rec.next_check:
            return False
        rec.next_check = now + self.settings.migration_check_grid_seconds
        return True

    def _segment_start(self, st: GridAwareJobStatus) -> float | None:
        stamp = st.segment_start or st.start_time
        return self.clock.grid_clock.grid(parse_time(stamp)) if stamp else None

    def _consider(self, rec: JobRecord, spec: GridAwareJobSpec) -> None:
        st = rec.status
        assert st.cluster is not None and spec.schedule is not None
        duration = spec.schedule.expected_duration_seconds
        assert duration is not None
        now = self.clock.grid_now()
        start = self._segment_start(st)
        assert start is not None
        policy, grid = spec.migration, self.clock.grid_clock.grid
        current_run = now - start
        progress = current_run
        if policy.policy == "Checkpoint":
            done = sum(grid(parse_time(r.end)) - grid(parse_time(r.start)) for r in st.run_segments)
            progress += max(0.0, done - policy.overhead_seconds * len(st.migrations))
        remaining = max(0.0, duration - progress)
        requests, _ = quantity.workload_requests(spec)
        job = JobRequest(requests, spec.placement, spec.objective)
        hour0 = now // 3600 * 3600
        hours = min(
            self.settings.forecast_hours, int((remaining + policy.overhead_seconds) // 3600) + 2
        )
        room = {
            c.name
            for c in self.cache.snapshot()
            if (
                c.free.fits(requests)
                and c.reachable
                and c.name not in rec.blocked
                and not self._held(c.name, rec.key)
            )
            or c.name == st.cluster
        }
        forecasts = [
            f for f in self.placement.forecasts(job, hour0, hours, rec) if f.cluster in room
        ]
        move = migration.consider(
            st.cluster,
            forecasts,
            spec.objective,
            policy,
            now,
            remaining,
            current_run,
            len(st.migrations),
            duration=duration,
            deadline=self.placement.window(rec, spec).deadline,
        )
        if move is None:
            return
        self._begin(rec, st.cluster, move.target, move.reason)

    def _held(self, cluster: str, key: str) -> bool:
        """A grid event holds starts in the cluster (moving in would undo its curtailment)."""
        gate = self.placement.gate
        return gate is not None and gate.hold_reason(cluster, 0.0, key, None) is not None

    def move_out(self, rec: JobRecord, target: str, reason: str) -> bool:
        """Begin a move that another service decided (a grid event moving work out of a
        curtailed zone) through this same protocol; False if the job cannot move now (not
        running, already moving or pausing, no Checkpoint policy or no moves left)."""
        spec = rec.spec
        with rec.busy:
            st = rec.status
            if spec is None or rec.deleting or st.phase != "Running" or st.cluster is None:
                return False
            if st.member_job is None or st.migration is not None or st.pause is not None:
                return False
            policy = spec.migration
            if policy.policy != "Checkpoint" or len(st.migrations) >= policy.max_migrations:
                return False
            self._begin(rec, st.cluster, target, reason, "GridEvent")
            return rec.status.migration is not None

    def _begin(
        self,
        rec: JobRecord,
        source: str,
        target: str,
        reason: str,
        cause: str = "GreenerClusterAhead",
    ) -> None:
        state = MigrationState(
            step="Stopping",
            source=source,
            target=target,
            reason=reason,
            decided=rfc3339(self.clock.wall(), ms=True),
        )
        message = f"moving from {source} to {target}: {reason}"
        now = rfc3339(self.clock.wall())

        def begin(st: GridAwareJobStatus) -> GridAwareJobStatus:
            st = st.model_copy(deep=True)
            st.migration = state
            st.conditions = lifecycle.set_condition(
                st.conditions, "Migrating", "True", cause, message, None, now
            )
            return st

        if self.statuses.update(rec, begin):
            self.events.post(rec.ref, "Normal", "MigrationStarted", message)

    # --- the protocol --------------------------------------------------------------------
    def _set_step(
        self,
        rec: JobRecord,
        step: str,
        change: Callable[[GridAwareJobStatus], GridAwareJobStatus] | None = None,
    ) -> None:
        def apply(st: GridAwareJobStatus) -> GridAwareJobStatus:
            st = st.model_copy(deep=True)
            assert st.migration is not None
            st.migration = st.migration.model_copy(update={"step": step})
            return change(st) if change else st

        self.statuses.update(rec, apply)

    def _members(self, mig: MigrationState) -> tuple[Member, Member]:
        source, target = self.cache.member(mig.source), self.cache.member(mig.target)
        if source is None or target is None or source.api is None or target.api is None:
            raise RetryLaterError("a cluster of the migration is not available yet", 2)
        return source, target

    def _advance(self, rec: JobRecord, spec: GridAwareJobSpec) -> None:
        mig = rec.status.migration
        assert mig is not None
        source, _target = self._members(mig)
        assert source.api is not None
        if mig.step == "Stopping":
            source.api.delete_job(
                rec.member_namespace,
                rec.name,
                grace_seconds=spec.migration.grace_period_seconds,
                kind=spec.kind,
            )
            self._set_step(rec, "WaitingForStop")
        if rec.status.migration is not None and rec.status.migration.step == "WaitingForStop":
            left = source.api.remaining_pods(
                rec.member_namespace, job_label_value(rec.namespace, rec.name)
            )
            if left or self.cache.job_in(mig.source, rec.member_namespace, rec.name) is not None:
                return  # the workload is still checkpointing; the next tick comes back
            self._record_segment(rec, mig)  # it ran (checkpointing) until its pods were gone
            self._set_step(rec, "Starting")
        mig = rec.status.migration
        if mig is not None and mig.step == "Starting":
            self._start(rec, spec, mig)
        mig = rec.status.migration
        if mig is not None and mig.step == "Started":
            st = rec.status
            if st.phase == "Running" and st.cluster == mig.target:
                self._finish(rec, mig)

    def _record_segment(self, rec: JobRecord, mig: MigrationState) -> None:
        """The source's run segment, ending now that no pod is left (the grace period in
        which the workload checkpointed drew energy too); recorded once."""
        st = rec.status
        start = self._segment_start(st)
        begun = rfc3339(self.clock.grid_clock.wall(start)) if start is not None else mig.decided
        if any(r.cluster == mig.source and r.start == begun for r in st.run_segments):
            return
        seg = RunRecord(cluster=mig.source, start=begun, end=rfc3339(self.clock.wall(), ms=True))
        self.statuses.update(
            rec,
            lambda s: s.model_copy(
                update={"run_segments": [*s.run_segments, seg], "segment_start": None}
            ),
        )

    def _start(self, rec: JobRecord, spec: GridAwareJobSpec, mig: MigrationState) -> None:
        target = self.cache.member(mig.target)
        assert target is not None and target.api is not None
        env = checkpoint_env(spec, len(rec.status.migrations) + 1)
        manifest = members.workload_manifest(
            rec.namespace, rec.name, rec.uid, mig.target, spec, env, rec.member_namespace
        )
        try:
            uid = target.api.create_job(manifest)
        except ConflictError:
            self._target_taken(rec, mig)
            return

        def started(st: GridAwareJobStatus) -> GridAwareJobStatus:
            st = st.model_copy(deep=True)
            st.member_job = MemberJobRef(
                cluster=mig.target, namespace=rec.member_namespace, name=rec.name, uid=uid
            )
            st.cluster, st.region, st.zone = mig.target, target.spec.region, target.spec.grid_zone
            st.phase = "Scheduled"
            st.start_time = None
            return st

        self._set_step(rec, "Started", started)

    def _target_taken(self, rec: JobRecord, mig: MigrationState) -> None:
        """A foreign Job holds the name in the target: go back to the source, or if that is
        already where we were going, place the job again."""
        rec.blocked.add(mig.target)
        message = f"a Job {rec.key} that this GridAwareJob did not create exists in {mig.target}"
        if mig.target != mig.source:
            back = mig.model_copy(update={"target": mig.source, "reason": message})
            self.statuses.update(rec, lambda s: s.model_copy(update={"migration": back}))
            self.events.post(
                rec.ref, "Warning", "MigrationTargetTaken", message + f"; back to {mig.source}"
            )
            return
        now = rfc3339(self.clock.wall())

        def requeue(st: GridAwareJobStatus) -> GridAwareJobStatus:
            st = lifecycle.unplaced(st, "NameConflict", message, None, now)
            st.migration = None
            return st

        self.statuses.update(rec, requeue)
        rec.requeued = True
        self.events.post(rec.ref, "Warning", "NameConflict", message + "; placing it again")

    def _finish(self, rec: JobRecord, mig: MigrationState) -> None:
        wall = self.clock.wall()
        takeover = wall - parse_time(mig.decided)
        record = MigrationRecord(
            time=mig.decided,
            source=mig.source,
            target=mig.target,
            reason=mig.reason,
            takeover_seconds=round(takeover, 3),
        )
        now = rfc3339(wall)

        def done(st: GridAwareJobStatus) -> GridAwareJobStatus:
            st = st.model_copy(deep=True)
            st.migration = None
            st.migrations = [*st.migrations, record]
            st.conditions = lifecycle.set_condition(
                st.conditions,
                "Migrating",
                "False",
                "Migrated",
                f"running in {mig.target} {takeover:.1f}s after the decision",
                None,
                now,
            )
            return st

        self.statuses.update(rec, done)
        self.metrics.migrations.labels(mig.source, mig.target).inc()
        self.metrics.takeover.observe(takeover)
        self.events.post(
            rec.ref,
            "Normal",
            "Migrated",
            f"moved from {mig.source} to {mig.target}; running again after {takeover:.1f}s",
        )
