"""Running policies over a scenario and scoring what they did.

Every policy sees only what it could know when it decides (forecasts made from the past, or
the current value) except the oracles. Capacity is enforced per region and hour for every
policy (a partly used hour counts as used), and emissions and cost are always computed from
the actual series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gridaware.core import planning
from gridaware.sim import cfe as sim_cfe
from gridaware.sim.scenario import Forecasts, Regions, Workload

F64 = npt.NDArray[np.float64]
WATTS_PER_CPU = 12.5  # average draw of a busy server core incl. its share of memory and fans


@dataclass
class Params:
    slack: float = 24.0
    carbon_weight: float = 1.0
    price_weight: float = 0.0
    migration_overhead_h: float = 0.1  # lost work + restart per migration (checkpointable)
    migration_margin: float = 0.10  # hysteresis: required saving beyond the overhead
    min_dwell_h: float = 2.0
    max_migrations: int = 3
    check_every_h: int = 2
    min_migration_length_h: float = 3.0
    horizon: int = 96
    max_pauses: int = 4  # interruptible plans: most pauses per job (spec.flexibility)
    min_run_h: float = 1.0  # shortest run between pauses
    pause_overhead_h: float = 0.1  # work redone per resume (lost progress + restart)
    startup_seconds: float = 120.0  # start-up margin kept before every deadline (operator's)


@dataclass
class Schedule:
    job: list[int] = field(default_factory=list)
    region: list[int] = field(default_factory=list)
    start: list[float] = field(default_factory=list)
    end: list[float] = field(default_factory=list)
    migrations: int = 0
    pauses: int = 0

    def add(self, j: int, r: int, s: float, e: float) -> None:
        self.job.append(j)
        self.region.append(r)
        self.start.append(s)
        self.end.append(e)


def spread(row: F64, s: float, e: float, kw: float) -> None:
    """Add ``kw`` over [s, e) hours to ``row`` as kWh per hour (the part of each hour run)."""
    a, b = max(0, int(np.floor(s))), min(row.size, int(np.ceil(e)))
    if b <= a:
        return
    hours = np.arange(a, b)
    row[a:b] += kw * np.clip(np.minimum(e, hours + 1) - np.maximum(s, hours), 0.0, None)


class Capacity:
    """Cpus committed per region and hour (a partly used hour counts as used), and the kWh
    the committed runs draw there (the part of each hour run, PUE included): the load that
    contracted supply serves first when a policy values it."""

    def __init__(self, regions: Regions) -> None:
        self.cap = regions.capacity
        self.pue = regions.pue
        self.used: F64 = np.zeros(regions.carbon.shape)
        self.kwh: F64 = np.zeros(regions.carbon.shape)

    def kw(self, r: int, cpus: float) -> float:
        return float(cpus * WATTS_PER_CPU / 1000 * self.pue[r])

    def fits(self, r: int, s: float, e: float, cpus: float) -> bool:
        a, b = int(np.floor(s)), int(np.ceil(e))
        if b > self.used.shape[-1]:
            return False
        return bool(self.used[r, a:b].max(initial=0.0) + cpus <= self.cap[r] + 1e-9)

    def take(self, r: int, s: float, e: float, cpus: float) -> None:
        self.used[r, int(np.floor(s)) : int(np.ceil(e))] += cpus
        spread(self.kwh[r], s, e, self.kw(r, cpus))

    def release(self, r: int, s: float, e: float, cpus: float) -> None:
        self.used[r, int(np.ceil(s)) : int(np.ceil(e))] -= cpus
        spread(self.kwh[r], s, e, -self.kw(r, cpus))


@dataclass
class Context:
    regions: Regions
    work: Workload
    forecasts: Forecasts
    params: Params
    cost: F64 = field(init=False)  # (R, T) actual placement score per hour
    fcost: F64 = field(init=False)  # (R, T, H) forecast placement score
    price_forecast: F64 | None = field(init=False)  # (R, T, H) USD/MWh, when priced

    def __post_init__(self) -> None:
        p, reg = self.params, self.regions
        pue = reg.pue[:, None]
        self.cost = planning.cost_series(
            reg.carbon, reg.price, p.carbon_weight, p.price_weight, pue
        )
        price_fc = None
        self.price_forecast = None
        if p.price_weight > 0:
            # day-ahead prices are known a day ahead: use the actual prices as their forecast
            ext = np.concatenate([reg.price, reg.price[:, : p.horizon]], axis=1)
            price_fc = np.lib.stride_tricks.sliding_window_view(ext, p.horizon, axis=1)[
                :, : reg.price.shape[1]
            ]
            self.price_forecast = price_fc
        self.fcost = planning.cost_series(
            self.forecasts.carbon, price_fc, p.carbon_weight, p.price_weight, pue[:, :, None]
        )


Policy = Callable[[Context], Schedule]


def place_best(
    ctx: Context, cap: Capacity, j: int, costs: F64, regions: list[int], offsets: F64
) -> tuple[int, float]:
    """The cheapest (region, offset) whose run fits the capacity; falls back to the home
    region at the latest start that meets the deadline (and, if even that is full, runs
    there anyway so that no job is lost: reported as a capacity overrun)."""
    w = ctx.work
    order = np.argsort(costs, axis=None, kind="stable")
    n_off = costs.shape[1]
    for flat in order[:64]:
        ri, oi = divmod(int(flat), n_off)
        r, s = regions[ri], float(w.arrival[j] + offsets[oi])
        if cap.fits(r, s, s + w.length[j], w.cpus[j]):
            return r, s
    for flat in order[64:]:
        ri, oi = divmod(int(flat), n_off)
        r, s = regions[ri], float(w.arrival[j] + offsets[oi])
        if cap.fits(r, s, s + w.length[j], w.cpus[j]):
            return r, s
    return int(w.home[j]), float(w.arrival[j])


@dataclass
class Result:
    name: str
    carbon_kg: float
    cost_usd: float
    deadline_misses: int
    capacity_overruns: int
    migrations_per_job: float
    mean_delay_h: float
    pauses_per_job: float
    schedule: Schedule
    cfe: sim_cfe.Matched | None = None  # hourly-matched carbon-free share (sim.cfe)


def _matched(ctx: Context, sched: Schedule) -> sim_cfe.Matched:
    """The schedule's hourly-matched CFE figures; contracted supply counts over the hours the
    workload spans (arrival of the first job to the last deadline), so that unused contracted
    energy is what the fleet could have used."""
    reg, w = ctx.regions, ctx.work
    supply = np.zeros(reg.carbon.shape)
    supply_carbon = None
    if reg.supply is not None:
        lo = max(0, int(np.floor(w.arrival.min(initial=0.0))))
        hi = int(np.ceil(w.deadline.max(initial=0.0)))
        supply[:, lo:hi] = reg.supply.kwh[:, lo:hi]
        supply_carbon = reg.supply.carbon
    return sim_cfe.schedule_cfe(
        sched.region,
        sched.job,
        sched.start,
        sched.end,
        w.cpus * WATTS_PER_CPU / 1000,
        reg.pue,
        reg.carbon,
        supply,
        reg.renewable,
        supply_carbon,
    )


def evaluate(ctx: Context, name: str, sched: Schedule) -> Result:
    reg, w = ctx.regions, ctx.work
    job = np.array(sched.job, dtype=np.int64)
    r = np.array(sched.region, dtype=np.int64)
    s = np.array(sched.start)
    e = np.array(sched.end)
    kw = w.cpus[job] * WATTS_PER_CPU / 1000
    pc = planning.prefix(reg.carbon)
    pp = planning.prefix(reg.price)
    carbon_g = kw * planning.integrate(pc, reg.carbon, s, e, rows=r)
    cost = kw / 1000 * planning.integrate(pp, reg.price, s, e, rows=r) * reg.pue[r]
    first = np.full(w.count, np.inf)
    last = np.zeros(w.count)
    np.minimum.at(first, job, s)
    np.maximum.at(last, job, e)
    misses = int(np.sum(last > w.deadline + 1e-6))
    used = np.zeros(reg.carbon.shape)
    for jj, rr, ss, ee in zip(job, r, s, e, strict=True):
        used[rr, int(np.floor(ss)) : int(np.ceil(ee))] += w.cpus[jj]
    overruns = int(np.sum(used > reg.capacity[:, None] + 1e-9))
    matched = _matched(ctx, sched)
    return Result(
        name,
        float((carbon_g * reg.pue[r]).sum() / 1000),
        float(cost.sum()),
        misses,
        overruns,
        sched.migrations / w.count,
        float(np.mean(first - w.arrival)),
        sched.pauses / w.count,
        sched,
        matched,
    )
