"""Running every policy on a scenario and reporting: a table, JSON and PNG plots."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gridaware.sim import policies
from gridaware.sim.engine import Context, Params, Result, evaluate
from gridaware.sim.scenario import (
    YEAR_HOURS,
    Forecasts,
    Regions,
    Workload,
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
                    "SECONDS": f"{self.seconds[name]:.1f}",
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "regions": self.regions.zones,
            "price_sources": dict(zip(self.regions.zones, self.regions.price_sources, strict=True)),
            "capacity_cpus": dict(
                zip(self.regions.zones, self.regions.capacity.tolist(), strict=True)
            ),
            "jobs": self.work.count,
            "slack_hours": self.params.slack,
            "forecast": self.forecasts.source,
            "interruptible_oracle_bound_kg": self.interruptible_bound_kg,
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
                }
                for name, r in self.results.items()
            },
        }

    def plot(self, out: Path) -> list[Path]:
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415

        from gridaware.sim.engine import WATTS_PER_CPU  # noqa: PLC0415

        out.mkdir(parents=True, exist_ok=True)
        reg, w = self.regions, self.work
        t_count = reg.carbon.shape[1]
        fig, ax = plt.subplots(figsize=(10, 5))
        for name, r in self.results.items():
            s = r.schedule
            job = np.array(s.job)
            kw = w.cpus[job] * WATTS_PER_CPU / 1000
            per_hour = np.zeros(t_count)
            for rr, ss, ee, k in zip(s.region, s.start, s.end, kw, strict=True):
                a, b = int(np.floor(ss)), int(np.ceil(ee))
                per_hour[a:b] += k * reg.carbon[rr, a:b] * reg.pue[rr] / 1000
            ax.plot(np.arange(t_count) / 24, np.cumsum(per_hour) / 1000, label=name)
        ax.set_xlabel("day of 2023")
        ax.set_ylabel("cumulative emissions (t CO2e, location-based)")
        ax.set_title("Cumulative emissions per policy")
        ax.legend()
        first = out / "cumulative-emissions.png"
        fig.savefig(first, dpi=110, bbox_inches="tight")
        plt.close(fig)

        s = self.results["gridaware"].schedule
        load = np.zeros(reg.carbon.shape)
        for jj, rr, ss, ee in zip(s.job, s.region, s.start, s.end, strict=True):
            load[rr, int(np.floor(ss)) : int(np.ceil(ee))] += w.cpus[jj]
        mid = int(np.median(w.arrival))  # one week around the middle of the workload
        days = slice(max(0, mid - 84), max(0, mid - 84) + 168)
        fig, axes = plt.subplots(reg.count, 1, figsize=(10, 2.2 * reg.count), sharex=True)
        for i, zone in enumerate(reg.zones):
            ax = axes[i] if reg.count > 1 else axes
            hours = np.arange(t_count)[days] / 24
            ax.fill_between(hours, load[i, days], step="post", alpha=0.4, label="gridaware load")
            ax.set_ylabel(f"{zone}\ncpus")
            ax2 = ax.twinx()
            ax2.plot(hours, reg.carbon[i, days], color="black", lw=0.8)
            ax2.set_ylabel("g/kWh")
        axes[-1].set_xlabel("day of 2023 (one week around the workload's median arrival)")
        fig.suptitle("gridaware: load per region over the carbon intensity")
        second = out / "region-load.png"
        fig.savefig(second, dpi=110, bbox_inches="tight")
        plt.close(fig)
        return [first, second]


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
) -> Report:
    params = params or Params(slack=slack)
    params.slack = slack
    work = load_workload(workload, len(zones), slack, limit=limit, every=every)
    pad = int(np.ceil(max(0.0, float(work.deadline.max()) - YEAR_HOURS))) + params.horizon + 2
    regions = load_regions(zones, data_dir, pad)
    regions.capacity = capacities(regions, work, headroom)
    fc = build_forecasts(regions, params.horizon, forecast)
    ctx = Context(regions, work, fc, params)
    results, seconds = {}, {}
    every_policy = {**policies.POLICIES, **policies.INTERRUPTIBLE}
    for name in names or list(every_policy):
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
