"""Moving running jobs to greener clusters: the migration protocol as an idempotent state
machine recorded in ``status.migration``.

Stopping (record the segment, delete the source Job with the grace period so the workload
checkpoints on SIGTERM) -> WaitingForStop (until no pod of the job is left in the source) ->
Starting (create in the target with the checkpoint location in the environment) -> Started
(until the target's pods run; then the takeover time is recorded). Each step is written
before it acts and every action tolerates being repeated, so an operator killed at any step
resumes where it was, and a copy in the target is only created once the source has none.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import kopf
from pydantic import ValidationError

from gridaware.api.v1alpha1 import (
    GridAwareJobSpec,
    GridAwareJobStatus,
    MemberJobRef,
    MigrationRecord,
    MigrationState,
    RunRecord,
    job_label_value,
    now_rfc3339,
)
from gridaware.core import lifecycle, migration, quantity
from gridaware.core.placement import JobRequest
from gridaware.handlers import jobs, metrics
from gridaware.handlers.registry import REGISTRY
from gridaware.handlers.runtime import RUNTIME
from gridaware.k8s import hub, members
from gridaware.k8s.clients import FAILURES

log = logging.getLogger("gridaware.migrations")


def _wall(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _stamp_ms(t: float) -> str:
    return (
        dt.datetime.fromtimestamp(t, tz=dt.UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


def _active(spec: kopf.Spec, status: kopf.Status, **_: Any) -> bool:
    st: dict[str, Any] = dict(status)
    policy = dict(spec.get("migration") or {}).get("policy", "Never")
    return bool(st.get("migration")) or (policy != "Never" and st.get("phase") == "Running")


@kopf.timer("gridaware.dev", "v1alpha1", "gridawarejobs", interval=2.0, when=_active)
def migrate(**kwargs: Any) -> None:
    with metrics.timed("migrate"):
        _migrate(**kwargs)


def _migrate(
    namespace: str | None,
    name: str,
    uid: str,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    **_: Any,
) -> None:
    assert namespace is not None
    key = f"{namespace}/{name}"
    REGISTRY.seed_status(key, dict(status))
    current = REGISTRY.status(key)
    if current is None or current.member_job is None:
        return
    try:
        job_spec = GridAwareJobSpec.model_validate(dict(spec))
    except ValidationError:
        return
    if current.phase in lifecycle.TERMINAL:
        if current.migration is not None:
            REGISTRY.update_status(key, lambda s: s.model_copy(update={"migration": None}))
        return
    if current.migration is None:
        _consider(key, body, job_spec, current)
        current = REGISTRY.status(key)
    if current is not None and current.migration is not None:
        _advance(key, namespace, name, uid, body, job_spec, current)


def _segment_start(s: GridAwareJobStatus) -> float | None:
    if s.run_segments:
        return _wall(s.run_segments[-1].end)
    return _wall(s.start_time)


def _consider(key: str, body: kopf.Body, job_spec: GridAwareJobSpec, s: GridAwareJobStatus) -> None:
    duration = job_spec.schedule.expected_duration_seconds if job_spec.schedule else None
    start_wall = _segment_start(s)
    if s.phase != "Running" or duration is None or start_wall is None or s.cluster is None:
        return
    clock = RUNTIME.clock
    now = RUNTIME.grid_now()
    policy = job_spec.migration
    current_run = now - clock.grid(start_wall)
    if policy.policy == "Checkpoint":
        done = sum(
            clock.grid(_wall(r.end) or 0) - clock.grid(_wall(r.start) or 0) for r in s.run_segments
        ) - policy.overhead_seconds * len(s.migrations)
        progress = max(0.0, done) + current_run
    else:
        progress = current_run
    remaining = max(0.0, duration - progress)
    requests, _ = quantity.job_requests(job_spec.template)
    request = JobRequest(requests, job_spec.placement, job_spec.objective)
    hour0 = now // 3600 * 3600
    hours = min(
        RUNTIME.feeds_config.forecast_hours, int((remaining + policy.overhead_seconds) // 3600) + 2
    )
    room = {c.name for c in REGISTRY.snapshot() if c.free.fits(requests) or c.name == s.cluster}
    forecasts = [f for f in jobs.forecasts(request, hour0, hours) if f.cluster in room]
    move = migration.consider(
        s.cluster,
        forecasts,
        job_spec.objective,
        policy,
        now,
        remaining,
        current_run,
        len(s.migrations),
    )
    if move is None:
        return
    state = MigrationState(
        step="Stopping",
        source=s.cluster,
        target=move.target,
        reason=move.reason,
        decided=_stamp_ms(time.time()),
    )

    def begin(st: GridAwareJobStatus) -> GridAwareJobStatus:
        st = st.model_copy(deep=True)
        st.migration = state
        st.conditions = lifecycle.set_condition(
            st.conditions,
            "Migrating",
            "True",
            "GreenerClusterAhead",
            f"moving from {state.source} to {state.target}: {move.reason}",
            None,
            now_rfc3339(),
        )
        return st

    REGISTRY.update_status(key, begin)
    hub.post_event(
        REGISTRY.hub_client,
        dict(body),
        "Normal",
        "MigrationStarted",
        f"moving from {state.source} to {state.target}: {move.reason}",
    )


def _step(key: str, step: str, change: Any = None) -> None:
    def apply(st: GridAwareJobStatus) -> GridAwareJobStatus:
        st = st.model_copy(deep=True)
        assert st.migration is not None
        st.migration = st.migration.model_copy(update={"step": step})
        return change(st) if change else st

    REGISTRY.update_status(key, apply)


def _advance(
    key: str,
    namespace: str,
    name: str,
    uid: str,
    body: kopf.Body,
    job_spec: GridAwareJobSpec,
    s: GridAwareJobStatus,
) -> None:
    mig = s.migration
    assert mig is not None
    source, target = REGISTRY.members.get(mig.source), REGISTRY.members.get(mig.target)
    if source is None or target is None or source.client is None or target.client is None:
        raise kopf.TemporaryError("a cluster of the migration is not available yet", delay=2)
    try:
        if mig.step == "Stopping":
            if not any(r.cluster == mig.source and r.end == mig.decided for r in s.run_segments):
                seg = RunRecord(
                    cluster=mig.source,
                    start=now_rfc3339(
                        dt.datetime.fromtimestamp(_segment_start(s) or time.time(), tz=dt.UTC)
                    ),
                    end=mig.decided,
                )
                REGISTRY.update_status(
                    key, lambda st: st.model_copy(update={"run_segments": [*st.run_segments, seg]})
                )
            members.delete_job(
                source.client,
                namespace,
                name,
                grace_seconds=job_spec.migration.grace_period_seconds,
            )
            _step(key, "WaitingForStop")
            mig = mig.model_copy(update={"step": "WaitingForStop"})
        if mig.step == "WaitingForStop":
            left = members.remaining_pods(
                source.client, namespace, job_label_value(namespace, name)
            )
            if left or key in source.jobs:
                return  # the workload is still checkpointing; the timer comes back
            _step(key, "Starting")
            mig = mig.model_copy(update={"step": "Starting"})
        if mig.step == "Starting":
            _start_in_target(key, namespace, name, uid, job_spec, s, mig)
            return
        if mig.step == "Started":
            current = REGISTRY.status(key)
            if current is None or current.phase != "Running" or current.cluster != mig.target:
                return
            _finish(key, body, mig)
    except FAILURES as exc:
        raise kopf.TemporaryError(
            f"migration step {mig.step} failed: {getattr(exc, 'reason', exc)}", delay=2
        ) from exc


def _start_in_target(
    key: str,
    namespace: str,
    name: str,
    uid: str,
    job_spec: GridAwareJobSpec,
    s: GridAwareJobStatus,
    mig: MigrationState,
) -> None:
    target = REGISTRY.members[mig.target]
    env = {"GRIDAWARE_MIGRATION": str(len(s.migrations) + 1)}
    if job_spec.migration.policy == "Checkpoint":
        env |= {
            "GRIDAWARE_CHECKPOINT_DIR": job_spec.migration.checkpoint_dir,
            "GRIDAWARE_RESUME": "1",
        }
    manifest = members.job_manifest(namespace, name, uid, mig.target, job_spec.template, env)
    member_uid, _ = members.create_job(target.client, manifest)

    def started(st: GridAwareJobStatus) -> GridAwareJobStatus:
        st = st.model_copy(deep=True)
        st.member_job = MemberJobRef(
            cluster=mig.target, namespace=namespace, name=name, uid=member_uid
        )
        st.cluster, st.region, st.zone = mig.target, target.spec.region, target.spec.grid_zone
        st.phase = "Scheduled"
        return st

    _step(key, "Started", started)


def _finish(key: str, body: kopf.Body, mig: MigrationState) -> None:
    takeover = time.time() - (_wall(mig.decided) or time.time())
    record = MigrationRecord(
        time=mig.decided,
        source=mig.source,
        target=mig.target,
        reason=mig.reason,
        takeover_seconds=round(takeover, 3),
    )

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
            now_rfc3339(),
        )
        return st

    REGISTRY.update_status(key, done)
    metrics.MIGRATIONS.labels(mig.source, mig.target).inc()
    metrics.TAKEOVER.observe(takeover)
    hub.post_event(
        REGISTRY.hub_client,
        dict(body),
        "Normal",
        "Migrated",
        f"moved from {mig.source} to {mig.target}; running again after {takeover:.1f}s",
    )
