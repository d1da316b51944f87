"""Pausing a running job in place and resuming it later in the same cluster: the one
mechanism that interruptible run plans and grid events (curtailment) share.

The member Job is suspended (``spec.suspend: true``): the Job controller stops its pods, each
with its termination grace period, so a workload that checkpoints on SIGTERM loses nothing;
resuming starts new pods, which find their checkpoint in ``GRIDAWARE_CHECKPOINT_DIR``. Like a
migration, a pause is a state machine recorded in ``status.pause`` before each action
(Pausing -> Paused -> Resuming -> done), every action is idempotent, and a restarted
operator continues where it was. A pause never creates a copy: the same Job is resumed.
"""

from __future__ import annotations

import logging

from gridaware.api.v1alpha1 import PauseState, job_label_value, parse_time, rfc3339
from gridaware.core import lifecycle
from gridaware.services.cache import Cache
from gridaware.services.ports import Clock, EventsPort
from gridaware.services.statuses import JobRecord, Statuses

log = logging.getLogger("gridaware.pause")


class NotPausableError(ValueError):
    """The job cannot be paused now; the message says why."""


class PauseService:
    def __init__(self, cache: Cache, statuses: Statuses, events: EventsPort, clock: Clock) -> None:
        self.cache = cache
        self.statuses = statuses
        self.events = events
        self.clock = clock

    def check(self, rec: JobRecord) -> None:
        """Raise ``NotPausableError`` unless the job may be paused right now."""
        st, spec = rec.status, rec.spec
        if spec is None or not spec.pausable:
            raise NotPausableError(
                "the job does not checkpoint (set flexibility.pausable or migration.policy "
                "Checkpoint)"
            )
        if st.phase != "Running" or st.member_job is None:
            raise NotPausableError(f"the job is {st.phase or 'Pending'}, not Running")
        if st.migration is not None or st.pause is not None or rec.deleting:
            raise NotPausableError("the job is already moving or pausing")
        if len(st.pauses) >= spec.flexibility.max_pauses:
            raise NotPausableError(f"the job was paused {len(st.pauses)} times already")

    def pause(
        self, rec: JobRecord, reason: str, requested_by: str, resume_at: float | None = None
    ) -> None:
        """Start pausing (recorded first, then the member Job is suspended)."""
        with rec.busy:
            self.check(rec)
            spec = rec.spec
            assert spec is not None
            limit = spec.flexibility.max_pause_seconds
            if limit is not None:
                latest = self.clock.grid_now() + limit
                resume_at = latest if resume_at is None else min(resume_at, latest)
            state = PauseState(
                step="Pausing",
                reason=reason,
                requested_by=requested_by,
                since=rfc3339(self.clock.wall(), ms=True),
                resume_at=None if resume_at is None else rfc3339(resume_at),
            )
            now = rfc3339(self.clock.wall())
            if self.statuses.update(rec, lambda s: lifecycle.pausing(s, state, now)):
                self.events.post(rec.ref, "Normal", "Pausing", f"{requested_by}: {reason}")
            self._suspend(rec, True)

    def resume(self, rec: JobRecord) -> None:
        """Ask for the job to run again (idempotent)."""
        with rec.busy:
            if rec.status.pause is None or _at(rec, "Resuming"):
                return
            if _at(rec, "Pausing"):
                self.advance(rec)  # the pods must be gone before the pause can end
                if not _at(rec, "Paused"):
                    return
            self.statuses.update(rec, lifecycle.resuming)
            self._suspend(rec, False)

    def advance(self, rec: JobRecord) -> None:
        """Move a pause along: Pausing -> Paused once no pod is left; Paused -> Resuming at
        ``resume_at``; Resuming -> done once the pods run (the mirror sets Running)."""
        st = rec.status
        p, ref = st.pause, st.member_job
        if p is None or ref is None:
            return
        with rec.busy:
            if p.step == "Pausing":
                self._suspend(rec, True)  # repeated after a restart: harmless
                member = self.cache.member(ref.cluster)
                if member is None or member.api is None:
                    return  # not connected yet (after a restart): the next round comes back
                left = member.api.remaining_pods(
                    ref.namespace, job_label_value(rec.namespace, rec.name)
                )
                if left == 0:
                    now = rfc3339(self.clock.wall())
                    self.statuses.update(rec, lambda s: lifecycle.paused(s, ref.cluster, now))
                    self.events.post(rec.ref, "Normal", "Paused", f"paused in {ref.cluster}")
            elif p.step == "Paused":
                due = p.resume_at is not None and parse_time(p.resume_at) <= self.clock.grid_now()
                if due:
                    self.resume(rec)
            elif st.phase == "Running":
                now = rfc3339(self.clock.wall())
                self.statuses.update(rec, lambda s: lifecycle.resumed(s, now))
                self.events.post(rec.ref, "Normal", "Resumed", f"running again in {ref.cluster}")
            else:
                self._suspend(rec, False)

    def _suspend(self, rec: JobRecord, suspended: bool) -> None:
        ref = rec.status.member_job
        assert ref is not None
        member = self.cache.member(ref.cluster)
        if member is None or member.api is None:
            return  # the loop comes back when the cluster answers
        kind = rec.spec.kind if rec.spec is not None else "Job"
        member.api.set_suspended(ref.namespace, ref.name, suspended, kind)


def _at(rec: JobRecord, step: str) -> bool:
    return rec.status.pause is not None and rec.status.pause.step == step
