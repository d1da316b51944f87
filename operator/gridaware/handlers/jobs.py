"""GridAwareJob handlers: place on create/resume, refuse spec changes that cannot apply to a
running job, and delete the member Job before the hub object goes (finalizer)."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from pydantic import ValidationError

from gridaware.api.v1alpha1 import (
    GridAwareJobSpec,
    GridAwareJobStatus,
    MemberJobRef,
    PlacementRecord,
    now_rfc3339,
)
from gridaware.core import lifecycle, quantity
from gridaware.core.placement import JobRequest, decide
from gridaware.handlers import metrics
from gridaware.handlers.registry import REGISTRY
from gridaware.handlers.runtime import RUNTIME
from gridaware.k8s import clients, hub, members
from gridaware.k8s.clients import FAILURES

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
    decision = decide(
        JobRequest(requests, job_spec.placement, job_spec.objective), REGISTRY.snapshot()
    )
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
