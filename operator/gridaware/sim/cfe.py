"""The hourly-matched carbon-free share (CFE %) a simulated schedule reaches, with green
contracts per region (issue 13 item 3: the simulator reports the CFE % each policy reaches).

Per region and hour the fleet's load is met first by what the region's contracts deliver that
hour, then by the grid mix's carbon-free share of the rest (``core.cfe``: the feed's renewable
share where the trace has one, else estimated from the intensity). Summed over the jobs of an
hour this is the operator's per-job sharing rule; the simulator only needs the totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import GreenContract
from gridaware.core import cfe

F64 = npt.NDArray[np.float64]
HOUR = 3600.0


@dataclass(frozen=True)
class Matched:
    energy_kwh: float
    contract_kwh: float
    grid_cfe_kwh: float
    contract_delivered_kwh: float
    estimated: bool

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


def matched(load: F64, supply: F64, carbon: F64, renewable_percent: F64 | None = None) -> Matched:
    """The fleet's hourly-matched figures from (R, T) load, contract supply and intensity."""
    used = np.minimum(load, supply)
    estimated = False
    grid = np.zeros_like(load)
    for r in range(load.shape[0]):
        share, est = cfe.grid_cfe_share(
            carbon[r], None if renewable_percent is None else renewable_percent[r], "average"
        )
        estimated = estimated or est
        grid[r] = (load[r] - used[r]) * share
    return Matched(
        float(load.sum()), float(used.sum()), float(grid.sum()), float(supply.sum()), estimated
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
) -> Matched:
    """The hourly-matched figures of a simulated schedule (hours from the trace's start):
    each run draws its job's kW times its region's PUE."""
    region = np.asarray(schedule_region, dtype=np.int64)
    kw = job_kw[np.asarray(schedule_job, dtype=np.int64)] * pue[region]
    load = hourly_load(
        carbon.shape[0], carbon.shape[1], list(region), np.asarray(start), np.asarray(end), kw
    )
    return matched(load, supply, carbon)
