"""Loading a scenario: regions with hourly carbon and price traces (through the signals
layer's trace reader), a job trace, capacities, and the forecasts every policy may use.

Traces cover any range (read from the data: a year, a leap year, part of one or several);
job arrivals count hours from its first hour, and windows that run past its end wrap around to
its start, so jobs arriving at the end are scored like any other (documented in the report).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from gridaware.api.regions import REGIONS
from gridaware.api.signals import Signal
from gridaware.api.v1alpha1 import GreenContract
from gridaware.core import forecast as forecaster
from gridaware.core import money
from gridaware.signals.errors import SignalError
from gridaware.signals.providers.local import Replay, synthetic_values
from gridaware.sim import cfe as sim_cfe

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
YEAR_HOURS = 8760


@dataclass
class Regions:
    zones: list[str]
    carbon: F64  # (R, T) gCO2e/kWh, actual
    price: F64  # (R, T) USD/MWh
    price_sources: list[str]
    pue: F64  # (R,)
    capacity: F64 = field(default_factory=lambda: np.zeros(0))  # (R,) cpus
    start: int = 0  # epoch seconds of hour 0
    hours: int = YEAR_HOURS  # hours of recorded data (the rest wraps around)
    renewable: F64 | None = None  # (R, T) % of the mix, NaN where the trace has none
    contracts: list[list[GreenContract]] = field(default_factory=list)  # per region
    supply: sim_cfe.Supply | None = None  # what the contracts deliver, when there are any

    @property
    def count(self) -> int:
        return len(self.zones)


@dataclass
class Workload:
    arrival: F64  # hours from the start of the year
    length: F64  # hours
    cpus: F64
    home: I64  # region index
    deadline: F64

    @property
    def count(self) -> int:
        return int(self.arrival.size)


def _fill(values: F64) -> F64:
    """Linear interpolation over NaN gaps."""
    bad = ~np.isfinite(values)
    if bad.any():
        idx = np.arange(values.size)
        values = values.copy()
        values[bad] = np.interp(idx[bad], idx[~bad], values[~bad])
    return values


def load_regions(
    zones: list[str],
    data_dir: Path,
    pad_hours: int,
    pue: float = 1.0,
    paths: Mapping[str, Mapping[str, Sequence[Path | str]]] | None = None,
    need_hours: float = 0.0,
) -> Regions:
    """Hourly carbon (lifecycle) and price per zone over the range every zone's carbon trace
    covers (read from the data: any year, a partial year or several), extended by wrapping
    around to ``need_hours`` (the last deadline) and then ``pad_hours`` more (the forecast
    horizon). Traces come from the documented layout under ``data_dir`` or from explicit
    ``paths`` (``Replay``)."""
    replay = Replay("replay", data_dir, paths=paths)
    spans = []
    for zone in zones:
        try:
            spans.append(replay.span(zone, Signal.CARBON))
        except SignalError as exc:
            raise ValueError(f"no carbon trace for {zone} in {data_dir}: {exc}") from None
    start, end = max(s for s, _ in spans), min(e for _, e in spans)
    if end <= start:
        raise ValueError(f"the carbon traces of {', '.join(zones)} have no hour in common")
    hours = (end - start) // 3600
    carbon, price, sources, renewable = [], [], [], []
    for zone in zones:
        c = replay.history(zone, Signal.CARBON, start, end)
        carbon.append(_fill(c.hourly(start, hours)))
        p, src = _prices(replay, zone, start, hours)
        price.append(p)
        sources.append(src)
        renewable.append(_renewable(replay, zone, start, hours))
    total = max(hours, int(np.ceil(need_hours))) + pad_hours
    reps = -(-total // hours)
    c_arr = np.tile(np.array(carbon), reps)[:, :total]
    p_arr = np.tile(np.array(price), reps)[:, :total]
    r_arr = np.tile(np.array(renewable), reps)[:, :total]
    return Regions(
        zones,
        c_arr,
        p_arr,
        sources,
        np.full(len(zones), pue),
        start=start,
        hours=hours,
        renewable=r_arr,
    )


def _renewable(replay: Replay, zone: str, start: int, hours: int) -> F64:
    """The recorded renewable share (%) per hour, NaN where the trace has none (the CFE %
    then estimates the grid's carbon-free share from the intensity, and says so)."""
    try:
        return replay.history(zone, Signal.RENEWABLE_SHARE, start, start + hours * 3600).hourly(
            start, hours
        )
    except SignalError:
        return np.full(hours, np.nan)


def add_contracts(regions: Regions, specs: Sequence[str]) -> None:
    """Green contracts (``sim.cfe.parse_contract`` specs) for the scenario's regions, and what
    they deliver over its hours (solar on the zone's local time, wind shaped by its recorded
    renewable share). ValueError names a zone the scenario does not have."""
    contracts: list[list[GreenContract]] = [[] for _ in regions.zones]
    for i, spec in enumerate(specs):
        zone, contract = sim_cfe.parse_contract(spec, i)
        if zone not in regions.zones:
            raise ValueError(f"contract {spec!r}: zone {zone} is not one of {regions.zones}")
        contracts[regions.zones.index(zone)].append(contract)
    offsets = {r.grid_zone: r.timezone_offset_hours for r in REGIONS.values()}
    regions.contracts = contracts
    regions.supply = sim_cfe.supply(
        contracts,
        float(regions.start),
        regions.carbon.shape[1],
        [offsets.get(z, 0.0) for z in regions.zones],
        regions.renewable,
    )


def _prices(replay: Replay, zone: str, start: int, hours: int) -> tuple[F64, str]:
    """USD/MWh per hour: recorded day-ahead prices when they cover at least 90 % of the
    range (short gaps interpolated), else the synthetic model (said so in the report)."""
    try:
        p = replay.history(zone, Signal.PRICE, start, start + hours * 3600)
        values = p.hourly(start, hours)
        if np.isfinite(values).mean() >= 0.9:
            usd = _fill(values) * money.USD_PER[money.currency_of(p.unit)]
            return usd, "recorded day-ahead prices"
        note = "synthetic (recorded prices cover too little of the range)"
    except SignalError:
        note = "synthetic (no recorded prices)"
    _, synth, currency = synthetic_values(zone, start, hours)
    return synth * money.USD_PER[currency], note


def load_workload(
    path: Path,
    regions: int,
    slack: float,
    seconds: bool | None = None,
    limit: int | None = None,
    every: int = 1,
) -> Workload:
    """A GAIA-format job trace (arrival_time, length, cpus). Homes are assigned round-robin.
    ``every``: keep every Nth job (a sample spread over the whole trace); ``limit``: then
    keep only the first N.

    Some published traces are in seconds, others in hours; with ``seconds=None`` a trace whose
    longest job exceeds a year of hours is taken to be in seconds.
    """
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:: max(1, every)]
    if limit:
        rows = rows[:limit]
    arrival = np.array([float(r["arrival_time"]) for r in rows])
    length = np.array([float(r["length"]) for r in rows])
    cpus = np.array([max(1.0, float(r["cpus"])) for r in rows])
    if seconds is None:
        seconds = bool(length.max() > YEAR_HOURS or arrival.max() > YEAR_HOURS * 1.01)
    if seconds:
        arrival, length = arrival / 3600, length / 3600
    order = np.argsort(arrival, kind="stable")
    arrival, length, cpus = arrival[order], np.maximum(length[order], 1 / 60), cpus[order]
    home = np.arange(arrival.size, dtype=np.int64) % regions
    return Workload(arrival, length, cpus, home, arrival + length + slack)


