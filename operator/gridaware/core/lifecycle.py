"""A GridAwareJob's status as a pure function of what was decided and what the member Job
reports: conditions, phase and timestamps, and whether anything changed at all (status is
written only when it did)."""

from __future__ import annotations

from typing import Any

from gridaware.api.v1alpha1 import (
    Condition,
    Deferral,
    GridAwareJobStatus,
    MemberJobRef,
    MemberJobState,
    PauseRecord,
    PauseState,
    PlacementRecord,
    RunRecord,
)
from gridaware.core.placement import ClusterSnapshot

TERMINAL = ("Succeeded", "Failed")


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: str,
    reason: str,
    message: str,
    generation: int | None,
    now: str,
) -> list[Condition]:
    """Conditions with ``type_`` set; lastTransitionTime changes only when status does."""
    out = []
    found = False
    for c in conditions:
        if c.type != type_:
            out.append(c)
            continue
        found = True
        changed = c.status != status
        out.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=now if changed else c.last_transition_time,
            )
        )
    if not found:
        out.append(
            Condition(
                type=type_,
                status=status,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=now,
            )
        )
    return out


def condition(status: GridAwareJobStatus, type_: str) -> Condition | None:
    return next((c for c in status.conditions if c.type == type_), None)


def mirror(
    status: GridAwareJobStatus, member: MemberJobState, generation: int | None, now: str
) -> GridAwareJobStatus:
    """The status after observing ``member`` (the Job this GridAwareJob owns)."""
    if status.phase in TERMINAL or not owns(status, member):
        return status
    if not (member.complete or member.failed_condition or (member.active and member.ready)):
        return status  # nothing to tell yet (the Job's uid waits for the next write)
    s = status.model_copy(deep=True)
    if s.member_job is not None and s.member_job.uid is None:
        s.member_job = s.member_job.model_copy(update={"uid": member.uid})
    where = f"{member.namespace}/{member.name} in {member.cluster}"
    if member.complete:
        s.phase = "Succeeded"
        s.completion_time = member.completion_time or now
        s.start_time = s.start_time or member.start_time
        s.conditions = set_condition(
            s.conditions, "Running", "False", "Completed", f"{where} completed", generation, now
        )
        s.conditions = set_condition(
            s.conditions,
            "Succeeded",
            "True",
            "JobCompleted",
            f"{where} completed ({member.succeeded} pods succeeded)",
            generation,
            now,
        )
    elif member.failed_condition:
        s.phase = "Failed"
        s.completion_time = member.completion_time or now
        s.conditions = set_condition(
            s.conditions, "Running", "False", "JobFailed", f"{where} failed", generation, now
        )
        s.conditions = set_condition(
            s.conditions,
            "Failed",
            "True",
            "JobFailed",
            member.message or f"{where} failed",
            generation,
            now,
        )
    elif member.active > 0 and member.ready > 0:
        if s.phase != "Running":
            s.segment_start = member.start_time or now
        s.phase = "Running"
        s.start_time = s.start_time or member.start_time or now
        s.conditions = set_condition(
            s.conditions,
            "Running",
            "True",
            "PodsRunning",
            f"{member.ready} of {member.active} pods ready in {where}",
            generation,
            now,
        )
    return s


def owns(status: GridAwareJobStatus, member: MemberJobState) -> bool:
    """Whether ``member`` is the Job that ``status`` refers to: the same cluster, and the same
    uid once it is known (a same-name Job of someone else never takes a job over)."""
    ref = status.member_job
    if ref is None or ref.cluster != member.cluster:
        return False
    return ref.uid is None or ref.uid == member.uid


def patch(old: dict[str, Any] | None, new: GridAwareJobStatus) -> dict[str, Any] | None:
    """A merge patch for ``status`` turning ``old`` into ``new`` (removed fields become null),
    or None if nothing changed."""
    target = new.model_dump(by_alias=True, exclude_none=True, mode="json")
    old = old or {}
    diff: dict[str, Any] = {k: v for k, v in target.items() if old.get(k) != v}
    diff |= {k: None for k, v in old.items() if k not in target and v is not None}
    return diff or None


def merged(raw: dict[str, Any], diff: dict[str, Any]) -> dict[str, Any]:
    """``raw`` after the merge patch ``diff``."""
    return {k: v for k, v in {**raw, **diff}.items() if v is not None}


