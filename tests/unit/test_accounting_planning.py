"""Valuing contracted supply in placement and planning (objective ``valueContracts``) and the
simulator's hourly-matched CFE %, by hand (issue 13 item 3)."""

from __future__ import annotations

import numpy as np
import pytest

from gridaware.api.v1alpha1 import GreenContract, Objective
from gridaware.core import cfe
from gridaware.sim import cfe as sim_cfe

DAY0 = 1_700_006_400.0  # 2023-11-15T00:00:00Z
SOLAR = GreenContract(
    name="solar", power_kw=10, carbon_intensity=40, shape="solar", price_usd_per_mwh=30
)


def test_valuing_contracts_is_off_by_default() -> None:
    assert Objective().value_contracts is False


@pytest.mark.parametrize(
    ("other_kwh", "job_kwh", "covered"),
    [
        pytest.param(0.0, 5.0, 1.0, id="room-for-the-job"),
        pytest.param(5.0, 5.0, 1.0, id="exactly-enough"),
        pytest.param(10.0, 10.0, 0.5, id="shared-by-energy"),
        pytest.param(0.0, 0.0, 0.0, id="no-load"),
    ],
)
def test_cover_shares_the_hour_with_the_load_already_there(
    other_kwh: float, job_kwh: float, covered: float
) -> None:
    got = cfe.cover(np.array([10.0]), np.array([other_kwh]), np.array([job_kwh]))
    assert got[0] == pytest.approx(covered)


def test_covered_hours_score_at_the_contracts_intensity_and_price() -> None:
    # hours 0 and 12 UTC: the solar contract delivers at noon only
    hours = np.array([0, 12])
    supply = cfe.contract_kwh(SOLAR, DAY0, 24)[hours]
    d = cfe.delivery([SOLAR], [cfe.contract_kwh(SOLAR, DAY0, 24)], DAY0)
    d = cfe.Delivery(DAY0, supply, d.carbon[hours], d.price_usd[hours])
    covered = cfe.cover(supply, np.zeros(2), np.full(2, 5.0))
    carbon, price = cfe.valued(np.full(2, 400.0), np.full(2, 100.0), covered, d)
    # night: the grid's 400 g and 100 USD/MWh; noon: fully covered at 40 g and 30 USD/MWh
    assert list(carbon) == pytest.approx([400.0, 40.0])
    assert price is not None and list(price) == pytest.approx([100.0, 30.0])


def test_half_covered_hour_blends_contract_and_grid() -> None:
    d = cfe.Delivery(DAY0, np.array([5.0]), np.array([0.0]), np.array([np.nan]))
    covered = cfe.cover(d.kwh, np.zeros(1), np.array([10.0]))
    carbon, price = cfe.valued(np.array([300.0]), np.array([80.0]), covered, d)
    assert carbon[0] == pytest.approx(150.0)
    assert price is not None and price[0] == pytest.approx(80.0)  # no contract price: grid's


def test_simulated_schedule_cfe_by_hand() -> None:
    # one region, 2 kW from 11:00 to 13:00 and 2 kW from 00:00 to 01:00 UTC; a 1 kW baseload
    # contract; grid at 350 g/kWh -> an estimated 50 % carbon-free mix
    load = sim_cfe.hourly_load(
        1, 24, [0, 0], np.array([11.0, 0.0]), np.array([13.0, 1.0]), np.array([2.0, 2.0])
    )
    supply = sim_cfe.delivered([[GreenContract(name="b", power_kw=1)]], DAY0, 24, [0.0])
    m = sim_cfe.matched(load, supply, np.full((1, 24), 350.0))
    assert m.energy_kwh == pytest.approx(6.0)
    assert m.contract_kwh == pytest.approx(3.0)  # 1 kWh in each of the 3 busy hours
    assert m.grid_cfe_kwh == pytest.approx(1.5)  # half of the other 3 kWh
    assert m.cfe_percent == pytest.approx(75.0)
    assert m.contract_unused_kwh == pytest.approx(21.0)
    assert m.estimated
