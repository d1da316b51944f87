"""Grid events move checkpointing jobs out of a curtailed zone when they may not be paused:
through the one migration protocol (never two copies), to the greenest cluster with room,
never past a deadline, recorded once in the event's status and not repeated after a restart;
the event's figures are also metrics."""

from __future__ import annotations

from typing import Any

import pytest

from gridaware.api.v1alpha1 import rfc3339
from tests.fakes import T0, World, grid_event, job_spec, start_running

KW = 1.2  # 1000 W per replica x PUE 1.2
# Checkpointing (so movable) but never paused in place: maxPauses 0.
MOVABLE = job_spec(
    energy={"wattsPerReplica": 1000},
    migration={"policy": "Checkpoint", "gracePeriodSeconds": 5},
    flexibility={"maxPauses": 0},
)
STEADY = job_spec(energy={"wattsPerReplica": 1000})


def keys(n: int, prefix: str = "j") -> list[str]:
    return [f"team-a/{prefix}{i:02d}" for i in range(n)]


def reconcile(world: World, body: dict[str, Any]) -> dict[str, Any]:
    """One timer round of the operator's own grid-event service (patch applied like Kopf's)."""
    patch = world.services.gridevents.reconcile(body["metadata"]["name"], body)
    body["status"] = {**body["status"], **patch}
    return body["status"]


def moving(world: World, ks: list[str]) -> list[str]:
    return [k for k in ks if "migration" in world.status(k)]


def at_most_one_copy(world: World, ks: list[str]) -> None:
    for k in ks:
        assert len(world.copies(k)) <= 1, f"{k} has two copies: {world.copies(k)}"


def finish_moves(world: World, ks: list[str]) -> None:
    """The background loop and the member watches carry the moves through: the source's pods
    are gone, the target's Job is created and its pods run."""
    for _ in range(3):
        world.sync()
        world.services.tick()
        at_most_one_copy(world, ks)
        for k in ks:
            for name in world.copies(k):
                job = world.members[name].jobs[k]
                if job.state == "Active":
                    job.state, job.started = "Running", world.clock.t
    world.sync()
    world.services.tick()


def test_curtail_met_by_moving_out_when_pausing_is_not_allowed() -> None:
    world = World.make()
    ks = keys(8)
    start_running(world, ks[:6], MOVABLE)
    start_running(world, ks[6:], STEADY)
    assert all(world.copies(k) == ["eu-central"] for k in ks)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=25)
    st = reconcile(world, body)
    assert (st["baselineKw"], st["targetKw"]) == pytest.approx((8 * KW, 6 * KW))
    moves = [(a["type"], a["cluster"]) for a in st["actions"]]
    assert moves == [("Migrate", "eu-central")] * 2
    moved = [a["job"] for a in st["actions"]]
    assert sorted(moving(world, ks)) == sorted(moved)
    assert all(k in ks[:6] for k in moved)  # never a job that cannot checkpoint
    # the greenest cluster outside DE-LU with room: us-east (200 g/kWh) before us-west (300)
    assert {world.status(k)["migration"]["target"] for k in moved} == {"us-east"}
    assert all("pause" not in world.status(k) for k in ks)  # no pause was allowed
    at_most_one_copy(world, ks)
    finish_moves(world, ks)
    for k in moved:
        assert world.copies(k) == ["us-east"]
        assert world.status(k)["migrations"][0]["target"] == "us-east"
    world.clock.advance(30)
    st = reconcile(world, body)
    assert st["currentKw"] == pytest.approx(6 * KW)
    assert st["timeToTargetSeconds"] == 30.0
    assert len(st["actions"]) == 2  # met: nothing more, never a second move
    reason = world.services.gridevents.hold_reason("eu-central", KW, "team-a/new", None)
    assert reason is not None and "held" in reason  # what moved out is not replaced
    world.clock.advance(3570)
    st = reconcile(world, body)
    # 8 units for 30 s, then 6 for 3570 s, by hand
    assert st["achievedKw"] == pytest.approx((8 * KW * 30 + 6 * KW * 3570) / 3600)
    assert st["compliance"] == pytest.approx(3570 / 3600)
    assert st["phase"] == "Completed"
    assert all(len(world.copies(k)) == 1 for k in ks)