def placed(
    s: GridAwareJobStatus,
    target: ClusterSnapshot,
    member_job: MemberJobRef,
    record: PlacementRecord,
    generation: int | None,
    history_limit: int,
) -> GridAwareJobStatus:
    """The status once the member Job of ``record``'s decision exists in ``target``."""
    s = s.model_copy(deep=True)
    if s.phase in (None, "Pending"):
        s.phase = "Scheduled"
    s.cluster, s.region, s.zone = target.name, target.region, target.zone
    s.member_job = member_job
    s.carbon_at_placement = None if target.carbon is None else round(target.carbon, 1)
    s.price_at_placement = None if target.price_usd is None else round(target.price_usd, 2)
    s.placed_time = record.time
    s.observed_generation = generation
    s.placements = [*s.placements, record][-history_limit:]
    s.conditions = set_condition(
        s.conditions,
        "Scheduled",
        "True",
        "Placed",
        f"placed in {target.name}: {record.reason}",
        generation,
        record.time,
    )
    if condition(s, "Deferred") is not None:
        s.conditions = set_condition(
            s.conditions,
            "Deferred",
            "False",
            "WindowReached",
            "the planned start time was reached",
            generation,
            record.time,
        )
    return s


def deferred(
    s: GridAwareJobStatus, deferral: Deferral, message: str, generation: int | None, now: str
) -> GridAwareJobStatus:
    """The status of a job waiting for a greener window; unchanged while the plan is (the
    "now" figures of a re-plan drift every minute and are not worth a write)."""
    if _same_plan(s, deferral, generation):
        return s
    s = s.model_copy(deep=True)
    s.phase = "Pending"
    s.deferral = deferral
    s.conditions = set_condition(
        s.conditions, "Deferred", "True", "GreenerWindowAhead", message, generation, now
    )
    s.conditions = set_condition(
        s.conditions, "Scheduled", "False", "Deferred", message, generation, now
    )
    return s


def _same_plan(s: GridAwareJobStatus, deferral: Deferral, generation: int | None) -> bool:
    d, cond = s.deferral, condition(s, "Deferred")
    return (
        s.phase == "Pending"
        and d is not None
        and (d.planned_start, d.cluster, d.expected_carbon)
        == (deferral.planned_start, deferral.cluster, deferral.expected_carbon)
        and cond is not None
        and cond.status == "True"
        and cond.observed_generation == generation
    )


def unplaced(
    s: GridAwareJobStatus, reason: str, message: str, generation: int | None, now: str
) -> GridAwareJobStatus:
    """Back to Pending after the member Job could not be created (it will be placed again)."""
    s = s.model_copy(deep=True)
    s.phase = "Pending"
    s.member_job = None
    s.cluster = s.region = s.zone = None
    s.conditions = set_condition(
        s.conditions, "Scheduled", "False", reason, message, generation, now
    )
    return s


def lost(s: GridAwareJobStatus, started: str | None, now: str, message: str) -> GridAwareJobStatus:
    """The member Job disappeared outside gridaware before it finished: record the run it had
    (for the account) and go back to Pending, so the job is placed again, never lost."""
    ref = s.member_job
    s = unplaced(s, "MemberJobLost", message, None, now)
    if ref is not None and started:
        s.run_segments = [*s.run_segments, RunRecord(cluster=ref.cluster, start=started, end=now)]
    s.start_time = None
    s.conditions = set_condition(
        s.conditions, "Running", "False", "MemberJobLost", message, None, now
    )
    return s


def invalid(
    s: GridAwareJobStatus, message: str, generation: int | None, now: str
) -> GridAwareJobStatus:
    s = s.model_copy(deep=True)
    s.phase = s.phase or "Pending"
    s.conditions = set_condition(
        s.conditions, "Scheduled", "False", "InvalidSpec", message, generation, now
    )
    return s


def waiting(
    s: GridAwareJobStatus,
    reason: str,
    message: str,
    record: PlacementRecord,
    generation: int | None,
    history_limit: int,
    now: str,
) -> GridAwareJobStatus:
    """Pending with the reason no cluster can take the job now (a new record per reason)."""
    s = s.model_copy(deep=True)
    s.phase = "Pending"
    old = condition(s, "Scheduled")
    s.conditions = set_condition(
        s.conditions, "Scheduled", "False", reason, message, generation, now
    )
    if old is None or old.reason != reason:
        s.placements = [*s.placements, record][-history_limit:]
    return s


def reachability(
    s: GridAwareJobStatus, cluster: str, ok: bool, message: str, now: str
) -> GridAwareJobStatus:
    s = s.model_copy(deep=True)
    s.conditions = set_condition(
        s.conditions,
        "ClusterReachable",
        "True" if ok else "False",
        "ClusterReachable" if ok else "ClusterUnreachable",
        f"cluster {cluster}: {message}",
        None,
        now,
    )
    return s


def spec_applied(s: GridAwareJobStatus, generation: int | None, now: str) -> GridAwareJobStatus:
    """The spec (still) applies: note the generation; a refusal is lifted once reverted."""
    s = s.model_copy(deep=True)
    s.observed_generation = generation
    if condition(s, "SpecApplied") is not None:
        s.conditions = set_condition(
            s.conditions, "SpecApplied", "True", "Applied", "the spec applies", generation, now
        )
    return s


