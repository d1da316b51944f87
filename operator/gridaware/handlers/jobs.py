"""GridAwareJob handlers: place on create/resume, refuse spec changes that cannot apply to a
running job, and delete the member Job before the hub object goes (finalizer)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import kopf
import numpy as np
from pydantic import ValidationError

from gridaware.api.signals import Signal
from gridaware.api.v1alpha1 import (
    Deferral,
    GridAwareJobSpec,
    GridAwareJobStatus,
    MemberJobRef,
    Objective,
    PlacementRecord,
    now_rfc3339,
)
from gridaware.core import lifecycle, money, quantity, shifting
from gridaware.core.placement import Decision, JobRequest, could_run_later, decide
from gridaware.handlers import metrics
from gridaware.handlers.registry import REGISTRY
from gridaware.handlers.runtime import RUNTIME
from gridaware.k8s import clients, hub, members
from gridaware.k8s.clients import FAILURES
from gridaware.signals.errors import SignalError

log = logging.getLogger("gridaware.jobs")


def _key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


def _invalid(key: str, body: kopf.Body, generation: int | None, message: str) -> None:
    def change(s: GridAwareJobStatus) -> GridAwareJobStatus:
        s = s.model_copy(deep=True)
        s.phase = s.phase or "Pending"
        s.conditions = lifecycle.set_condition(
            s.conditions, "Scheduled", "False", "InvalidSpec", message, generation, now_rfc3339()
        )
        return s

    if REGISTRY.update_status(key, change):
        hub.post_event(REGISTRY.hub_client, dict(body), "Warning", "InvalidSpec", message)


def _wait(
    key: str,
    body: kopf.Body,
    generation: int | None,
    reason: str,
    message: str,
    record: PlacementRecord,
) -> None:
    def change(s: GridAwareJobStatus) -> GridAwareJobStatus:
        s = s.model_copy(deep=True)
        s.phase = "Pending"
        old = lifecycle.condition(s, "Scheduled")
        s.conditions = lifecycle.set_condition(
            s.conditions, "Scheduled", "False", reason, message, generation, now_rfc3339()
        )
        if old is None or old.reason != reason:
            s.placements = [*s.placements, record][-RUNTIME.history_limit :]
        return s

    if REGISTRY.update_status(key, change):
        hub.post_event(REGISTRY.hub_client, dict(body), "Normal", reason, message)


@kopf.on.resume("gridaware.dev", "v1alpha1", "gridawarejobs")
@kopf.on.create("gridaware.dev", "v1alpha1", "gridawarejobs")
def place(**kwargs: Any) -> None:
    with metrics.timed("place"):
        _place(**kwargs)


def _place(
    namespace: str | None,
    name: str,
    uid: str,
    body: kopf.Body,
    spec: kopf.Spec,
    status: kopf.Status,
    meta: kopf.Meta,
    **_: Any,
) -> None:
    assert namespace is not None
    key = _key(namespace, name)
    generation = meta.get("generation")
    REGISTRY.seed_status(key, dict(status))
    current = REGISTRY.status(key)
    if current is not None and current.member_job is not None:
        return  # placed before (this run or a previous one): the member watch follows it
    try:
        job_spec = GridAwareJobSpec.model_validate(dict(spec))
        requests, _parallelism = quantity.job_requests(job_spec.template)
    except (ValidationError, ValueError) as exc:
        _invalid(key, body, generation, f"spec is invalid: {exc}".replace("\n", " ")[:900])
        return
    if not REGISTRY.all_synced():
        raise kopf.TemporaryError("waiting for member clusters to be listed", delay=2)
    existing = REGISTRY.find_member_job(key)
    if existing is not None and existing.owner_uid == uid:
        _adopt(key, existing, generation)
        return
    objective, preferred = job_spec.objective, None
    if job_spec.schedule is not None:
        objective, preferred = _shift(key, body, meta, job_spec, requests, generation)
    decision = _decide(JobRequest(requests, job_spec.placement, objective), preferred)
    record = PlacementRecord(
        time=now_rfc3339(),
        cluster=decision.cluster.name if decision.cluster else None,
        reason=decision.reason,
        candidates=decision.candidates,
    )
    if decision.cluster is None:
        assert decision.wait is not None
        _wait(key, body, generation, decision.wait.value, decision.reason, record)
        metrics.PLACEMENTS.labels("none", decision.wait.value).inc()
        raise kopf.TemporaryError(decision.reason, delay=RUNTIME.retry_delay)
    target = decision.cluster
    member = REGISTRY.members[target.name]
    with REGISTRY.lock:
        REGISTRY.pending[key] = (target.name, requests)
    manifest = members.job_manifest(namespace, name, uid, target.name, job_spec.template)
    try:
        member_uid, _created = members.create_job(member.client, manifest)
    except (*FAILURES, ValueError) as exc:
        with REGISTRY.lock:
            REGISTRY.pending.pop(key, None)
        refused = str(exc) if isinstance(exc, ValueError) else clients.rejection(exc)
        if refused is not None:  # permanent: retrying the same spec cannot help
            _invalid(key, body, generation, f"{target.name} refused the Job: {refused}")
            return
        reason = getattr(exc, "reason", None) or exc.__class__.__name__
        raise kopf.TemporaryError(
            f"creating the Job in {target.name} failed: {reason}", delay=RUNTIME.retry_delay
        ) from exc

    ref = MemberJobRef(cluster=target.name, namespace=namespace, name=name, uid=member_uid)
    REGISTRY.update_status(
        key,
        lambda s: lifecycle.placed(s, target, ref, record, generation, RUNTIME.history_limit),
    )
    metrics.PLACEMENTS.labels(target.name, "Placed").inc()
    hub.post_event(
        REGISTRY.hub_client,
        dict(body),
        "Normal",
        "Placed",
        f"placed in {target.name} ({target.zone}): {decision.reason}",
    )


def _decide(job: JobRequest, preferred: str | None) -> Decision:
    """Place now: in the cluster the start-time plan chose (forecast greenest over the whole
    run) when it can take the job, else wherever scores best right now."""
    _refresh_signals()
    snapshot = REGISTRY.snapshot()
    decision = decide(job, snapshot)
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
    return Decision(target, reason, decision.candidates)


def _refresh_signals() -> None:
    """Current readings for every member (from the feeds' cache; the daemons probe only
    every few seconds, which is many grid minutes when a replay runs accelerated)."""
    feeds = RUNTIME.feeds
    if feeds is None:
        return
    for m in list(REGISTRY.members.values()):
        for signal, zone in (
            (Signal.CARBON, m.spec.grid_zone),
            (Signal.PRICE, m.spec.price_zone or m.spec.grid_zone),
        ):
            try:
                reading = feeds.reading(zone, signal)
            except SignalError:
                continue
            if signal is Signal.CARBON:
                m.carbon = reading
            else:
                m.price = reading


def _grid_time(text: str | None) -> float | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def forecasts(job: JobRequest, hour0: float, hours: int) -> list[shifting.Forecast]:
    feeds = RUNTIME.feeds
    out: list[shifting.Forecast] = []
    if feeds is None:
        return out
    for c in REGISTRY.snapshot():
        if not could_run_later(job, c):
            continue
        member = REGISTRY.members.get(c.name)
        if member is None:
            continue
        try:
            carbon = feeds.forecast(c.zone, Signal.CARBON, hours).hourly(int(hour0), hours)
            price = None
            if job.objective.price_weight > 0:
                zone = member.spec.price_zone or c.zone
                p = feeds.forecast(zone, Signal.PRICE, hours)
                price = p.hourly(int(hour0), hours) * money.to_usd_per_mwh(1.0, p.unit)
        except (SignalError, KeyError) as exc:
            log.info("no forecast for %s: %s", c.name, exc)
            continue
        n = int(np.argmax(~np.isfinite(carbon))) if not np.all(np.isfinite(carbon)) else hours
        if price is not None:
            bad = ~np.isfinite(price)
            n = min(n, int(np.argmax(bad)) if bad.any() else hours)
        if n == 0:
            continue
        out.append(
            shifting.Forecast(
                c.name, c.pue, hour0, carbon[:n], None if price is None else price[:n]
            )
        )
    return out


def _shift(
    key: str,
    body: kopf.Body,
    meta: kopf.Meta,
    job_spec: GridAwareJobSpec,
    requests: Any,
    generation: int | None,
) -> tuple[Objective, str | None]:
    """Defer the job (raising kopf.TemporaryError) while a clearly greener window lies ahead
    within its deadline; returns the objective to place with now (at the latest start the
    deadline wins over the carbon ceiling)."""
    sched = job_spec.schedule
    assert sched is not None
    clock, now = RUNTIME.clock, RUNTIME.grid_now()
    created_wall = _grid_time(meta.get("creationTimestamp"))
    created = clock.grid(created_wall) if created_wall else now
    earliest = _grid_time(sched.earliest_start) or created
    duration = sched.expected_duration_seconds
    deadline = _grid_time(sched.deadline)
    if deadline is None and sched.max_delay_seconds is not None and duration:
        deadline = created + sched.max_delay_seconds + duration
    if earliest > now + 1 and (duration is None or deadline is None):
        _defer(key, body, generation, earliest, "", None, None, now, "earliestStart")
    if duration is None or deadline is None:
        return job_spec.objective, None
    latest = deadline - duration
    if now >= latest:
        return job_spec.objective.model_copy(update={"carbon_ceiling": None}), None
    hour0 = now // 3600 * 3600
    hours = min(RUNTIME.feeds_config.forecast_hours, int(np.ceil((deadline - hour0) / 3600)) + 1)
    request = JobRequest(requests, job_spec.placement, job_spec.objective)
    plan = shifting.plan(
        forecasts(request, hour0, hours), job_spec.objective, now, earliest, latest, duration
    )
    if plan is None or not plan.defers(now, tolerance=0.0):
        return job_spec.objective, None if plan is None else plan.cluster
    _defer(
        key,
        body,
        generation,
        plan.start,
        plan.cluster,
        plan.expected_carbon,
        plan.start_now_carbon,
        now,
        "forecast",
    )
    return job_spec.objective, None  # not reached: _defer raises


def _defer(
    key: str,
    body: kopf.Body,
    generation: int | None,
    start: float,
    cluster: str,
    expected: float | None,
    now_carbon: float | None,
    now: float,
    why: str,
) -> None:
    when = now_rfc3339(dt.datetime.fromtimestamp(start, tz=dt.UTC))
    if why == "earliestStart":
        message = f"waiting for spec.schedule.earliestStart {when}"
    else:
        message = (
            f"a greener window is forecast: start at {when} in {cluster} at "
            f"{expected:.0f} gCO2e/kWh"
            + (f" (now {now_carbon:.0f})" if now_carbon is not None else "")
        )
    deferral = Deferral(
        planned_start=when,
        cluster=cluster or "-",
        expected_carbon=round(expected or 0.0, 1),
        carbon_now=None if now_carbon is None else round(now_carbon, 1),
    )
    before = REGISTRY.status(key)
    prior = lifecycle.condition(before, "Deferred") if before is not None else None
    was = prior is not None and prior.status == "True"
    changed = REGISTRY.update_status(
        key, lambda s: lifecycle.deferred(s, deferral, message, generation, now_rfc3339())
    )
    if not was:
        metrics.DEFERRALS.labels(cluster or "-").inc()
    if changed:
        hub.post_event(REGISTRY.hub_client, dict(body), "Normal", "Deferred", message)
    # wake up just after the planned start (or earlier, to re-plan with newer forecasts)
    delay = min(RUNTIME.replan_wall_seconds, RUNTIME.clock.wall_seconds(start - now) + 0.5)
    raise kopf.TemporaryError(message, delay=max(1.0, delay))


def _adopt(key: str, state: Any, generation: int | None) -> None:
    """A member Job of ours exists but the hub status lost track of it (crash between the two
    writes): record it instead of creating a second copy."""
    m = REGISTRY.members.get(state.cluster)

    def adopted(s: GridAwareJobStatus) -> GridAwareJobStatus:
        s = s.model_copy(deep=True)
        s.phase = s.phase if s.phase not in (None, "Pending") else "Scheduled"
        s.cluster = state.cluster
        if m is not None:
            s.region, s.zone = m.spec.region, m.spec.grid_zone
        s.member_job = MemberJobRef(
            cluster=state.cluster, namespace=state.namespace, name=state.name, uid=state.uid
        )
        s.observed_generation = generation
        s.conditions = lifecycle.set_condition(
            s.conditions,
            "Scheduled",
            "True",
            "Adopted",
            f"found the member Job in {state.cluster} after a restart",
            generation,
            now_rfc3339(),
        )
        return lifecycle.mirror(s, state, generation, now_rfc3339())

    REGISTRY.update_status(key, adopted)


@kopf.on.update("gridaware.dev", "v1alpha1", "gridawarejobs", field="spec")
def spec_changed(
    namespace: str | None,
    name: str,
    body: kopf.Body,
    meta: kopf.Meta,
    old: Any,
    new: Any,
    **kwargs: Any,
) -> None:
    assert namespace is not None
    key = _key(namespace, name)
    current = REGISTRY.status(key)
    generation = meta.get("generation")
    if current is None or current.member_job is None:
        scheduled = lifecycle.condition(current, "Scheduled") if current else None
        if scheduled is not None and scheduled.reason == "InvalidSpec":
            _place(namespace=namespace, name=name, body=body, meta=meta, **kwargs)
        # otherwise the placement handler's next attempt uses the new spec
        return
    changed = sorted(
        k for k in set((old or {}) | (new or {})) if (old or {}).get(k) != (new or {}).get(k)
    )
    immutable = [k for k in changed if k in ("template", "placement")]
    if not immutable:
        REGISTRY.update_status(
            key, lambda s: s.model_copy(update={"observed_generation": generation})
        )
        return
    message = (
        f"spec.{', spec.'.join(immutable)} cannot change after the job was placed in "
        f"{current.cluster}; the running job keeps its original spec. Delete and "
        "re-create the GridAwareJob to apply the change"
    )

    def refuse(s: GridAwareJobStatus) -> GridAwareJobStatus:
        s = s.model_copy(deep=True)
        s.conditions = lifecycle.set_condition(
            s.conditions,
            "SpecApplied",
            "False",
            "SpecChangeRefused",
            message,
            generation,
            now_rfc3339(),
        )
        return s

    if REGISTRY.update_status(key, refuse):
        hub.post_event(REGISTRY.hub_client, dict(body), "Warning", "SpecChangeRefused", message)


@kopf.on.delete("gridaware.dev", "v1alpha1", "gridawarejobs")
def delete(**kwargs: Any) -> None:
    with metrics.timed("delete"):
        _delete(**kwargs)


def _delete(namespace: str | None, name: str, uid: str, status: kopf.Status, **_: Any) -> None:
    assert namespace is not None
    key = _key(namespace, name)
    targets = set()
    ref: dict[str, Any] = dict(status.get("memberJob") or {})
    if ref.get("cluster"):
        targets.add(ref["cluster"])
    found = REGISTRY.find_member_job(key)
    if found is not None and found.owner_uid == uid:
        targets.add(found.cluster)
    for cluster in sorted(targets):
        member = REGISTRY.members.get(cluster)
        if member is None:
            continue  # the cluster was unregistered: nothing we can reach
        if member.client is None or not member.reachable:
            raise kopf.TemporaryError(
                f"cluster {cluster} is unreachable; will retry the deletion of the member Job",
                delay=5,
            )
        try:
            members.delete_job(member.client, namespace, name)
        except FAILURES as exc:
            raise kopf.TemporaryError(
                f"deleting the member Job in {cluster} failed: {getattr(exc, 'reason', exc)}",
                delay=5,
            ) from exc
    REGISTRY.forget(key)