def test_pauses_first_then_moves_and_deadlines_kept() -> None:
    """Two jobs may pause, four may only move and two of those have a deadline that cannot
    wait for a move (5 minutes of overhead); a 75 % curtailment needs six units."""
    world = World.make()
    tight = job_spec(
        energy={"wattsPerReplica": 1000},
        migration={"policy": "Checkpoint"},
        flexibility={"maxPauses": 0},
        schedule={"deadline": rfc3339(T0 + 3600 + 200), "expectedDurationSeconds": 3600},
    )
    pausable = job_spec(energy={"wattsPerReplica": 1000}, flexibility={"pausable": True})
    ks = keys(8)
    start_running(world, ks[:2], pausable)
    start_running(world, ks[2:4], MOVABLE)
    start_running(world, ks[4:6], tight)
    start_running(world, ks[6:], STEADY)
    body = grid_event("deep", T0, T0 + 7200, reducePercent=75)
    st = reconcile(world, body)
    kinds = [(a["type"], a["job"]) for a in st["actions"]]
    assert sorted(kinds[:2]) == [("Pause", k) for k in ks[:2]]  # the cheaper response first
    assert sorted(kinds[2:]) == [("Migrate", k) for k in ks[2:4]]
    assert moving(world, ks) == ks[2:4]
    assert all("migration" not in world.status(k) for k in ks[4:6])  # deadline kept
    finish_moves(world, ks)
    world.clock.advance(60)
    st = reconcile(world, body)
    assert st["currentKw"] == pytest.approx(4 * KW)  # 75 % not reachable without deadlines
    assert len(st["actions"]) == 4


def test_restart_mid_move_carries_on_without_repeating() -> None:
    world = World.make()
    ks = keys(8)
    start_running(world, ks, MOVABLE)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=25)
    st = reconcile(world, body)
    first = [a["job"] for a in st["actions"]]
    assert len(first) == 2 and moving(world, ks) == sorted(first)
    world = world.restart()  # the sources are deleted; the targets not created yet
    world.clock.advance(1)
    assert world.services.gridevents.reconcile("peak", body) == {}, "jobs not known yet"
    for k in ks:
        world.services.placement.place(world.hub.body(k))  # Kopf resumes every job
    at_most_one_copy(world, ks)
    finish_moves(world, ks)
    world.clock.advance(60)
    st = reconcile(world, body)
    assert [a["job"] for a in st["actions"]] == first  # same jobs, nothing repeated
    assert st["currentKw"] == pytest.approx(6 * KW)
    for k in ks:
        assert world.copies(k) == (["us-east"] if k in first else ["eu-central"])
        assert len(world.status(k).get("migrations", [])) == (1 if k in first else 0)


def test_no_move_without_room_outside() -> None:
    world = World.make()
    ks = keys(4)
    start_running(world, ks, MOVABLE)
    for name in ("us-west", "us-east"):
        world.members[name].down = True
        world.connect(name)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=50)
    st = reconcile(world, body)
    assert st.get("actions", []) == []
    assert moving(world, ks) == []


def test_compliance_and_loads_are_metrics() -> None:
    world = World.make()
    start_running(world, keys(4), MOVABLE)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=25)
    reconcile(world, body)
    finish_moves(world, keys(4))
    world.clock.advance(600)
    st = reconcile(world, body)
    registry = world.services.metrics.registry

    def value(metric: str, event: str = "peak") -> float | None:
        return registry.get_sample_value(metric, {"event": event, "kind": "Curtail"})

    assert value("gridaware_gridevent_compliance_ratio") == pytest.approx(st["compliance"])
    assert value("gridaware_gridevent_target_kw") == pytest.approx(3 * KW)
    assert value("gridaware_gridevent_achieved_kw") == pytest.approx(st["achievedKw"])
    assert value("gridaware_gridevent_current_kw") == pytest.approx(3 * KW)
    world.clock.advance(3000)
    assert reconcile(world, body)["phase"] == "Completed"
    assert value("gridaware_gridevent_compliance_ratio") is None  # only while Active
    later = grid_event("later", T0 + 7200, T0 + 9000, reducePercent=10)
    reconcile(world, later)
    assert value("gridaware_gridevent_target_kw", "later") is None  # Pending
    world.clock.advance(3600)
    reconcile(world, later)
    assert value("gridaware_gridevent_target_kw", "later") is not None
    world.services.gridevents.cancel("later", "")
    assert value("gridaware_gridevent_target_kw", "later") is None  # deleted


def test_moved_work_does_not_come_back_while_the_window_lasts() -> None:
    """DE-LU stays the greenest zone: the ordinary migration loop would bring a moved job
    back at once; while the Curtail holds starts there it does not, afterwards it does."""
    world = World.make()
    ks = keys(4)
    greedy = job_spec(
        energy={"wattsPerReplica": 1000},
        migration={"policy": "Checkpoint", "minDwellSeconds": 0, "margin": 0},
        flexibility={"maxPauses": 0},
        schedule={"expectedDurationSeconds": 4 * 3600},
    )
    start_running(world, ks, greedy)
    body = grid_event("peak", T0, T0 + 3600, reducePercent=25)
    moved = [a["job"] for a in reconcile(world, body)["actions"]]
    assert len(moved) == 1
    finish_moves(world, ks)
    for _ in range(3):
        world.clock.advance(600)
        reconcile(world, body)
        finish_moves(world, ks)
        assert world.copies(moved[0]) == ["us-east"]
    world.clock.advance(1800)
    assert reconcile(world, body)["phase"] == "Completed"
    world.clock.advance(600)
    finish_moves(world, ks)
    assert world.copies(moved[0]) == ["eu-central"]  # greener again, and no longer held
