"""Per-job carbon and cost accounts.

energy = power x time x PUE. Location-based carbon integrates the grid's average intensity
over the actual run segments; market-based carbon first assigns the cluster's contracted
green supply (up to its kW, at its own intensity) and the rest at the grid intensity. The two
are reported side by side and never added. Savings compare the location-based figure with
the counterfactual "run at once in the home cluster" computed from the same signal history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import Account, GreenContract, Segment, now_rfc3339
from gridaware.core import planning

HOUR = 3600.0


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


@dataclass(frozen=True)
class RunSegment:
    cluster: str
    zone: str
    start: float
    end: float
    pue: float
    carbon: Series
    price_usd: Series | None
    contracts: tuple[GreenContract, ...] = ()
    carbon_source: str = ""


def _stamp(t: float) -> str:
    import datetime as dt  # noqa: PLC0415

    return now_rfc3339(dt.datetime.fromtimestamp(t, tz=dt.UTC))


class MixedKindsError(ValueError):
    """Marginal and average intensities cannot be booked in one account."""


def account(
    segments: list[RunSegment],
    power_kw: float,
    home: str,
    counterfactual: RunSegment | None,
    source: str,
) -> Account:
    """The account of a finished job (``counterfactual`` spans the same duration; None when
    the home zone's history is missing: then no saving is claimed)."""
    kinds = {s.carbon.kind for s in segments if s.carbon.kind}
    if counterfactual is not None and counterfactual.carbon.kind:
        kinds.add(counterfactual.carbon.kind)
    if len(kinds) > 1:
        raise MixedKindsError(
            "the run's carbon intensities are of different kinds (average and marginal); "
            "configure one kind per fleet to book an account"
        )
    out: list[Segment] = []
    loc = mkt = energy = 0.0
    cost: float | None = 0.0
    for seg in segments:
        hours = max(0.0, seg.end - seg.start) / HOUR
        facility_kw = power_kw * seg.pue
        kwh = facility_kw * hours
        ci = seg.carbon.mean_over(seg.start, seg.end)
        g_loc = kwh * ci
        contracted_kw = min(facility_kw, sum(c.power_kw for c in seg.contracts))
        contract_ci = (
            (
                sum(c.power_kw * c.carbon_intensity for c in seg.contracts)
                / sum(c.power_kw for c in seg.contracts)
            )
            if seg.contracts
            else 0.0
        )
        g_mkt = hours * (contracted_kw * contract_ci + (facility_kw - contracted_kw) * ci)
        if seg.price_usd is None or cost is None:
            cost = None
        else:
            cost += kwh / 1000 * seg.price_usd.mean_over(seg.start, seg.end)
        out.append(
            Segment(
                cluster=seg.cluster,
                zone=seg.zone,
                start=_stamp(seg.start),
                end=_stamp(seg.end),
                energy_kwh=round(kwh, 6),
                carbon_location_g=round(g_loc, 3),
                carbon_market_g=round(g_mkt, 3),
            )
        )
        loc, mkt, energy = loc + g_loc, mkt + g_mkt, energy + kwh
    cf = counterfactual
    cf_g = (
        None
        if cf is None
        else power_kw
        * cf.pue
        * max(0.0, cf.end - cf.start)
        / HOUR
        * cf.carbon.mean_over(cf.start, cf.end)
    )
    return Account(
        energy_kwh=round(energy, 6),
        carbon_location_g=round(loc, 3),
        carbon_market_g=round(mkt, 3),
        cost_usd=None if cost is None else round(cost, 6),
        home_cluster=home,
        counterfactual_location_g=None if cf_g is None else round(cf_g, 3),
        saved_location_g=None if cf_g is None else round(cf_g - loc, 3),
        carbon_source=source,
        segments=out,
    )


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
