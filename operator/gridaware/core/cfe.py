"""Hourly matching of contracted carbon-free supply (24/7 CFE): what a contract delivers each
hour, how one hour's delivery is shared among the jobs running then, and how much of a load
the grid's carbon-free share covers.

Pay-as-produced contracts deliver by their shape (a solar PPA at noon and nothing at night),
so a flat kW overstates what they cover. The accounting standards and the leading buyers match
supply and load hour by hour: within a cluster, an hour's delivered kWh is shared among the
gridaware jobs running in it by their energy, never the whole contract to each.

Sharing rule. With hourly data the delivery is taken as even within its hour; inside an hour
the time is cut where a job starts or ends, and in each piece every running job gets
``its kWh x min(1, delivered kWh / all jobs' kWh)``. While the same jobs run through the hour
this is exactly "by their energy"; it also depends only on the past, so a job's share is final
when the job ends, whatever starts later in that hour, and recomputing it after a restart from
the recorded run segments gives the same figure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import GreenContract, parse_time

HOUR = 3600.0
DEFAULT_WIND_CAPACITY_FACTOR = 0.35
# Intensity of an all-fossil mix, used to estimate a grid's carbon-free share from its average
# intensity where no feed gives the share: between gas (~490) and coal (~1000) generation.
FOSSIL_INTENSITY = 700.0
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Run:
    """One job running in one cluster over [start, end) (grid epoch seconds) at ``kw``
    facility power (PUE included)."""

    job: str
    start: float
    end: float
    kw: float


@dataclass(frozen=True)
class Delivery:
    """What a cluster's contracts deliver per hour from ``hour0``: kWh, and the kWh-weighted
    intensity (gCO2e/kWh) and price (USD/MWh, NaN where no contract gives one)."""

    hour0: float
    kwh: F64
    carbon: F64
    price_usd: F64


def solar_profile(hour0: float, hours: int, utc_offset_hours: float) -> F64:
    """Output per kW of capacity for each hour: a daylight half-sine from 06:00 to 18:00
    local time, peaking at 1 at local noon (taken at each hour's midpoint)."""
    mid = (hour0 / HOUR + np.arange(hours) + 0.5 + utc_offset_hours) % 24.0
    return np.where((mid > 6) & (mid < 18), np.sin(np.pi * (mid - 6) / 12), 0.0)


def wind_profile(hours: int, capacity_factor: float, renewable_share: F64 | None) -> F64:
    """Output per kW of capacity: the capacity factor every hour, or, where a feed gives the
    zone's renewable share, shaped like it (same mean, never above the capacity)."""
    flat = np.full(hours, capacity_factor)
    if renewable_share is None or renewable_share.size != hours:
        return flat
    ok = np.isfinite(renewable_share)
    mean = float(renewable_share[ok].mean()) if ok.any() else 0.0
    if mean <= 0:
        return flat
    shaped = np.where(ok, renewable_share / mean * capacity_factor, capacity_factor)
    return np.asarray(np.clip(shaped, 0.0, 1.0), dtype=np.float64)


def trace_hours(start: float, hourly_kwh: Sequence[float], hour0: float, hours: int) -> F64:
    """A delivery trace (kWh per hour from ``start``) on the hours from ``hour0``; zero outside
    the trace."""
    out = np.zeros(hours)
    offset = round((start - hour0) / HOUR)
    for i, kwh in enumerate(hourly_kwh):
        h = offset + i
        if 0 <= h < hours:
            out[h] = kwh
    return out


def parse_trace_csv(text: str) -> tuple[float, list[float]]:
    """``time,kwh`` rows (RFC 3339 hour starts, a header row allowed, ``#`` comments) as the
    first hour and kWh per hour; hours missing between rows deliver 0. ValueError says which
    line is wrong."""
    rows: dict[float, float] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            raise ValueError(f"line {n}: expected time,kwh")
        try:
            t = parse_time(parts[0])
        except ValueError:
            if not rows and n == 1:  # a header
                continue
            raise ValueError(f"line {n}: {parts[0]!r} is not an RFC 3339 time") from None
        try:
            kwh = float(parts[1])
        except ValueError:
            raise ValueError(f"line {n}: {parts[1]!r} is not a number") from None
        if not math.isfinite(kwh) or kwh < 0:
            raise ValueError(f"line {n}: kWh must be a finite number >= 0")
        if t % HOUR:
            raise ValueError(f"line {n}: {parts[0]} is not the start of an hour")
        rows[t] = kwh
    if not rows:
        raise ValueError("the trace has no rows")
    first, last = min(rows), max(rows)
    return first, [rows.get(first + i * HOUR, 0.0) for i in range(int((last - first) // HOUR) + 1)]


def contract_kwh(
    contract: GreenContract,
    hour0: float,
    hours: int,
    utc_offset_hours: float = 0.0,
    renewable_share: F64 | None = None,
    trace: tuple[float, Sequence[float]] | None = None,
) -> F64:
    """kWh the contract delivers in each hour from ``hour0``. ``trace`` is the (start, kWh)
    of a trace file already read; an inline trace is used otherwise."""
    cap = contract.power_kw
    if contract.shape == "baseload":
        return np.full(hours, cap)
    if contract.shape == "solar":
        offset = (
            utc_offset_hours if contract.utc_offset_hours is None else contract.utc_offset_hours
        )
        return cap * solar_profile(hour0, hours, offset)
    if contract.shape == "wind":
        cf = contract.capacity_factor or DEFAULT_WIND_CAPACITY_FACTOR
        return cap * wind_profile(hours, cf, renewable_share)
    if trace is None:
        t = contract.trace
        if t is None or t.start is None:
            return np.zeros(hours)
        trace = (parse_time(t.start), t.hourly_kwh)
    return trace_hours(trace[0], trace[1], hour0, hours)


def delivery(
    contracts: Sequence[GreenContract],
    hourly: Sequence[F64],
    hour0: float,
) -> Delivery:
    """The contracts' combined delivery from their hourly kWh (``hourly[i]`` for
    ``contracts[i]``), with the delivery-weighted intensity and price per hour."""
    n = hourly[0].size if hourly else 0
    total, grams = np.zeros(n), np.zeros(n)
    cost, priced = np.zeros(n), np.zeros(n)
    for c, kwh in zip(contracts, hourly, strict=True):
        total += kwh
        grams += kwh * c.carbon_intensity
        if c.price_usd_per_mwh is not None:
            cost += kwh * c.price_usd_per_mwh
            priced += kwh
    with np.errstate(invalid="ignore", divide="ignore"):
        carbon = np.where(total > 0, grams / np.where(total > 0, total, 1), 0.0)
        price = np.where(priced > 0, cost / np.where(priced > 0, priced, 1), np.nan)
    return Delivery(hour0, total, carbon, price)


def shares(target: Run, others: Sequence[Run], kwh_per_hour: F64, hour0: float) -> tuple[F64, F64]:
    """(load kWh, contracted kWh) of ``target`` in each hour from ``hour0`` (see the module's
    sharing rule); ``others`` are the other jobs' runs in the same cluster."""
    hours = kwh_per_hour.size
    load, got = np.zeros(hours), np.zeros(hours)
    if target.end <= target.start or target.kw <= 0:
        return load, got
    cuts = {target.start, target.end}
    overlapping = [r for r in others if r.start < target.end and r.end > target.start]
    for r in overlapping:
        cuts.update(t for t in (r.start, r.end) if target.start < t < target.end)
    h_first = int((target.start - hour0) // HOUR)
    h_last = math.ceil((target.end - hour0) / HOUR)
    cuts.update(hour0 + h * HOUR for h in range(h_first + 1, h_last))
    points = sorted(cuts)
    for a, b in itertools.pairwise(points):
        h = int((a - hour0) // HOUR)
        if not 0 <= h < hours:
            continue
        dt_h = (b - a) / HOUR
        total_kw = target.kw + sum(r.kw for r in overlapping if r.start <= a and r.end >= b)
        supply_kw = float(kwh_per_hour[h])
        mine = target.kw * dt_h
        load[h] += mine
        got[h] += mine * min(1.0, max(0.0, supply_kw) / total_kw)
    return load, got


def grid_cfe_share(
    carbon: F64, renewable_percent: F64 | None, kind: str | None
) -> tuple[F64, bool]:
    """The grid mix's carbon-free share (0..1) per hour, and whether any hour was estimated:
    the feed's renewable share where it gives one (a lower bound: nuclear is carbon-free but
    not renewable), else ``1 - intensity / FOSSIL_INTENSITY`` from the average intensity.
    A marginal intensity says nothing about the mix: then the share is 0 and estimated."""
    if kind == "marginal":
        known = np.zeros(carbon.size)
        estimate = known
    else:
        estimate = np.clip(1.0 - carbon / FOSSIL_INTENSITY, 0.0, 1.0)
    if renewable_percent is None or renewable_percent.size != carbon.size:
        return estimate, True
    ok = np.isfinite(renewable_percent)
    share = np.where(ok, np.clip(renewable_percent / 100.0, 0.0, 1.0), estimate)
    return share, bool((~ok).any())


def cover(supply_kwh: F64, other_load_kwh: F64, job_kwh: F64) -> F64:
    """Share (0..1) of a planned job's energy that contracts would cover each hour, given the
    load already there (the same rule as the accounts: by energy)."""
    total = other_load_kwh + job_kwh
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(total > 0, np.clip(supply_kwh / np.where(total > 0, total, 1), 0, 1), 0.0)
    return np.asarray(out, dtype=np.float64)


def valued(carbon: F64, price_usd: F64 | None, covered: F64, d: Delivery) -> tuple[F64, F64 | None]:
    """Hourly intensity and price as the objective ``valueContracts`` sees them: the covered
    share at the contracts' intensity and price (market-based), the rest at the grid's. Hours
    without a contract price keep the grid price."""
    c = covered * d.carbon + (1 - covered) * carbon
    if price_usd is None:
        return c, None
    contract_price = np.where(np.isfinite(d.price_usd), d.price_usd, price_usd)
    return c, covered * contract_price + (1 - covered) * price_usd
