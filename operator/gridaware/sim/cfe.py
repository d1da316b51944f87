"""The hourly-matched carbon-free share (CFE %) a simulated schedule reaches, with green
contracts per region (issue 13 item 3: the simulator reports the CFE % each policy reaches).

Per region and hour the fleet's load is met first by what the region's contracts deliver that
hour, then by the grid mix's carbon-free share of the rest (``core.cfe``: the feed's renewable
share where the trace has one, else estimated from the intensity). Summed over the jobs of an
hour this is the operator's per-job sharing rule; the simulator only needs the totals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from gridaware.api.v1alpha1 import GreenContract
from gridaware.core import cfe

F64 = npt.NDArray[np.float64]
HOUR = 3600.0


_CONTRACT = re.compile(
    r"^(?P<shape>baseload|solar|wind):(?P<power>[0-9]+(?:\.[0-9]+)?)(?P<unit>kW|MW)?"
    r"@(?P<zone>[A-Za-z0-9_-]+)(?P<opts>(?:,[a-z]+=[^,]+)*)$"
)
_OPTIONS = {"g": "carbon_intensity", "price": "price_usd_per_mwh", "cf": "capacity_factor"}


def parse_contract(text: str, index: int = 0) -> tuple[str, GreenContract]:
    """``SHAPE:POWER[kW|MW]@ZONE[,g=GCO2][,price=USD_PER_MWH][,cf=FACTOR]`` (e.g.
    ``solar:500kW@US-CAL-CISO,g=40,price=35``) as the zone and its contract; ValueError says
    what is wrong."""
    m = _CONTRACT.match(text.strip())
    if m is None:
        raise ValueError(
            f"contract {text!r}: expected SHAPE:POWER@ZONE with SHAPE baseload, solar or wind, "
            "POWER in kW (or with kW/MW), optionally ,g=gCO2e/kWh ,price=USD/MWh ,cf=capacity "
            "factor; e.g. solar:500kW@US-CAL-CISO,price=35"
        )
    kw = float(m["power"]) * (1000.0 if m["unit"] == "MW" else 1.0)
    fields: dict[str, object] = {"name": f"{m['shape']}-{index}", "power_kw": kw}
    fields["shape"] = m["shape"]
    for opt in filter(None, m["opts"].split(",")):
        key, value = opt.split("=", 1)
        if key not in _OPTIONS:
            raise ValueError(f"contract {text!r}: unknown option {key!r} (g, price or cf)")
        try:
            fields[_OPTIONS[key]] = float(value)
        except ValueError:
            raise ValueError(f"contract {text!r}: {key}={value!r} is not a number") from None
    try:
        return m["zone"], GreenContract.model_validate(fields)
    except ValidationError as exc:
        problems = "; ".join(str(e["msg"]) for e in exc.errors())
        raise ValueError(f"contract {text!r}: {problems}") from None


@dataclass(frozen=True)
class Supply:
    """What each region's contracts deliver per hour: (R, T) kWh, and the delivery-weighted
    intensity and price (NaN where no contract gives a price), as ``core.cfe.Delivery``."""

    kwh: F64
    carbon: F64
    price_usd: F64

    def delivery(self, r: int, t0: int, hours: int) -> cfe.Delivery:
        """Region r's delivery over ``hours`` from hour t0 (zero past the end)."""
        n = max(0, min(hours, self.kwh.shape[1] - t0))
        kwh, carbon, price = np.zeros(hours), np.zeros(hours), np.full(hours, np.nan)
        kwh[:n], carbon[:n] = self.kwh[r, t0 : t0 + n], self.carbon[r, t0 : t0 + n]
        price[:n] = self.price_usd[r, t0 : t0 + n]
        return cfe.Delivery(float(t0) * HOUR, kwh, carbon, price)


def supply(
    contracts: Sequence[Sequence[GreenContract]],
    hour0: float,
    hours: int,
    utc_offsets: Sequence[float],
    renewable_percent: F64 | None = None,
) -> Supply:
    """Each region's contracted supply from ``hour0`` (epoch s) for ``hours``."""
    r_count = len(contracts)
    kwh, carbon = np.zeros((r_count, hours)), np.zeros((r_count, hours))
    price = np.full((r_count, hours), np.nan)
    for r, region_contracts in enumerate(contracts):
        if not region_contracts:
            continue
        share = None if renewable_percent is None else renewable_percent[r]
        hourly = [
            cfe.contract_kwh(c, hour0, hours, utc_offsets[r], share) for c in region_contracts
        ]
        d = cfe.delivery(region_contracts, hourly, hour0)
        kwh[r], carbon[r], price[r] = d.kwh, d.carbon, d.price_usd
    return Supply(kwh, carbon, price)


