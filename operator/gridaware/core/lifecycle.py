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
    PlacementRecord,
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
    if status.phase in TERMINAL:
        return status
    s = status.model_copy(deep=True)
    if s.member_job is not None and member.uid and s.member_job.uid != member.uid:
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


def patch(old: dict[str, Any] | None, new: GridAwareJobStatus) -> dict[str, Any] | None:
    """A merge patch for ``status`` turning ``old`` into ``new``, or None if nothing changed."""
    target = new.model_dump(by_alias=True, exclude_none=True, mode="json")
    old = old or {}
    diff: dict[str, Any] = {}
    for key, value in target.items():
        if old.get(key) != value:
            diff[key] = value
    return diff or None


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
    """The status of a job waiting for a greener window."""
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