@dataclass
class Forecasts:
    """What policies may know at hour t: ``carbon[r, t, h]`` forecast for hour t + h."""

    carbon: F64  # (R, T, H)
    source: str


def build_forecasts(regions: Regions, horizon: int, model: str, seed: int = 0) -> Forecasts:
    """``builtin``: the operator's forecaster from past data; ``noisy:S``: the actual future
    with multiplicative Gaussian error of relative std S; ``perfect``: the actual future."""
    r_count, t_count = regions.carbon.shape
    out = np.empty((r_count, t_count, horizon))
    ext = np.concatenate([regions.carbon, regions.carbon[:, :horizon]], axis=1)
    future = np.lib.stride_tricks.sliding_window_view(ext, horizon, axis=1)[:, :t_count]
    if model == "builtin":
        for r in range(r_count):
            out[r] = forecaster.regression_all(regions.carbon[r], horizon)
        return Forecasts(out, "built-in forecaster (regression fitted on the past 28 days)")
    if model == "blend":
        for r in range(r_count):
            out[r] = forecaster.seasonal_blend_all(regions.carbon[r], horizon)
        return Forecasts(out, "seasonal blend of the past 7 days (the former built-in)")
    if model == "perfect":
        return Forecasts(np.array(future), "perfect (actual future)")
    if model.startswith("noisy:"):
        std = float(model.split(":", 1)[1])
        rng = np.random.default_rng(seed)
        noise = 1 + std * rng.standard_normal(future.shape)
        return Forecasts(np.clip(future * noise, 1.0, None), f"actual x (1 + N(0, {std:g}))")
    raise ValueError(f"unknown forecast model {model!r} (builtin, blend, perfect or noisy:STD)")
