"""The grid-event controller in memory: baseline and target, pauses cheapest first, figures
that match a hand computation, resumption after the window, restart safety, budgets, ramp
limits and placement's questions."""

from __future__ import annotations

from typing import Any

import pytest

from gridaware.api.v1alpha1 import Deferral, GridAwareJobSpec, rfc3339
from gridaware.services.gridevents import GridEventService
from tests.fakes import T0, World, grid_event, job_spec, start_running

KW = 1.2  # 1000 W per replica x PUE 1.2
PAUSABLE = job_spec(energy={"wattsPerReplica": 1000}, flexibility={"pausable": True})
STEADY = job_spec(energy={"wattsPerReplica": 1000})


def service(world: World) -> GridEventService:
    s = world.services
    return GridEventService(s.cache, s.statuses, s.pause, world.events, s.clock)


def set_budget(world: World, **budget: float) -> None:
    """The GridCluster eu-central is updated with a power budget (the update handler)."""
    world.update_cluster("eu-central", powerBudget=budget)


def keys(n: int, prefix: str = "j") -> list[str]:
    return [f"team-a/{prefix}{i:02d}" for i in range(n)]


def reconcile(svc: GridEventService, body: dict[str, Any]) -> dict[str, Any]:
    """One timer round; the patch is applied to the body like Kopf's status patch."""
    patch = svc.reconcile(body["metadata"]["name"], body)
    body["status"] = {**body["status"], **patch}
    return body["status"]


def pods_gone(world: World) -> None:
    """Suspended Jobs' pods have terminated; the loop notices."""
    world.sync()
    world.services.tick()
    world.sync()


def paused(world: World, ks: list[str]) -> list[str]:
    return [k for k in ks if "pause" in world.status(k)]


def test_curtail_pauses_cheapest_first_then_resumes() -> None:
    world = World.make()
    ks = keys(8)
    start_running(world, ks[:6], PAUSABLE)
    start_running(world, ks[6:], STEADY)
    svc = service(world)
    body = grid_event("peak", T0 + 60, T0 + 3660, reducePercent=25)
    assert reconcile(svc, body)["phase"] == "Pending"
    world.clock.advance(60)
    st = reconcile(svc, body)
    assert st["phase"] == "Active"
    assert (st["baselineKw"], st["targetKw"]) == pytest.approx((8 * KW, 6 * KW))
    assert [a["type"] for a in st["actions"]] == ["Pause", "Pause"]
    assert sorted(paused(world, ks)) == sorted(a["job"] for a in st["actions"])
    assert all(k not in ks[6:] for k in paused(world, ks))  # never a job that cannot checkpoint
    pods_gone(world)
    world.clock.advance(30)
    st = reconcile(svc, body)
    assert st["currentKw"] == pytest.approx(6 * KW)
    assert st["timeToTargetSeconds"] == 30.0
    assert [c["status"] for c in st["conditions"] if c["type"] == "TargetMet"] == ["True"]
    assert len(st["actions"]) == 2  # nothing more to do: never a second pause
    world.clock.advance(3570)
    st = reconcile(svc, body)
    # 8 kW-units for 30 s, then 6 for 3570 s: mean and share of time met, by hand
    assert st["achievedKw"] == pytest.approx((8 * KW * 30 + 6 * KW * 3570) / 3600)
    assert st["compliance"] == pytest.approx(3570 / 3600)
    assert [a["type"] for a in st["actions"]][2:] == ["Resume", "Resume"]
    assert st["phase"] == "Completed"
    for k in ks:
        assert world.copies(k) == ["eu-central"]
    assert "Completed" in world.events.reasons()


def test_voluntary_event_keeps_deadlines() -> None:
    world = World.make()
    tight = job_spec(
        energy={"wattsPerReplica": 1000},
        flexibility={"pausable": True},
        schedule={"deadline": rfc3339(T0 + 5400), "expectedDurationSeconds": 3600},
    )
    start_running(world, keys(4), tight)
    svc = service(world)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=50)
    st = reconcile(svc, body)
    assert st.get("actions", []) == []
    assert paused(world, keys(4)) == []
    mandatory = grid_event("order", T0, T0 + 3600, mandatory=True, reducePercent=50)
    st = reconcile(service(world), mandatory)
    assert len(st["actions"]) == 2


def test_operator_restart_mid_event_carries_on() -> None:
    world = World.make()
    ks = keys(8)
    start_running(world, ks, PAUSABLE)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=25)
    st = reconcile(service(world), body)
    first = [a["job"] for a in st["actions"]]
    assert len(first) == 2
    world = world.restart()
    early = service(world)
    world.clock.advance(1)
    assert early.reconcile("peak", body) == {}, "jobs not resumed by Kopf yet: wait"
    for k in ks:
        world.services.placement.place(world.hub.body(k))  # Kopf resumes every job
    pods_gone(world)
    world.clock.advance(60)
    svc = service(world)
    st = reconcile(svc, body)
    assert [a["job"] for a in st["actions"]] == first  # same jobs, nothing repeated
    assert st["baselineKw"] == pytest.approx(8 * KW)
    assert st["currentKw"] == pytest.approx(6 * KW)
    world.clock.advance(3600)
    assert reconcile(svc, body)["phase"] == "Completed"
    resumed = paused(world, ks)
    assert sorted(resumed) == sorted(first)
    assert all(world.status(k)["pause"]["step"] == "Resuming" for k in resumed)
    assert all(world.copies(k) == ["eu-central"] for k in ks)


