"""Per-job carbon and cost accounts, hourly matched.

energy = power x time x PUE, hour by hour. The power of a run segment is the spec's energy
model, or, where energy counters measured the segment's pods (``MeasuredEnergy``), the
measured kWh spread evenly over the segment plus the model's share for the pods that had no
counters; that one figure is what carbon (both methods), cost and the contract sharing use,
so measured and modelled kWh are never mixed for one stretch of time. Location-based carbon
uses the grid's average intensity in each hour the job ran; market-based carbon first assigns
the job's share of the cluster's contracted green supply in that hour (``core.cfe``: an
hour's delivery is shared among the jobs running then by their energy) at the contracts'
intensity, and the rest at the grid intensity (no residual mix is published for most zones).
The carbon-free share (CFE %) counts the contract share first, then the grid mix's
carbon-free share of the rest. The location- and market-based figures are reported side by
side and never added; marginal and average intensities are never booked in one account.
Savings compare the location-based figure and the cost with the counterfactual "run at once
in the home cluster" computed from the same signal history, at the job's actual average
power (measured where it was measured).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import Account, EnergySource, GreenContract, Segment, rfc3339
from gridaware.core import cfe, planning

HOUR = 3600.0
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Series:
    """Hourly values from ``hour0`` (epoch seconds)."""

    hour0: float
    values: npt.NDArray[np.float64]
    kind: str | None = None  # "average" or "marginal" (carbon only)

    def mean_over(self, start: float, end: float) -> float:
        """Time-weighted mean over [start, end); edges clipped to the covered hours."""
        if end <= start:
            return float(self.values[0]) if self.values.size else 0.0
        x0 = np.clip((start - self.hour0) / HOUR, 0, self.values.size)
        x1 = np.clip((end - self.hour0) / HOUR, 0, self.values.size)
        if x1 <= x0:
            idx = int(min(max(x0, 0), self.values.size - 1))
            return float(self.values[idx])
        p = planning.prefix(self.values)
        return float(planning.integrate(p, self.values, x0, x1) / (x1 - x0))

    def at_hours(self, hour0: float, hours: int) -> F64:
        """The values of the hours from ``hour0``; hours outside the series take the nearest
        covered hour's value."""
        idx = np.arange(hours) + round((hour0 - self.hour0) / HOUR)
        return np.asarray(self.values[np.clip(idx, 0, self.values.size - 1)], dtype=np.float64)


@dataclass(frozen=True)
class MeasuredEnergy:
    """IT energy (PUE not included) of one run segment from energy counters: ``kwh`` for the
    pods that had counters, and ``modelled_share`` of the job's modelled power still counted
    for the pods that had none (0 when every pod was measured)."""

    kwh: float
    modelled_share: float = 0.0


@dataclass(frozen=True)
class RunSegment:
    """One run of the job in one cluster, with that cluster's signals and contracts.

    ``delivery`` is what the cluster's contracts deliver per hour (``core.cfe``); without it a
    baseload reading of ``contracts`` is used. ``others`` are the other jobs' runs in the
    cluster, which share each hour's delivery. ``renewable_percent`` is the zone's renewable
    share per hour from ``carbon.hour0`` where a feed gives it."""

    cluster: str
    zone: str
    start: float
    end: float
    pue: float
    carbon: Series
    price_usd: Series | None
    contracts: tuple[GreenContract, ...] = ()
    carbon_source: str = ""
    delivery: cfe.Delivery | None = None
    others: tuple[cfe.Run, ...] = field(default=())
    renewable_percent: Series | None = None
    measured: MeasuredEnergy | None = None


def it_power_kw(seg: RunSegment, model_kw: float) -> float:
    """Average IT power of a segment: measured kWh over its duration plus the modelled share
    (the model alone when nothing was measured or the segment has no duration)."""
    hours = (seg.end - seg.start) / HOUR
    if seg.measured is None or hours <= 0:
        return model_kw
    return seg.measured.kwh / hours + model_kw * seg.measured.modelled_share


def energy_source(seg: RunSegment) -> EnergySource:
    """Measured, Mixed (measured pods plus the model for the rest) or Modelled."""
    if seg.measured is None or seg.end <= seg.start:
        return "Modelled"
    return "Measured" if seg.measured.modelled_share <= 0 else "Mixed"


def _overall_source(sources: list[EnergySource]) -> EnergySource:
    if sources and all(s == "Measured" for s in sources):
        return "Measured"
    if all(s == "Modelled" for s in sources):
        return "Modelled"
    return "Mixed"


class MixedKindsError(ValueError):
    """Marginal and average intensities cannot be booked in one account."""


@dataclass(frozen=True)
class _Booked:
    segment: Segment
    cost: float | None
    cfe_estimated: bool


def _delivery(seg: RunSegment, hour0: float, hours: int) -> cfe.Delivery:
    if seg.delivery is not None:
        d = seg.delivery
        idx = np.arange(hours) + round((hour0 - d.hour0) / HOUR)
        inside = (idx >= 0) & (idx < d.kwh.size)
        safe = np.clip(idx, 0, max(0, d.kwh.size - 1))
        if d.kwh.size == 0:
            return cfe.Delivery(hour0, np.zeros(hours), np.zeros(hours), np.full(hours, np.nan))
        return cfe.Delivery(
            hour0,
            np.where(inside, d.kwh[safe], 0.0),
            np.where(inside, d.carbon[safe], 0.0),
            np.where(inside, d.price_usd[safe], np.nan),
        )
    hourly = [cfe.contract_kwh(c, hour0, hours) for c in seg.contracts]
    if not hourly:
        return cfe.Delivery(hour0, np.zeros(hours), np.zeros(hours), np.full(hours, np.nan))
    return cfe.delivery(seg.contracts, hourly, hour0)