@dataclass(frozen=True)
class Matched:
    energy_kwh: float
    contract_kwh: float
    grid_cfe_kwh: float
    contract_delivered_kwh: float
    estimated: bool
    location_g: float = 0.0  # the load at the grid's intensity
    market_g: float | None = None  # the contract share at the contracts' intensity, the rest
    # at the grid's (None without the contracts' intensity); never added to location_g

    @property
    def cfe_percent(self) -> float:
        if self.energy_kwh <= 0:
            return 0.0
        return 100 * (self.contract_kwh + self.grid_cfe_kwh) / self.energy_kwh

    @property
    def contract_unused_kwh(self) -> float:
        return max(0.0, self.contract_delivered_kwh - self.contract_kwh)


def hourly_load(
    regions: int, hours: int, region: Sequence[int], start: F64, end: F64, kw: F64
) -> F64:
    """(R, T) kWh drawn per region and hour by runs [start, end) in hours at ``kw``."""
    load = np.zeros((regions, hours))
    for r, s, e, p in zip(region, start, end, kw, strict=True):
        h = int(np.floor(s))
        while h < e and h < hours:
            overlap = min(e, h + 1) - max(s, h)
            if overlap > 0 and h >= 0:
                load[r, h] += p * overlap
            h += 1
    return load


def delivered(
    contracts: Sequence[Sequence[GreenContract]],
    hour0: float,
    hours: int,
    utc_offsets: Sequence[float],
    renewable_percent: F64 | None = None,
) -> F64:
    """(R, T) kWh the contracts of each region deliver per hour from ``hour0`` (epoch s)."""
    out = np.zeros((len(contracts), hours))
    for r, region_contracts in enumerate(contracts):
        share = None if renewable_percent is None else renewable_percent[r]
        for c in region_contracts:
            out[r] += cfe.contract_kwh(c, hour0, hours, utc_offsets[r], share)
    return out


def matched(
    load: F64,
    supply: F64,
    carbon: F64,
    renewable_percent: F64 | None = None,
    supply_carbon: F64 | None = None,
) -> Matched:
    """The fleet's hourly-matched figures from (R, T) load, contract supply and intensity,
    with location- and market-based emissions (the latter when ``supply_carbon``, the
    contracts' intensity per region and hour, is given)."""
    used = np.minimum(load, supply)
    estimated = False
    grid = np.zeros_like(load)
    for r in range(load.shape[0]):
        share, est = cfe.grid_cfe_share(
            carbon[r], None if renewable_percent is None else renewable_percent[r], "average"
        )
        estimated = estimated or est
        grid[r] = (load[r] - used[r]) * share
    location = float((load * carbon).sum())
    market = None
    if supply_carbon is not None:
        market = float(((load - used) * carbon + used * supply_carbon).sum())
    return Matched(
        float(load.sum()),
        float(used.sum()),
        float(grid.sum()),
        float(supply.sum()),
        estimated,
        location,
        market,
    )


def schedule_cfe(
    schedule_region: Sequence[int],
    schedule_job: Sequence[int],
    start: Sequence[float],
    end: Sequence[float],
    job_kw: F64,
    pue: F64,
    carbon: F64,
    supply: F64,
    renewable_percent: F64 | None = None,
    supply_carbon: F64 | None = None,
) -> Matched:
    """The hourly-matched figures of a simulated schedule (hours from the trace's start):
    each run draws its job's kW times its region's PUE."""
    region = np.asarray(schedule_region, dtype=np.int64)
    kw = job_kw[np.asarray(schedule_job, dtype=np.int64)] * pue[region]
    load = hourly_load(
        carbon.shape[0], carbon.shape[1], list(region), np.asarray(start), np.asarray(end), kw
    )
    return matched(load, supply, carbon, renewable_percent, supply_carbon)