def test_ramp_limit_spreads_pauses_and_resumes() -> None:
    world = World.make()
    ks = keys(8)
    start_running(world, ks, PAUSABLE)
    svc = service(world)
    set_budget(world, rampKwPerMinute=2.5)
    body = grid_event("deep", T0, T0 + 7200, reducePercent=50)
    st = reconcile(svc, body)
    assert len(st["actions"]) == 2  # 2 x 1.2 kW fit in 2.5 kW per minute
    world.clock.advance(30)
    assert len(reconcile(svc, body)["actions"]) == 2
    world.clock.advance(30)
    assert len(reconcile(svc, body)["actions"]) == 4


def test_budget_pauses_over_the_cap_and_resumes_under_it() -> None:
    world = World.make()
    ks = keys(6)
    start_running(world, ks, PAUSABLE)
    svc = service(world)
    set_budget(world, capKw=5.0)
    power = svc.enforce_budget("eu-central")
    assert power is not None and power["nowKw"] == pytest.approx(6 * KW)
    assert len(paused(world, ks)) == 2  # 7.2 -> 4.8 kW
    pods_gone(world)
    power = svc.enforce_budget("eu-central")
    assert power is not None and power["nowKw"] == pytest.approx(4 * KW)
    assert power["capKw"] == 5.0 and power["pausedJobs"] == 2
    assert svc.hold_reason("eu-central", KW, "team-a/new", None) is not None  # 4.8 + 1.2 > 5
    set_budget(world, capKw=6.1)
    svc.enforce_budget("eu-central")
    resuming = [k for k in ks if world.status(k).get("pause", {}).get("step") == "Resuming"]
    assert len(resuming) == 1  # 4.8 + 1.2 <= 6.1; a second would exceed it


def test_placement_questions_hold_and_pull_forward() -> None:
    world = World.make()
    ks = keys(4)
    start_running(world, ks, PAUSABLE)
    later = "team-a/later"
    world.hub.add_job("team-a", "later", PAUSABLE)
    rec = world.services.statuses.seed(world.hub.body(later))
    rec.spec = GridAwareJobSpec.model_validate(PAUSABLE)
    deferral = Deferral(planned_start=rfc3339(T0 + 3600), cluster="eu-central", expected_carbon=50)
    world.services.statuses.update(rec, lambda s: s.model_copy(update={"deferral": deferral}))
    svc = service(world)
    curtail = grid_event("peak", T0, T0 + 7200, reducePercent=10)
    st = reconcile(svc, curtail)
    assert st["actions"][0]["type"] == "HoldStarts"
    reason = svc.hold_reason("eu-central", KW, later, None)
    assert reason is not None and "held" in reason
    assert svc.hold_reason("eu-central", KW, later, T0 + 1800) is None  # would miss deadline
    assert svc.hold_reason("us-west", KW, later, None) is None
    solar = grid_event("solar", T0, T0 + 3600, kind="Absorb", zones=("DE-LU",), upToKw=2)
    st = reconcile(svc, solar)
    assert [(a["type"], a["job"]) for a in st["actions"]] == [("PullForward", later)]
    assert svc.pulled_forward(later) == "eu-central"
    assert svc.pulled_forward("team-a/j00") is None


def test_deleted_event_resumes_what_it_paused() -> None:
    world = World.make()
    ks = keys(4)
    start_running(world, ks, PAUSABLE)
    svc = service(world)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=50)
    reconcile(svc, body)
    assert len(paused(world, ks)) == 2
    pods_gone(world)
    assert svc.cancel("peak", "") == 0
    assert all(world.status(k)["pause"]["step"] == "Resuming" for k in paused(world, ks))


def test_ramp_limit_at_placement() -> None:
    world = World.make()
    set_budget(world, rampKwPerMinute=2.5)
    svc = service(world)
    assert svc.hold_reason("eu-central", KW, "a/b", None) is None
    svc.note_start("eu-central", KW)
    svc.note_start("eu-central", KW)
    reason = svc.hold_reason("eu-central", KW, "a/c", None)
    assert reason is not None and "ramp limit of DE-LU" in reason
    assert svc.hold_reason("us-west", KW, "a/c", None) is None  # another zone
    world.clock.advance(60)
    assert svc.hold_reason("eu-central", KW, "a/c", None) is None