def spec_refused(
    s: GridAwareJobStatus, message: str, generation: int | None, now: str
) -> GridAwareJobStatus:
    s = s.model_copy(deep=True)
    s.conditions = set_condition(
        s.conditions, "SpecApplied", "False", "SpecChangeRefused", message, generation, now
    )
    return s


def adopted(
    s: GridAwareJobStatus,
    member: MemberJobState,
    region: str | None,
    zone: str | None,
    generation: int | None,
    now: str,
) -> GridAwareJobStatus:
    """The member Job exists but the status lost track of it (crash between create and
    status write): record it instead of creating a second copy."""
    s = s.model_copy(deep=True)
    s.phase = s.phase if s.phase not in (None, "Pending") else "Scheduled"
    s.cluster, s.region, s.zone = member.cluster, region, zone
    s.member_job = MemberJobRef(
        cluster=member.cluster, namespace=member.namespace, name=member.name, uid=member.uid
    )
    s.observed_generation = generation
    s.conditions = set_condition(
        s.conditions,
        "Scheduled",
        "True",
        "Adopted",
        f"found the member Job in {member.cluster} after a restart",
        generation,
        now,
    )
    return mirror(s, member, generation, now)


MAX_PAUSE_RECORDS = 50


def pausing(s: GridAwareJobStatus, state: PauseState, now: str) -> GridAwareJobStatus:
    """A pause was decided: recorded before the member Job is suspended."""
    s = s.model_copy(deep=True)
    s.pause = state
    s.conditions = set_condition(
        s.conditions,
        "Paused",
        "True",
        "Pausing",
        f"{state.requested_by}: {state.reason}",
        None,
        now,
    )
    return s


def paused(s: GridAwareJobStatus, cluster: str, now: str) -> GridAwareJobStatus:
    """No pod of the job is left: the run segment ends here (for the account)."""
    s = s.model_copy(deep=True)
    assert s.pause is not None
    started = s.segment_start or s.start_time
    if started:
        s.run_segments = [*s.run_segments, RunRecord(cluster=cluster, start=started, end=now)]
    s.pause = s.pause.model_copy(update={"step": "Paused"})
    s.phase = "Paused"
    s.segment_start = None
    s.conditions = set_condition(
        s.conditions,
        "Running",
        "False",
        "Paused",
        f"paused in place: {s.pause.reason}",
        None,
        now,
    )
    return s


def resume_moved(
    s: GridAwareJobStatus, resume_at: str, reason: str, now: str
) -> GridAwareJobStatus:
    """A re-plan moved a planned resume: the time, and the reason and condition that name it."""
    s = s.model_copy(deep=True)
    assert s.pause is not None
    s.pause = s.pause.model_copy(update={"resume_at": resume_at, "reason": reason})
    s.conditions = set_condition(
        s.conditions, "Running", "False", "Paused", f"paused in place: {reason}", None, now
    )
    return s


def resuming(s: GridAwareJobStatus) -> GridAwareJobStatus:
    s = s.model_copy(deep=True)
    assert s.pause is not None
    s.pause = s.pause.model_copy(update={"step": "Resuming"})
    return s


def resumed(s: GridAwareJobStatus, now: str) -> GridAwareJobStatus:
    """The pods run again: the pause is over and recorded."""
    s = s.model_copy(deep=True)
    assert s.pause is not None
    record = PauseRecord(
        start=s.pause.since, end=now, reason=s.pause.reason, requested_by=s.pause.requested_by
    )
    s.pauses = [*s.pauses, record][-MAX_PAUSE_RECORDS:]
    s.pause = None
    s.conditions = set_condition(
        s.conditions, "Paused", "False", "Resumed", f"resumed after: {record.reason}", None, now
    )
    return s


def summary(s: GridAwareJobStatus) -> str:
    """One line for ``kubectl get gaj``: what the job is doing and until when."""
    if s.migration is not None:
        m = s.migration
        return f"Migrating {m.source}->{m.target} ({m.step})"
    if s.pause is not None:
        until = f" until {s.pause.resume_at}" if s.pause.resume_at else ""
        return f"{s.pause.step} ({s.pause.requested_by}){until}"
    deferred = condition(s, "Deferred")
    if deferred is not None and deferred.status == "True" and s.deferral is not None:
        return f"Deferred until {s.deferral.planned_start} in {s.deferral.cluster}"
    scheduled = condition(s, "Scheduled")
    if s.phase in (None, "Pending") and scheduled is not None:
        return f"Waiting: {scheduled.reason}"
    where = f" in {s.cluster}" if s.cluster else ""
    return f"{s.phase or 'Pending'}{where}"
