"""Pre-curtailment in the grid-event controller: nothing before ``start - lead``, then the
baseline and target fixed, starts held and jobs paused while the event is still Pending (the
status, condition and Event say so), the target met when the window opens, carried over a
restart, the lead lengthened by a ramp limit, deadlines of a voluntary event kept."""

from __future__ import annotations

from typing import Any

import pytest

from gridaware.api.v1alpha1 import rfc3339
from gridaware.services.gridevents import DEFAULT_GRACE_S, ROUNDS_WALL_S
from tests.fakes import T0, World, grid_event, job_spec, start_running
from tests.unit.test_gridevents_service import (
    KW,
    PAUSABLE,
    keys,
    paused,
    pods_gone,
    reconcile,
    service,
    set_budget,
)

START = T0 + 3600
REACTION = DEFAULT_GRACE_S + ROUNDS_WALL_S  # at 1x: the pods' grace and two rounds


def pauses(st: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in st.get("actions", []) if a["type"] == "Pause"]


def test_pre_curtailment_meets_the_target_at_the_window_start() -> None:
    world = World.make()
    ks = keys(8)
    start_running(world, ks, PAUSABLE)
    svc = service(world)
    body = grid_event("peak", START, START + 3 * 3600, reducePercent=25)
    st = reconcile(svc, body)
    assert st["phase"] == "Pending" and "baselineKw" not in st and not pauses(st)
    world.clock.t = START - REACTION - 1
    assert not pauses(reconcile(svc, body)), "never earlier than start - lead"
    world.clock.t = START - REACTION
    st = reconcile(svc, body)
    assert st["phase"] == "Pending"
    assert (st["baselineKw"], st["targetKw"]) == pytest.approx((8 * KW, 6 * KW))
    assert len(pauses(st)) == 2 and sorted(paused(world, ks)) == sorted(
        a["job"] for a in pauses(st)
    )
    assert all(a["reason"].startswith("pre-curtailment: ") for a in st["actions"])
    assert st["actions"][0]["type"] == "HoldStarts"
    cond = {c["type"]: c for c in st["conditions"]}["PreCurtailment"]
    assert cond["status"] == "True" and "pre-curtailment" in cond["message"]
    assert "PreCurtailment" in world.events.reasons()
    reason = svc.hold_reason("eu-central", KW, "team-a/new", None)
    assert reason is not None and "pre-curtailment" in reason and rfc3339(START) in reason
    pods_gone(world)
    world.clock.t = START - 1
    assert reconcile(svc, body)["currentKw"] == pytest.approx(6 * KW)
    world.clock.t = START + 60
    st = reconcile(svc, body)
    assert st["phase"] == "Active"
    assert st["timeToTargetSeconds"] == 0.0
    assert st["compliance"] == 1.0 and st["achievedKw"] == pytest.approx(6 * KW)
    assert len(pauses(st)) == 2, "the window's own round pauses nothing more"
    world.clock.t = START + 3 * 3600
    st = reconcile(svc, body)
    assert st["phase"] == "Completed" and st["compliance"] == 1.0
    assert [a["type"] for a in st["actions"]][-2:] == ["Resume", "Resume"]


def test_restart_during_pre_curtailment_carries_on() -> None:
    world = World.make()
    ks = keys(8)
    start_running(world, ks, PAUSABLE)
    body = grid_event("peak", START, START + 3600, reducePercent=25)
    world.clock.t = START - REACTION
    first = reconcile(service(world), body)
    world = world.restart()
    for k in ks:
        world.services.placement.place(world.hub.body(k))  # Kopf resumes every job
    pods_gone(world)
    world.clock.t = START - 10
    svc = service(world)
    st = reconcile(svc, body)
    assert st["actions"] == first["actions"], "nothing repeated"
    assert st["baselineKw"] == first["baselineKw"] and st["targetKw"] == first["targetKw"]
    assert svc.hold_reason("eu-central", KW, "team-a/new", None) is not None
    world.clock.t = START
    assert reconcile(svc, body)["timeToTargetSeconds"] == 0.0


def test_a_ramp_limit_begins_it_earlier() -> None:
    world = World.make()
    start_running(world, keys(8), PAUSABLE)
    svc = service(world)
    set_budget(world, rampKwPerMinute=2.5)
    body = grid_event("deep", START, START + 7200, reducePercent=50)
    lead = 60 + REACTION  # 4 pauses of 1.2 kW, 2 per minute
    world.clock.t = START - lead - 1
    assert not pauses(reconcile(svc, body))
    world.clock.t = START - lead
    assert len(pauses(reconcile(svc, body))) == 2
    world.clock.t = START - REACTION
    assert len(pauses(reconcile(svc, body))) == 4


