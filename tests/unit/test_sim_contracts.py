"""The simulator with green contracts (issue 13 item 3): contract specs, the CFE % each policy
reaches on a small hand-checked scenario, and ``gridaware+contracts`` replaying the operator's
``objective.valueContracts`` (contracted hours valued after the load already planned there).

The scenario: two regions from midnight UTC (zones Z0 and Z1, UTC offset 0), PUE 1, perfect
forecasts. Z0's grid is at 300 gCO2e/kWh with no renewable share, Z1's at 100 with 50 %.
Z0 has a 2 kW solar contract at 0 g: in the hour whose midpoint is m it delivers
``2 sin(pi (m - 6) / 12)`` kWh (07:00 0.77, 08:00 1.22, 09:00 1.59). Jobs draw 1 kW
(80 cpus at 12.5 W), last one hour and arrive at midnight with 24 h of slack.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.cli import main
from gridaware.sim import cfe as sim_cfe
from gridaware.sim import policies
from gridaware.sim.engine import Context, Params, evaluate
from gridaware.sim.scenario import Forecasts, Regions, Workload, add_contracts

DAY0 = 1_700_006_400  # 2023-11-15T00:00:00Z
HOURS, HORIZON = 96, 48


@pytest.mark.parametrize(
    ("spec", "zone", "shape", "kw", "intensity", "price", "cf"),
    [
        pytest.param("solar:500kW@US-CAL-CISO", "US-CAL-CISO", "solar", 500, 0, None, None,
                     id="solar-kw"),
        pytest.param("wind:2MW@DE-LU,cf=0.4,price=55", "DE-LU", "wind", 2000, 0, 55, 0.4,
                     id="wind-mw-with-options"),
        pytest.param("baseload:12.5@GB,g=15", "GB", "baseload", 12.5, 15, None, None,
                     id="baseload-bare-number-is-kw"),
    ],
)  # fmt: skip
def test_contract_specs(
    spec: str,
    zone: str,
    shape: str,
    kw: float,
    intensity: float,
    price: float | None,
    cf: float | None,
) -> None:
    got_zone, c = sim_cfe.parse_contract(spec)
    assert got_zone == zone
    assert (c.shape, c.power_kw, c.carbon_intensity) == (shape, kw, intensity)
    assert (c.price_usd_per_mwh, c.capacity_factor) == (price, cf)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param("solar500kW@GB", "expected SHAPE:POWER@ZONE", id="no-colon"),
        pytest.param("hydro:5kW@GB", "expected SHAPE:POWER@ZONE", id="unknown-shape"),
        pytest.param("solar:5kW", "expected SHAPE:POWER@ZONE", id="no-zone"),
        pytest.param("solar:5kW@GB,colour=green", "unknown option 'colour'", id="unknown-option"),
        pytest.param("wind:5kW@GB,cf=lots", "cf='lots' is not a number", id="not-a-number"),
        pytest.param("wind:5kW@GB,cf=2", "less than or equal to 1", id="cf-above-1"),
        pytest.param("solar:0kW@GB", "greater than 0", id="zero-power"),
    ],
)
def test_bad_contract_specs_say_what_is_wrong(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match="contract") as err:
        sim_cfe.parse_contract(spec)
    assert message in str(err.value)


@given(
    st.sampled_from(["baseload", "solar", "wind"]),
    st.integers(1, 10_000_000),
    st.sampled_from(["", "kW", "MW"]),
    st.from_regex(r"[A-Z]{2}(-[A-Z0-9]{2,5}){0,2}", fullmatch=True),
)
def test_any_wellformed_spec_parses_to_its_power(
    shape: str, milli: int, unit: str, zone: str
) -> None:
    power = milli / 1000
    try:
        z, c = sim_cfe.parse_contract(f"{shape}:{power}{unit}@{zone}")
    except ValueError as exc:  # only the API's capacity limit may refuse it
        assert "less than or equal to" in str(exc)
        assert power * (1000 if unit == "MW" else 1) > 1e7
        return
    assert z == zone and c.shape == shape
    assert c.power_kw == pytest.approx(power * (1000 if unit == "MW" else 1))


def context(jobs: int, contracts: list[str]) -> Context:
    carbon = np.array([np.full(HOURS, 300.0), np.full(HOURS, 100.0)])
    regions = Regions(
        ["Z0", "Z1"],
        carbon,
        np.full((2, HOURS), 50.0),
        ["x", "x"],
        np.ones(2),
        start=DAY0,
        hours=HOURS,
        renewable=np.array([np.zeros(HOURS), np.full(HOURS, 50.0)]),
    )
    regions.capacity = np.full(2, 1000.0)
    add_contracts(regions, contracts)
    a, length = np.zeros(jobs), np.ones(jobs)
    work = Workload(a, length, np.full(jobs, 80.0), np.zeros(jobs, dtype=np.int64), a + 25)
    ext = np.concatenate([carbon, carbon[:, :HORIZON]], axis=1)
    future = np.lib.stride_tricks.sliding_window_view(ext, HORIZON, axis=1)[:, :HOURS]
    params = Params(slack=24, horizon=HORIZON)
    return Context(regions, work, Forecasts(np.array(future), "perfect"), params)


def solar_kwh(kw: float, hour: int) -> float:
    return kw * max(0.0, math.sin(math.pi * (hour + 0.5 - 6) / 12))


@pytest.mark.parametrize(
    ("policy", "region", "start", "cfe", "location_g", "market_g"),
    [
        # midnight at home (Z0): no sun, no renewable share
        pytest.param("now", 0, 0.0, 0.0, 300.0, 300.0, id="now-at-home-at-midnight"),
        # Z1 at once: the grid's 50 % renewable share, 100 g either way
        pytest.param("gridaware", 1, 0.0, 50.0, 100.0, 100.0, id="gridaware-greener-grid"),
        pytest.param("oracle", 1, 0.0, 50.0, 100.0, 100.0, id="oracle-greener-grid"),
        # valued: 07:00 is 0.77 covered (0.23 x 300 = 70 g < 100), 08:00 fully (0 g): waits
        # for 08:00 in Z0, all 1 kWh from the contract; location-based it is the 300 g grid
        pytest.param(
            "gridaware+contracts", 0, 8.0, 100.0, 300.0, 0.0, id="valued-waits-for-the-sun"
        ),
    ],
)
def test_cfe_per_policy_by_hand(
    policy: str, region: int, start: float, cfe: float, location_g: float, market_g: float
) -> None:
    assert solar_kwh(2, 7) < 1 <= solar_kwh(2, 8)
    ctx = context(1, ["solar:2kW@Z0"])
    every = {**policies.POLICIES, **policies.CONTRACTS}
    result = evaluate(ctx, policy, every[policy](ctx))
    assert (result.schedule.region, result.schedule.start) == ([region], [start])
    m = result.cfe
    assert m is not None
    assert m.energy_kwh == pytest.approx(1.0)
    assert m.cfe_percent == pytest.approx(cfe)
    assert not m.estimated  # both traces give the renewable share
    assert m.location_g == pytest.approx(location_g)
    assert result.carbon_kg * 1000 == pytest.approx(location_g)  # one location figure
    assert m.market_g == pytest.approx(market_g)
    # delivered over the 25 h the workload spans: one day of sun, 2 / sin(pi / 24) kWh
    delivered = sum(solar_kwh(2, h) for h in range(24))
    assert delivered == pytest.approx(2 / math.sin(math.pi / 24))
    assert m.contract_delivered_kwh == pytest.approx(delivered)
    assert m.contract_unused_kwh == pytest.approx(delivered - m.contract_kwh)


def test_two_jobs_share_one_hours_contract_in_the_simulator() -> None:
    # the first job takes 1 of 08:00's 1.22 kWh; the second would get 1.22 / 2 there
    # (0.39 x 300 = 117 g > Z1's 100), so it plans 09:00 (1.59 kWh, all its own): both run on
    # the contract. Without the planned load both would pick 08:00 and share 1.22 kWh.
    ctx = context(2, ["solar:2kW@Z0"])
    result = evaluate(ctx, "gridaware+contracts", policies.gridaware_contracts(ctx))
    assert sorted(zip(result.schedule.start, result.schedule.region, strict=True)) == [
        (8.0, 0),
        (9.0, 0),
    ]
    assert result.cfe is not None
    assert result.cfe.contract_kwh == pytest.approx(2.0)
    assert result.cfe.cfe_percent == pytest.approx(100.0)


def test_without_contracts_the_valued_policy_is_gridaware() -> None:
    ctx = context(3, [])
    a = policies.gridaware(ctx)
    b = policies.gridaware_contracts(ctx)
    assert (a.region, a.start) == (b.region, b.start)


def test_a_contract_in_a_zone_outside_the_scenario_is_refused() -> None:
    with pytest.raises(ValueError, match="zone GB is not one of"):
        context(1, ["solar:2kW@GB"])


def write_trace(path: Path, values: list[float], renewable: list[float]) -> None:
    start = dt.datetime(2023, 11, 1, tzinfo=dt.UTC)
    rows = ["Datetime (UTC),Carbon Intensity gCO₂eq/kWh (LCA),Renewable Percentage"]
    for h, (v, r) in enumerate(zip(values, renewable, strict=True)):
        stamp = (start + dt.timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S")
        rows.append(f"{stamp},{v},{r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_simulate_reports_cfe_per_policy_with_contracts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # ten days: California at 300 g with no renewable share, Germany at 100 g with 50 %
    hours = 240
    write_trace(tmp_path / "carbon" / "US-CAL-CISO_2023_hourly.csv", [300.0] * hours, [0] * hours)
    write_trace(tmp_path / "carbon" / "DE-LU_2023_hourly.csv", [100.0] * hours, [50] * hours)
    workload = tmp_path / "jobs.csv"
    workload.write_text("arrival_time,length,cpus\n0,1,80\n24,2,80\n48,1,40\n", "utf-8")
    rc = main(
        [
            "simulate",
            "--data-dir",
            str(tmp_path),
            "--workload",
            str(workload),
            "--zones",
            "US-CAL-CISO,DE-LU",
            "--forecast",
            "perfect",
            "--contract",
            "solar:2kW@US-CAL-CISO",
            "--contract",
            "wind:1kW@DE-LU,cf=0.5",
            "--json",
            str(tmp_path / "r.json"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "CFE %" in out and "gridaware+contracts" in out and "MARKET kg" in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert set(data["contracts"]) == {"US-CAL-CISO", "DE-LU"}
    for name, p in data["policies"].items():
        assert 0 <= p["cfe_percent"] <= 100, name
        assert p["cfe_estimated"] is False
        assert p["contract_kwh"] <= p["energy_kwh"] + 1e-9
        assert p["contract_unused_kwh"] >= 0
    # the valued policy reaches the highest CFE %: the contracts serve its whole load
    best = max(p["cfe_percent"] for p in data["policies"].values())
    assert data["policies"]["gridaware+contracts"]["cfe_percent"] == pytest.approx(best)
    assert data["policies"]["gridaware+contracts"]["cfe_percent"] == pytest.approx(100.0)
