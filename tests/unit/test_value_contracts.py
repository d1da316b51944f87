"""Placement and start-time planning with ``objective.valueContracts`` in the in-memory world
(issue 13 item 3), by hand.

The world's grid: us-west (California, UTC-8) at 300 gCO2e/kWh and eu-central at 100, both
flat. us-west has a contract; a job draws 10 kW IT power, 12 kWh in an hour with the default
PUE of 1.2. A solar contract of P kW delivers ``P x sin(pi x (m - 6) / 12)`` kWh in the local
hour whose midpoint is m (``core.cfe.solar_profile``).
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from gridaware.api.v1alpha1 import parse_time
from gridaware.services.placement import RetryLaterError
from tests.fakes import World, job_spec

H = 3600.0
NOON_UTC = parse_time("2023-11-15T20:00:00Z")  # 12:00 in us-west (UTC-8)
MIDNIGHT_UTC = parse_time("2023-11-15T08:00:00Z")  # 00:00 in us-west
SIX_AM_UTC = parse_time("2023-11-15T14:00:00Z")  # 06:00 in us-west


def with_contracts(world: World, cluster: str, contracts: list[dict[str, Any]]) -> None:
    """The admin adds green contracts to a GridCluster."""
    world.update_cluster(cluster, greenContracts=contracts)


def spec(value: bool, **extra: Any) -> dict[str, Any]:
    return job_spec(
        energy={"wattsPerReplica": 10_000},
        placement={"clusters": ["us-west", "eu-central"]},
        objective={"valueContracts": value},
        **extra,
    )


def solar(kw: float) -> dict[str, Any]:
    return {"name": "pv", "powerKw": kw, "carbonIntensity": 20, "shape": "solar"}


def place(world: World, key: str, body_spec: dict[str, Any]) -> dict[str, Any]:
    ns, name = key.split("/")
    world.hub.add_job(ns, name, body_spec)
    world.services.placement.place(world.hub.body(key))
    return world.status(key)


def candidates(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["cluster"]: c for c in status["placements"][-1]["candidates"]}


def run(world: World, key: str) -> None:
    cluster = world.status(key)["cluster"]
    job = world.members[cluster].jobs[key]
    job.state, job.started = "Running", world.clock.t
    world.sync()


@pytest.mark.parametrize(
    ("t", "value", "cluster", "west_carbon"),
    [
        # noon: 100 kW x sin(pi x 6.5 / 12) = 99 kWh >= the job's 12: all at the contract's 20 g
        pytest.param(NOON_UTC, True, "us-west", 20.0, id="solar-contract-wins-at-noon"),
        # the option off: the grids compare, eu-central's 100 g beats us-west's 300 g
        pytest.param(NOON_UTC, False, "eu-central", 300.0, id="option-off-unchanged"),
        # midnight: the solar contract delivers nothing; market-based equals the grid
        pytest.param(MIDNIGHT_UTC, True, "eu-central", 300.0, id="solar-covers-no-night-job"),
    ],
)
def test_a_solar_contract_makes_a_noon_start_in_its_cluster_win(
    t: float, value: bool, cluster: str, west_carbon: float
) -> None:
    world = World.make()
    world.clock.t = t
    with_contracts(world, "us-west", [solar(100)])
    status = place(world, "team-a/a", spec(value))
    assert status["cluster"] == cluster
    assert status["carbonAtPlacement"] == (300.0 if cluster == "us-west" else 100.0)  # grid's
    c = candidates(status)
    assert c["us-west"]["carbon"] == pytest.approx(west_carbon)
    assert c["eu-central"]["carbon"] == pytest.approx(100.0)
    # score = carbon x PUE / 400
    assert c["us-west"]["score"] == pytest.approx(west_carbon * 1.2 / 400)
    if not value:
        assert "market-based" not in str(status["placements"])
        return
    assert "market-based" in status["placements"][-1]["reason"]
    covered = "contracts cover 100 %" if t == NOON_UTC else "its contracts cover nothing then"
    assert covered in c["us-west"]["reason"]
    assert c["eu-central"]["reason"] == "market-based: no green contract (grid values)"


def test_two_jobs_share_one_hours_contract() -> None:
    # a 12 kW baseload contract at 0 g covers one 12 kWh job: the first goes to us-west at 0 g;
    # with it running, the second would get half: 0.5 x 0 + 0.5 x 300 = 150 g > eu-central's 100
    world = World.make()
    world.clock.t = NOON_UTC
    with_contracts(world, "us-west", [{"name": "ppa", "powerKw": 12, "carbonIntensity": 0}])
    a = place(world, "team-a/a", spec(True))
    assert a["cluster"] == "us-west"
    assert candidates(a)["us-west"]["carbon"] == pytest.approx(0.0)
    run(world, "team-a/a")
    b = place(world, "team-a/b", spec(True))
    assert b["cluster"] == "eu-central"
    west = candidates(b)["us-west"]
    assert west["carbon"] == pytest.approx(150.0)
    assert "contracts cover 50 %" in west["reason"]


def test_a_placed_job_that_has_not_started_counts_too() -> None:
    # a burst: b is placed before a's pods run; a's planned load already takes the contract
    world = World.make()
    world.clock.t = NOON_UTC
    with_contracts(world, "us-west", [{"name": "ppa", "powerKw": 12, "carbonIntensity": 0}])
    assert place(world, "team-a/a", spec(True))["cluster"] == "us-west"
    b = place(world, "team-a/b", spec(True))
    assert candidates(b)["us-west"]["carbon"] == pytest.approx(150.0)
    assert b["cluster"] == "eu-central"


def first_covered_hour(kw: float, need_kwh: float) -> int:
    """The first local hour whose solar delivery covers ``need_kwh``."""
    return next(h for h in range(6, 18) if kw * math.sin(math.pi * (h + 0.5 - 6) / 12) >= need_kwh)


@pytest.mark.parametrize(
    ("value", "deferred"),
    [
        pytest.param(True, True, id="planned-into-the-covered-hours"),
        pytest.param(False, False, id="option-off-starts-now-in-eu-central"),
    ],
)
def test_planning_waits_for_the_hours_a_solar_contract_covers(value: bool, deferred: bool) -> None:
    # at 06:00 in us-west, one hour of work due by 18:00 local; a 20 kW solar contract at 0 g
    # first covers the job's 12 kWh in the hour 08:00-09:00 local (20 x sin(pi x 2.5 / 12) =
    # 12.2 kWh; 07:00-08:00 gives 7.7): the plan starts there, at 0 g (16:00 UTC)
    assert first_covered_hour(20, 12) == 8
    world = World.make()
    world.clock.t = SIX_AM_UTC
    with_contracts(world, "us-west", [{**solar(20), "carbonIntensity": 0}])
    schedule = {"deadline": "2023-11-16T02:00:00Z", "expectedDurationSeconds": 3600}
    body = spec(value, schedule=schedule)
    if not deferred:
        assert place(world, "team-a/a", body)["cluster"] == "eu-central"
        return
    with pytest.raises(RetryLaterError):
        place(world, "team-a/a", body)
    st = world.status("team-a/a")
    assert st["deferral"]["plannedStart"] == "2023-11-15T16:00:00Z"
    assert st["deferral"]["cluster"] == "us-west"
    assert st["deferral"]["expectedCarbon"] == pytest.approx(0.0)
    assert "market-based" in world.events.posted[-1][2]
    world.clock.t = parse_time("2023-11-15T16:00:00Z")
    world.services.placement.place(world.hub.body("team-a/a"))
    st = world.status("team-a/a")
    assert st["cluster"] == "us-west"
    assert candidates(st)["us-west"]["carbon"] == pytest.approx(0.0)


def test_a_deferred_job_holds_its_planned_hours_for_the_next() -> None:
    # a is deferred into 08:00-09:00 local in us-west and plans to draw 12 of the 12.2 kWh
    # delivered then; b would get 12.2 / 24 of that hour (0.49 x 300 = 148 g > eu-central's
    # 100), so it plans the next hour, 09:00-10:00 local, which it would have to itself:
    # 20 x sin(pi x 3.5 / 12) = 15.9 kWh >= 12, all at 0 g
    world = World.make()
    world.clock.t = SIX_AM_UTC
    with_contracts(world, "us-west", [{**solar(20), "carbonIntensity": 0}])
    schedule = {"deadline": "2023-11-16T02:00:00Z", "expectedDurationSeconds": 3600}
    with pytest.raises(RetryLaterError):
        place(world, "team-a/a", spec(True, schedule=schedule))
    assert world.status("team-a/a")["deferral"]["plannedStart"] == "2023-11-15T16:00:00Z"
    with pytest.raises(RetryLaterError):
        place(world, "team-a/b", spec(True, schedule=schedule))
    b = world.status("team-a/b")["deferral"]
    assert b["plannedStart"] == "2023-11-15T17:00:00Z"
    assert b["expectedCarbon"] == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("value", "moves"),
    [
        # valued without its own load, the 12 kW contract covers all of the job's 12 kWh an
        # hour at 0 g: it stays (counting its own load would leave it half: 25 g now, 150 g
        # later, and eu-central's 100 g would win)
        pytest.param(True, False, id="covered-job-stays"),
        # the grid's 300 g from the next hour against eu-central's 100 g: it moves
        pytest.param(False, True, id="option-off-moves-to-the-greener-grid"),
    ],
)
def test_migration_values_a_running_job_without_its_own_load(value: bool, moves: bool) -> None:
    # us-west is at 50 g in the noon hour and forecast at 300 g from the next: both place the
    # job there, then the migration check weighs the rest of its four hours
    world = World.make(carbon={"US-CAL-CISO": 50.0, "DE-LU": 100.0, "US-MIDA-PJM": 200.0})
    world.feeds.hourly["US-CAL-CISO"] = [50.0] * 23 + [300.0] * 40  # hour 22 from T0 is noon
    world.clock.t = NOON_UTC
    with_contracts(world, "us-west", [{"name": "ppa", "powerKw": 12, "carbonIntensity": 0}])
    movable = spec(
        value,
        migration={"policy": "Checkpoint", "minDwellSeconds": 60},
        schedule={"expectedDurationSeconds": 4 * 3600},
    )
    assert place(world, "team-a/a", movable)["cluster"] == "us-west"
    run(world, "team-a/a")
    world.clock.advance(120)
    world.services.tick()
    migration = world.status("team-a/a").get("migration")
    assert (migration is not None) is moves
    if moves:
        assert migration["target"] == "eu-central"
