"""Running every policy on a scenario and reporting: a table, JSON and PNG plots."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridaware.sim import policies
from gridaware.sim.engine import Context, Params, Result, evaluate
from gridaware.sim.scenario import (
    Forecasts,
    Regions,
    Workload,
    add_contracts,
    build_forecasts,
    load_regions,
    load_workload,
)


@dataclass
class Report:
    results: dict[str, Result]
    interruptible_bound_kg: float
    seconds: dict[str, float]
    regions: Regions
    work: Workload
    forecasts: Forecasts
    params: Params

    def saving(self, name: str) -> float:
        base = self.results["now"].carbon_kg
        return 1 - self.results[name].carbon_kg / base

    def captured(self, name: str, bound: float | None = None) -> float:
        base = self.results["now"].carbon_kg
        best = bound if bound is not None else self.results["oracle"].carbon_kg
        return (base - self.results[name].carbon_kg) / (base - best) if base > best else 0.0

    def rows(self) -> list[dict[str, str]]:
        out = []
        for name, r in self.results.items():
            out.append(
                {
                    "POLICY": name,
                    "CARBON kg": f"{r.carbon_kg:,.0f}",
                    "COST USD": f"{r.cost_usd:,.0f}",
                    "SAVED vs now": f"{100 * self.saving(name):.1f}%",
                    "OF ORACLE": f"{100 * self.captured(name):.0f}%",
                    "OF BOUND": f"{100 * self.captured(name, self.interruptible_bound_kg):.0f}%",
                    "MISSES": str(r.deadline_misses),
                    "OVERRUNS": str(r.capacity_overruns),
                    "MIGR/JOB": f"{r.migrations_per_job:.2f}",
                    "PAUSES/JOB": f"{r.pauses_per_job:.2f}",
                    "DELAY h": f"{r.mean_delay_h:.1f}",
                    **self._cfe_columns(r),
                    "SECONDS": f"{self.seconds[name]:.1f}",
                }
            )
        return out

    def _cfe_columns(self, r: Result) -> dict[str, str]:
        """CFE % (``*`` where the grid's carbon-free share was estimated from the intensity)
        and, with contracts, the share of the contracted energy the jobs used."""
        if r.cfe is None:
            return {}
        out = {"CFE %": f"{r.cfe.cfe_percent:.1f}" + ("*" if r.cfe.estimated else "")}
        if self.regions.supply is not None:
            delivered = r.cfe.contract_delivered_kwh
            used = 100 * r.cfe.contract_kwh / delivered if delivered > 0 else 0.0
            out["CONTRACT USED %"] = f"{used:.1f}"
            if r.cfe.market_g is not None:
                out["MARKET kg"] = f"{r.cfe.market_g / 1000:,.0f}"
        return out

    def cfe_json(self, r: Result) -> dict[str, Any]:
        if r.cfe is None:
            return {}
        m = r.cfe
        return {
            "cfe_percent": m.cfe_percent,
            "cfe_estimated": m.estimated,
            "energy_kwh": m.energy_kwh,
            "contract_kwh": m.contract_kwh,
            "grid_cfe_kwh": m.grid_cfe_kwh,
            "contract_delivered_kwh": m.contract_delivered_kwh,
            "contract_unused_kwh": m.contract_unused_kwh,
            "market_based_carbon_kg": None if m.market_g is None else m.market_g / 1000,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "regions": self.regions.zones,
            "price_sources": dict(zip(self.regions.zones, self.regions.price_sources, strict=True)),
            "capacity_cpus": dict(
                zip(self.regions.zones, self.regions.capacity.tolist(), strict=True)
            ),
            "jobs": self.work.count,
            "trace_start": dt.datetime.fromtimestamp(self.regions.start, dt.UTC).isoformat(),
            "trace_hours": self.regions.hours,
            "slack_hours": self.params.slack,
            "forecast": self.forecasts.source,
            "interruptible_oracle_bound_kg": self.interruptible_bound_kg,
            "contracts": {
                zone: [c.model_dump(by_alias=True, exclude_none=True) for c in cs]
                for zone, cs in zip(self.regions.zones, self.regions.contracts, strict=False)
                if cs
            },
            "policies": {
                name: {
                    "carbon_kg": r.carbon_kg,
                    "cost_usd": r.cost_usd,
                    "saving_vs_now": self.saving(name),
                    "share_of_oracle_saving": self.captured(name),
                    "share_of_interruptible_bound_saving": self.captured(
                        name, self.interruptible_bound_kg
                    ),
                    "deadline_misses": r.deadline_misses,
                    "capacity_overruns": r.capacity_overruns,
                    "migrations_per_job": r.migrations_per_job,
                    "pauses_per_job": r.pauses_per_job,
                    "mean_delay_hours": r.mean_delay_h,
                    "seconds": self.seconds[name],
                    **self.cfe_json(r),
                }
                for name, r in self.results.items()
            },
        }

    def plot(self, out: Path) -> list[Path]:
        """Two PNGs sized to the scenario: cumulative emissions per policy over the span the
        jobs use (days from the trace's first hour, kg or t as fits), and one week (or the
        whole trace when shorter) of gridaware's load per region over its carbon intensity;
        a region without load says so instead of drawing an empty scale."""
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        out.mkdir(parents=True, exist_ok=True)
        reg, w = self.regions, self.work
        t0 = dt.datetime.fromtimestamp(reg.start, dt.UTC).strftime("%Y-%m-%d")
        lo = int(np.floor(w.arrival.min()))
        hi = min(reg.carbon.shape[1], int(np.ceil(w.deadline.max())) + 1)
        first = out / "cumulative-emissions.png"
        self._plot_cumulative(plt, first, lo, hi, t0)
        second = out / "region-load.png"
        self._plot_load(plt, second, lo, hi, t0)
        return [first, second]

    def _hourly_emissions(self, name: str, t_count: int) -> np.ndarray:
        from gridaware.sim.engine import WATTS_PER_CPU  # noqa: PLC0415

        reg, w, s = self.regions, self.work, self.results[name].schedule
        per_hour = np.zeros(t_count)
        for j, rr, ss, ee in zip(s.job, s.region, s.start, s.end, strict=True):
            a, b = int(np.floor(ss)), int(np.ceil(ee))
            hours = np.arange(a, b)
            share = np.minimum(ee, hours + 1) - np.maximum(ss, hours)  # part of each hour run
            kw = w.cpus[j] * WATTS_PER_CPU / 1000
            per_hour[a:b] += kw * share * reg.carbon[rr, a:b] * reg.pue[rr] / 1000
        return per_hour

    def _plot_cumulative(self, plt: Any, path: Path, lo: int, hi: int, t0: str) -> None:
        t_count = self.regions.carbon.shape[1]
        curves = {n: np.cumsum(self._hourly_emissions(n, t_count)[lo:hi]) for n in self.results}
        peak = max((float(c[-1]) for c in curves.values() if c.size), default=0.0)
        scale, unit = (1000.0, "t") if peak >= 1000 else (1.0, "kg")
        span_days = (hi - lo) / 24
        x = np.arange(lo, hi) / 24 if span_days > 2 else np.arange(lo, hi) - lo
        fig, ax = plt.subplots(figsize=(10, 5))
        for name, c in curves.items():
            ax.plot(x, c / scale, label=name)
        ax.set_xlim(x[0], x[-1]) if x.size > 1 else None
        ax.set_xlabel(f"day from {t0}" if span_days > 2 else f"hour from hour {lo} of {t0}")
        ax.set_ylabel(f"cumulative emissions ({unit} CO2e, location-based)")
        ax.set_title(f"Cumulative emissions per policy ({self.work.count} jobs)")
        ax.legend()
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)

    def _plot_load(self, plt: Any, path: Path, lo: int, hi: int, t0: str) -> None:
        reg, w = self.regions, self.work
        name = "gridaware" if "gridaware" in self.results else next(iter(self.results))
        s = self.results[name].schedule
        load = np.zeros(reg.carbon.shape)
        for jj, rr, ss, ee in zip(s.job, s.region, s.start, s.end, strict=True):
            load[rr, int(np.floor(ss)) : int(np.ceil(ee))] += w.cpus[jj]
        if hi - lo <= 168:
            a, b = lo, hi
        else:
            mid = int(np.median(w.arrival))
            a = min(max(lo, mid - 84), hi - 168)
            b = a + 168
        hours = np.arange(a, b) / 24
        fig, axes = plt.subplots(reg.count, 1, figsize=(10, 2.2 * reg.count), sharex=True)
        axes = np.atleast_1d(axes)
        for i, zone in enumerate(reg.zones):
            ax = axes[i]
            ax.plot(hours, reg.carbon[i, a:b], color="black", lw=0.8)
            ax.set_ylabel(f"{zone}\ngCO2e/kWh")
            ax.set_xlim(hours[0], hours[-1])
            if load[i, a:b].max(initial=0.0) > 0:
                ax2 = ax.twinx()
                ax2.fill_between(hours, load[i, a:b], step="post", alpha=0.35, label="load")
                ax2.set_ylabel("busy cpus")
                ax2.set_ylim(0, None)
            else:
                ax.text(0.01, 0.85, "no load in this window", transform=ax.transAxes, fontsize=8)
        what = "the whole trace" if hi - lo <= 168 else "one week around the median arrival"
        axes[-1].set_xlabel(f"day from {t0} ({what})")
        fig.suptitle(f"{name}: busy cpus per region over the carbon intensity")
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)


def capacities(regions: Regions, work: Workload, headroom: float) -> np.ndarray:
    """Per region: (1 + headroom) x the peak cpus its home jobs use when run at once."""
    load = np.zeros(regions.carbon.shape)
    for a, length, c, h in zip(work.arrival, work.length, work.cpus, work.home, strict=True):
        load[h, int(np.floor(a)) : int(np.ceil(a + length))] += c
    return np.asarray(np.ceil((1 + headroom) * load.max(axis=1)), dtype=np.float64)


def simulate(
    zones: list[str],
    data_dir: Path,
    workload: Path,
    slack: float = 24.0,
    headroom: float = 0.5,
    forecast: str = "builtin",
    limit: int | None = None,
    params: Params | None = None,
    names: list[str] | None = None,
    every: int = 1,
    contracts: Sequence[str] = (),
) -> Report:
    """Every policy (or ``names``) on the scenario. ``contracts`` (``sim.cfe.parse_contract``
    specs) give regions green contracts: every policy's CFE % counts them, and
    ``gridaware+contracts`` (the operator's planner with ``objective.valueContracts``) runs
    beside the others."""
    params = params or Params(slack=slack)
    params.slack = slack
    work = load_workload(workload, len(zones), slack, limit=limit, every=every)
    regions = load_regions(
        zones, data_dir, params.horizon + 2, need_hours=float(work.deadline.max())
    )
    regions.capacity = capacities(regions, work, headroom)
    if contracts:
        add_contracts(regions, contracts)
    fc = build_forecasts(regions, params.horizon, forecast)
    ctx = Context(regions, work, fc, params)
    results, seconds = {}, {}
    every_policy = {**policies.POLICIES, **policies.INTERRUPTIBLE, **policies.CONTRACTS}
    default = [n for n in every_policy if contracts or n not in policies.CONTRACTS]
    for name in names or default:
        t = time.process_time()
        sched = every_policy[name](ctx)
        results[name] = evaluate(ctx, name, sched)
        seconds[name] = time.process_time() - t
    bound = policies.oracle_interruptible_bound(ctx)
    return Report(results, bound, seconds, regions, work, fc, params)


def temporal_oracle_saving(
    carbon: np.ndarray, job_hours: int, slack: int
) -> tuple[float, float, float]:
    """Single-zone, non-interruptible, perfect-foresight saving as in Sukprasert et al.: for
    every arrival hour i = 0 .. len - J - slack, the best start in [i, i + slack] against
    starting at i. Returns (saving, optimal sum, run-at-once sum)."""
    sums = np.convolve(carbon, np.ones(job_hours), "valid")
    n = carbon.size - job_hours - slack + 1
    base = sums[:n]
    best = np.lib.stride_tricks.sliding_window_view(sums[: n + slack], slack + 1).min(axis=1)
    return float(1 - best.sum() / base.sum()), float(best.sum()), float(base.sum())


def write(report: Report, json_path: Path | None) -> None:
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report.to_json(), indent=2))
