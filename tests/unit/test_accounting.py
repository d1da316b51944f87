"""Hourly-matched accounts by hand: contract shapes, sharing one hour's contracted energy among
concurrent jobs by their energy, the grid's carbon-free share, and location- and market-based
figures that never mix (issue 13 items 1-2, issue 10 item 10)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.api.v1alpha1 import (
    GreenContract,
    GridAwareJobStatus,
    MigrationRecord,
    MigrationState,
    RunRecord,
    rfc3339,
)
from gridaware.core import accounting, cfe
from gridaware.services.ledger import stopped_at

H = 3600.0
DAY0 = 1_700_006_400.0  # 2023-11-15T00:00:00Z


def flat(value: float, hours: int = 48, kind: str | None = "average") -> accounting.Series:
    return accounting.Series(DAY0, np.full(hours, value), kind)


def segment(
    start: float,
    end: float,
    contracts: tuple[GreenContract, ...] = (),
    others: tuple[cfe.Run, ...] = (),
    carbon: float = 400.0,
    renewable: float | None = None,
    kind: str = "average",
) -> accounting.RunSegment:
    return accounting.RunSegment(
        "a",
        "ZA",
        start,
        end,
        1.0,
        flat(carbon, kind=kind),
        flat(100.0, kind=None),
        contracts,
        "test",
        others=others,
        renewable_percent=None if renewable is None else flat(renewable, kind=None),
    )


SOLAR = GreenContract(name="solar", power_kw=10, carbon_intensity=40, shape="solar")
BASE = GreenContract(name="base", power_kw=10, carbon_intensity=10)


# --- contract shapes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hour", "covered_kwh"),
    [
        # hour 12-13 UTC (offset 0): midpoint 12.5 -> 10 kW x sin(pi x 6.5 / 12) = 9.914 kWh,
        # more than the job's 5 kWh: all of it covered
        pytest.param(12, 5.0, id="noon-job-covered"),
        # 07-08: midpoint 7.5 -> 10 x sin(pi x 1.5 / 12) = 3.827 kWh of the job's 5
        pytest.param(7, 10 * math.sin(math.pi * 1.5 / 12), id="morning-job-partly"),
        pytest.param(0, 0.0, id="night-job-not-covered"),
        pytest.param(20, 0.0, id="evening-job-not-covered"),
    ],
)
def test_solar_contract_covers_noon_jobs_not_night_jobs(hour: int, covered_kwh: float) -> None:
    start = DAY0 + hour * H
    acct = accounting.account([segment(start, start + H, (SOLAR,))], 5.0, "a", None, "t")
    assert acct.energy_kwh == pytest.approx(5.0)
    assert acct.contract_kwh == pytest.approx(covered_kwh, abs=1e-5)
    # market: contract kWh at 40 g, the rest at the grid's 400 g
    assert acct.carbon_market_g == pytest.approx(covered_kwh * 40 + (5 - covered_kwh) * 400)
    assert acct.carbon_location_g == pytest.approx(5 * 400)


def test_solar_profile_follows_local_time() -> None:
    # a cluster at UTC-8: local noon is 20:00 UTC
    profile = cfe.solar_profile(DAY0, 24, -8.0)
    assert int(np.argmax(profile)) in (19, 20)
    assert profile[8] == 0.0  # midnight local


def test_wind_follows_the_renewable_share_with_the_same_mean() -> None:
    share = np.array([10.0, 30.0, 50.0, 30.0])
    profile = cfe.wind_profile(4, 0.4, share)
    assert profile.mean() == pytest.approx(0.4)
    assert list(profile) == pytest.approx([0.4 / 3, 0.4, 2 / 3, 0.4])
    assert list(cfe.wind_profile(4, 0.35, None)) == pytest.approx([0.35] * 4)


def test_trace_contract_delivers_its_hours_and_nothing_outside() -> None:
    trace = {"start": rfc3339(DAY0 + 2 * H), "hourlyKwh": [1.0, 2.0, 3.0]}
    c = GreenContract.model_validate({"name": "t", "powerKw": 5, "shape": "trace", "trace": trace})
    assert list(cfe.contract_kwh(c, DAY0, 6)) == [0, 0, 1, 2, 3, 0]


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param({"shape": "trace"}, id="trace-shape-without-trace"),
        pytest.param({"trace": {"file": "/x.csv"}}, id="trace-without-trace-shape"),
        pytest.param({"shape": "trace", "trace": {"hourlyKwh": [1]}}, id="inline-without-start"),
    ],
)
def test_contract_and_trace_must_agree(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="trace"):
        GreenContract.model_validate({"name": "c", "powerKw": 1, **bad})


# --- sharing one hour among concurrent jobs -----------------------------------------------


def test_two_concurrent_jobs_share_one_hours_contracted_energy() -> None:
    # 10 kWh delivered in hour 0; jobs a and b, 10 kW each, run the whole hour: 5 kWh each
    b = cfe.Run("b", DAY0, DAY0 + H, 10.0)
    acct = accounting.account([segment(DAY0, DAY0 + H, (BASE,), (b,))], 10.0, "a", None, "t")
    assert acct.contract_kwh == pytest.approx(5.0)
    assert acct.carbon_market_g == pytest.approx(5 * 10 + 5 * 400)


def test_shares_by_energy_within_the_hour() -> None:
    # a (10 kW) alone for the first half hour, then with b (10 kW); 10 kWh delivered evenly:
    # first half: 5 kWh for a's 5 kWh; second half: 5 kWh for 10 kWh, 2.5 each
    a = cfe.Run("a", DAY0, DAY0 + H, 10.0)
    b = cfe.Run("b", DAY0 + H / 2, DAY0 + H, 10.0)
    supply = np.array([10.0])
    assert cfe.shares(a, [b], supply, DAY0)[1][0] == pytest.approx(7.5)
    assert cfe.shares(b, [a], supply, DAY0)[1][0] == pytest.approx(2.5)


def test_ten_jobs_under_one_contract_never_get_it_ten_times() -> None:
    # issue 10 item 10: ten 10 kW jobs, one 10 kW contract at 10 g: 10 kWh of 100 covered
    runs = [cfe.Run(f"j{i}", DAY0, DAY0 + H, 10.0) for i in range(10)]
    accounts = [
        accounting.account(
            [segment(DAY0, DAY0 + H, (BASE,), tuple(r for r in runs if r.job != f"j{i}"))],
            10.0,
            "a",
            None,
            "t",
            f"j{i}",
        )
        for i in range(10)
    ]
    assert sum(a.contract_kwh for a in accounts) == pytest.approx(10.0)
    assert sum(a.carbon_market_g for a in accounts) == pytest.approx(10 * 10 + 90 * 400)


def test_unused_contracted_energy_is_what_the_jobs_did_not_take() -> None:
    # 10 kWh delivered, one 4 kW job for the hour: 4 kWh used, 6 kWh unused
    run = cfe.Run("a", DAY0, DAY0 + H, 4.0)
    delivered = cfe.contract_kwh(BASE, DAY0, 1)
    used = cfe.shares(run, [], delivered, DAY0)[1]
    assert float(delivered.sum() - used.sum()) == pytest.approx(6.0)


@given(
    st.lists(
        st.tuples(st.integers(0, 7200), st.integers(1, 7200), st.floats(0.1, 50)),
        min_size=1,
        max_size=6,
    ),
    st.floats(0, 100),
)
def test_shares_never_exceed_delivery_nor_load(
    jobs: list[tuple[int, int, float]], kw_supply: float
) -> None:
    runs = [cfe.Run(str(i), DAY0 + s, DAY0 + s + d, kw) for i, (s, d, kw) in enumerate(jobs)]
    supply = np.full(5, kw_supply)
    got = np.zeros(5)
    for r in runs:
        load, share = cfe.shares(r, [o for o in runs if o is not r], supply, DAY0)
        assert np.all(share <= load + 1e-9)
        assert load.sum() == pytest.approx(r.kw * (r.end - r.start) / H)
        got += share
    assert np.all(got <= supply + 1e-6)


# --- carbon-free share and the two methods -------------------------------------------------


def test_cfe_counts_the_contract_first_then_the_grid_share() -> None:
    # 10 kW job for an hour, 10 kW baseload covering half (a 10 kW neighbour shares it):
    # 5 kWh contract, the other 5 kWh at the grid's 40 % renewable share: 2 kWh -> 70 %
    b = cfe.Run("b", DAY0, DAY0 + H, 10.0)
    seg = segment(DAY0, DAY0 + H, (BASE,), (b,), renewable=40.0)
    acct = accounting.account([seg], 10.0, "a", None, "t")
    assert acct.contract_kwh == pytest.approx(5.0)
    assert acct.grid_cfe_kwh == pytest.approx(2.0)
    assert acct.cfe_percent == pytest.approx(70.0)
    assert not acct.cfe_estimated
    assert acct.segments[0].hourly_cfe_kwh == pytest.approx([7.0])


def test_cfe_is_estimated_from_the_intensity_without_a_share_feed() -> None:
    # 350 g/kWh against an all-fossil 700 g/kWh: half the mix is carbon-free (estimated)
    acct = accounting.account([segment(DAY0, DAY0 + H, carbon=350.0)], 2.0, "a", None, "t")
    assert acct.cfe_percent == pytest.approx(50.0)
    assert acct.cfe_estimated


def test_location_and_market_based_are_never_mixed() -> None:
    # a zero-carbon contract covering everything: market 0, location untouched
    big = GreenContract(name="big", power_kw=100, carbon_intensity=0)
    acct = accounting.account([segment(DAY0, DAY0 + 2 * H, (big,))], 5.0, "a", None, "t")
    assert acct.carbon_market_g == 0.0
    assert acct.carbon_location_g == pytest.approx(10 * 400)


def test_marginal_and_average_never_in_one_account() -> None:
    avg = segment(DAY0, DAY0 + H)
    marginal = segment(DAY0 + H, DAY0 + 2 * H, kind="marginal")
    with pytest.raises(accounting.MixedKindsError):
        accounting.account([avg, marginal], 1.0, "a", None, "t")


def test_counterfactual_gives_the_cost_saving() -> None:
    cf = accounting.RunSegment("h", "ZH", DAY0, DAY0 + H, 1.0, flat(500.0), flat(300.0, kind=None))
    acct = accounting.account([segment(DAY0 + 5 * H, DAY0 + 6 * H)], 2.0, "h", cf, "t")
    # 2 kWh: 0.2 USD at 100 USD/MWh against 0.6 USD at once at home
    assert acct.cost_usd == pytest.approx(0.2)
    assert acct.counterfactual_cost_usd == pytest.approx(0.6)
    assert acct.saved_location_g == pytest.approx(2 * 500 - 2 * 400)


# --- trace files ---------------------------------------------------------------------------


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=48))
def test_trace_csv_round_trip(values: list[float]) -> None:
    lines = ["time,kwh"] + [f"{rfc3339(DAY0 + i * H)},{v!r}" for i, v in enumerate(values)]
    start, parsed = cfe.parse_trace_csv("\n".join(lines))
    assert start == DAY0
    assert parsed == pytest.approx(values)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        pytest.param("", "no rows", id="empty"),
        pytest.param("2023-11-15T00:00:00Z,-1", ">= 0", id="negative"),
        pytest.param("2023-11-15T00:30:00Z,1", "start of an hour", id="not-an-hour"),
        pytest.param("2023-11-15T00:00:00Z,1\nyesterday,2", "line 2", id="bad-time"),
        pytest.param("2023-11-15T00:00:00Z;1", "time,kwh", id="wrong-separator"),
    ],
)
def test_bad_trace_files_say_which_line(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        cfe.parse_trace_csv(text)


def test_gaps_in_a_trace_file_deliver_nothing() -> None:
    text = f"{rfc3339(DAY0)},1\n{rfc3339(DAY0 + 3 * H)},4\n"
    assert cfe.parse_trace_csv(text) == (DAY0, [1.0, 0.0, 0.0, 4.0])


# --- the checkpoint grace period (issue 10 item 10) ----------------------------------------


@pytest.mark.parametrize(
    ("takeover", "grace", "extra"),
    [
        pytest.param(12.0, 30, 12.0, id="target-ran-before-the-grace-ended"),
        pytest.param(90.0, 30, 30.0, id="grace-period-bounds-it"),
    ],
)
def test_migrated_segment_runs_through_the_grace_period(
    takeover: float, grace: int, extra: float
) -> None:
    decided = rfc3339(DAY0 + H, ms=True)
    record = RunRecord(cluster="a", start=rfc3339(DAY0), end=decided)
    status = GridAwareJobStatus(
        migrations=[
            MigrationRecord(
                time=decided, source="a", target="b", reason="r", takeover_seconds=takeover
            )
        ],
        run_segments=[record],
    )
    assert stopped_at(status, record, grace, DAY0 + 2 * H) == pytest.approx(DAY0 + H + extra)


def test_segment_of_a_move_in_progress_runs_until_now_within_the_grace() -> None:
    decided = rfc3339(DAY0 + H, ms=True)
    record = RunRecord(cluster="a", start=rfc3339(DAY0), end=decided)
    status = GridAwareJobStatus(
        migration=MigrationState(
            step="WaitingForStop", source="a", target="b", reason="r", decided=decided
        ),
        run_segments=[record],
    )
    assert stopped_at(status, record, 60, DAY0 + H + 20) == pytest.approx(DAY0 + H + 20)
    paused = RunRecord(cluster="a", start=rfc3339(DAY0), end=rfc3339(DAY0 + 2 * H))
    assert stopped_at(status, paused, 60, DAY0 + 3 * H) == DAY0 + 2 * H  # pauses end right