def book(seg: RunSegment, power_kw: float, job: str = "") -> _Booked:
    """The hourly-matched figures of one run segment."""
    hour0 = math.floor(seg.start / HOUR) * HOUR
    hours = max(1, math.ceil((seg.end - hour0) / HOUR))
    facility_kw = it_power_kw(seg, power_kw) * seg.pue
    d = _delivery(seg, hour0, hours)
    me = cfe.Run(job, seg.start, seg.end, facility_kw)
    load, contract = cfe.shares(me, seg.others, d.kwh, hour0)
    ci = seg.carbon.at_hours(hour0, hours)
    renewable = (
        None if seg.renewable_percent is None else seg.renewable_percent.at_hours(hour0, hours)
    )
    share, estimated = cfe.grid_cfe_share(ci, renewable, seg.carbon.kind)
    residual = load - contract
    grid_cfe = residual * share
    cost: float | None = None
    if seg.price_usd is not None:
        cost = float((load * seg.price_usd.at_hours(hour0, hours)).sum() / 1000)
    out = Segment(
        cluster=seg.cluster,
        zone=seg.zone,
        start=rfc3339(seg.start),
        end=rfc3339(seg.end),
        energy_kwh=round(float(load.sum()), 6),
        carbon_location_g=round(float((load * ci).sum()), 3),
        carbon_market_g=round(float((contract * d.carbon + residual * ci).sum()), 3),
        contract_kwh=round(float(contract.sum()), 6),
        grid_cfe_kwh=round(float(grid_cfe.sum()), 6),
        cost_usd=None if cost is None else round(cost, 6),
        hourly_load_kwh=[round(float(v), 6) for v in load],
        hourly_cfe_kwh=[round(float(v), 6) for v in contract + grid_cfe],
        energy_source=energy_source(seg),
    )
    return _Booked(out, cost, estimated)


def _kinds(segments: list[RunSegment], counterfactual: RunSegment | None) -> None:
    kinds = {s.carbon.kind for s in segments if s.carbon.kind}
    if counterfactual is not None and counterfactual.carbon.kind:
        kinds.add(counterfactual.carbon.kind)
    if len(kinds) > 1:
        raise MixedKindsError(
            "the run's carbon intensities are of different kinds (average and marginal); "
            "configure one kind per fleet to book an account"
        )


def account(
    segments: list[RunSegment],
    power_kw: float,
    home: str,
    counterfactual: RunSegment | None,
    source: str,
    job: str = "",
    energy_note: str | None = None,
) -> Account:
    """The account of a finished job (``counterfactual`` spans the same duration; None when
    the home zone's history is missing: then no saving is claimed). The counterfactual runs at
    the job's actual average IT power, so a measured account compares measured with measured."""
    _kinds(segments, counterfactual)
    booked = [book(s, power_kw, job) for s in segments]
    segs = [b.segment for b in booked]
    costs = [b.cost for b in booked]
    cost = None if any(c is None for c in costs) else sum(c for c in costs if c is not None)
    energy = sum(s.energy_kwh for s in segs)
    contract = sum(s.contract_kwh for s in segs)
    grid_cfe = sum(s.grid_cfe_kwh for s in segs)
    loc = sum(s.carbon_location_g for s in segs)
    cf = counterfactual
    cf_g = cf_cost = None
    if cf is not None:
        cf_kwh = _it_kw(segments, power_kw) * cf.pue * max(0.0, cf.end - cf.start) / HOUR
        cf_g = cf_kwh * cf.carbon.mean_over(cf.start, cf.end)
        if cf.price_usd is not None:
            cf_cost = cf_kwh / 1000 * cf.price_usd.mean_over(cf.start, cf.end)
    return Account(
        energy_kwh=round(energy, 6),
        carbon_location_g=round(loc, 3),
        carbon_market_g=round(sum(s.carbon_market_g for s in segs), 3),
        cost_usd=None if cost is None else round(cost, 6),
        home_cluster=home,
        counterfactual_location_g=None if cf_g is None else round(cf_g, 3),
        saved_location_g=None if cf_g is None else round(cf_g - loc, 3),
        counterfactual_cost_usd=None if cf_cost is None else round(cf_cost, 6),
        carbon_source=source,
        contract_kwh=round(contract, 6),
        grid_cfe_kwh=round(grid_cfe, 6),
        cfe_percent=None if energy <= 0 else round(100 * (contract + grid_cfe) / energy, 3),
        cfe_estimated=any(b.cfe_estimated for b in booked),
        energy_source=_overall_source([s.energy_source for s in segs]),
        energy_note=energy_note,
        segments=segs,
    )


def _it_kw(segments: list[RunSegment], model_kw: float) -> float:
    """The job's average IT power over all its segments (the model when none was measured)."""
    if all(s.measured is None for s in segments):
        return model_kw
    seconds = sum(max(0.0, s.end - s.start) for s in segments)
    if seconds <= 0:
        return model_kw
    return sum(it_power_kw(s, model_kw) * max(0.0, s.end - s.start) for s in segments) / seconds


def power_kw(
    energy_watts_per_replica: float | None,
    watts_per_cpu: float | None,
    watts_per_gpu: float | None,
    cpu: float,
    gpu: float,
    replicas: int,
) -> float:
    """Average power of the job: the spec's energy model, else 10 W per CPU and 300 W per GPU
    (typical busy server core and data-centre GPU)."""
    if energy_watts_per_replica is not None:
        return energy_watts_per_replica * replicas / 1000
    w_cpu = 10.0 if watts_per_cpu is None else watts_per_cpu
    w_gpu = 300.0 if watts_per_gpu is None else watts_per_gpu
    return (cpu * w_cpu + gpu * w_gpu) / 1000