def test_voluntary_pre_curtailment_keeps_deadlines() -> None:
    world = World.make()
    tight = job_spec(
        energy={"wattsPerReplica": 1000},
        flexibility={"pausable": True},
        schedule={"deadline": rfc3339(START + 3600 + 1800), "expectedDurationSeconds": 3600},
    )
    start_running(world, keys(4), tight)
    svc = service(world)
    body = grid_event("peak", START, START + 3600, reducePercent=50)
    world.clock.t = START - 600
    st = reconcile(svc, body)
    assert "baselineKw" not in st and paused(world, keys(4)) == []


def scheduled_cap(world: World, start: float, end: float, cap: float) -> None:
    """eu-central gets a power budget with one scheduled cap (the GridCluster update)."""
    period = {"start": rfc3339(start), "end": rfc3339(end), "capKw": cap}
    world.update_cluster("eu-central", powerBudget={"schedule": [period]})


def test_a_budget_step_down_is_pre_curtailed() -> None:
    """A cap of 6 jobs' kW from START: two of eight jobs are paused at START - lead (not a
    second earlier), nothing is resumed under the coming cap, and both resume once the cap
    is gone."""
    world = World.make()
    ks = keys(8)
    start_running(world, ks, PAUSABLE)
    svc = service(world)
    scheduled_cap(world, START, START + 3600, 6 * KW)
    world.clock.t = START - REACTION - 1
    svc.enforce_budget("eu-central")
    assert paused(world, ks) == []
    world.clock.t = START - REACTION
    svc.enforce_budget("eu-central")
    assert len(paused(world, ks)) == 2
    assert all("pre-curtailment" in world.status(k)["pause"]["reason"] for k in paused(world, ks))
    pods_gone(world)
    world.clock.t = START - 10
    power = svc.enforce_budget("eu-central")
    assert power is not None and power["nowKw"] == pytest.approx(6 * KW)
    assert all(world.status(k)["pause"]["step"] == "Paused" for k in paused(world, ks))
    world.clock.t = START + 60
    power = svc.enforce_budget("eu-central")
    assert power is not None and power["capKw"] == pytest.approx(6 * KW)
    assert len(paused(world, ks)) == 2
    world.clock.t = START + 3600
    svc.enforce_budget("eu-central")
    assert all(world.status(k)["pause"]["step"] == "Resuming" for k in paused(world, ks))


def test_an_event_cancelled_before_its_window_releases_what_it_paused_ahead() -> None:
    """The VEN marks a pending event the VTN withdrew ``Cancelled``: what pre-curtailment
    paused resumes, starts are no longer held, and the condition says so (once)."""
    world = World.make()
    ks = keys(8)
    start_running(world, ks, PAUSABLE)
    svc = service(world)
    body = grid_event("peak", START, START + 3600, reducePercent=25)
    world.clock.t = START - REACTION
    reconcile(svc, body)
    assert len(paused(world, ks)) == 2
    pods_gone(world)
    body["status"]["phase"] = "Cancelled"
    world.clock.t = START - 20
    st = reconcile(svc, body)
    assert [a["type"] for a in st["actions"]][-2:] == ["Resume", "Resume"]
    assert all(world.status(k)["pause"]["step"] == "Resuming" for k in paused(world, ks))
    assert svc.hold_reason("eu-central", KW, "team-a/new", None) is None
    cond = {c["type"]: c for c in st["conditions"]}["PreCurtailment"]
    assert (cond["status"], cond["reason"]) == ("False", "Released")
    assert svc.reconcile("peak", body) == {}, "nothing more to do"


def test_the_condition_ends_when_the_window_opens() -> None:
    world = World.make()
    start_running(world, keys(8), PAUSABLE)
    svc = service(world)
    body = grid_event("peak", START, START + 3600, reducePercent=25)
    world.clock.t = START - REACTION
    reconcile(svc, body)
    world.clock.t = START
    st = reconcile(svc, body)
    cond = {c["type"]: c for c in st["conditions"]}["PreCurtailment"]
    assert (st["phase"], cond["status"], cond["reason"]) == ("Active", "False", "WindowOpened")


def test_a_job_a_run_plan_resumes_before_the_window_counts() -> None:
    """One of eight jobs is paused by its run plan until 10 minutes before the window: the
    baseline counts it (8 jobs' kW, not the 7 drawing now) and two others are paused ahead."""
    world = World.make()
    ks = keys(8)
    start_running(world, ks, PAUSABLE)
    rec = world.services.statuses.get(ks[7])
    assert rec is not None
    world.services.pause.pause(rec, "a greener window is forecast", "plan", START - 600)
    pods_gone(world)
    svc = service(world)
    body = grid_event("peak", START, START + 3600, reducePercent=25)
    world.clock.t = START - REACTION
    st = reconcile(svc, body)
    assert (st["baselineKw"], st["targetKw"]) == pytest.approx((8 * KW, 6 * KW))
    assert len(pauses(st)) == 2 and ks[7] not in {a["job"] for a in pauses(st)}
