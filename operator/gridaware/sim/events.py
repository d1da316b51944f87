"""Replaying real grid events (CAISO, ERCOT, PJM, GB DFS; ``../shared/data/grid-events``) on
the 2023 traces: how well the fleet would have answered, and what answering cost.

Each zone's jobs of the trace run at once in their home zone (the baseline). When an event
opens, the controller's own planner (``core.events``) answers minute by minute, exactly as the
operator does: the baseline and target are fixed from the load at the window's start; starts
that can wait are held to the window's end; running checkpointing jobs are paused, lowest
priority and most slack first, each taking effect after the checkpoint latency, at most as
fast as the ramp limit allows; nothing that would miss its deadline is touched (voluntary
events). Paused and held work resumes at the end, again ramp-limited. Reported per event:
compliance, achieved kW and time to target (``core.events.Tally``, the same figures as a
GridEvent's status), kW curtailed, job-hours of delay, the carbon the delay added or saved
(the zone's hourly intensity), deadline misses, and the error of the fleet's own 3-hour load
forecast (``core.power``) made at the window's start.

Overlapping notices of one zone (a Flex Alert, an EEA Watch and an EEA 2 on the same
evening) are merged into one window, as the data's README advises.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gridaware.api.v1alpha1 import parse_time
from gridaware.core import accounting, power, ramp
from gridaware.core import events as plan
from gridaware.core.events import Request, Tally
from gridaware.core.power import JobLoad, LoadState
from gridaware.core.ramp import ZoneRamp
from gridaware.sim.engine import WATTS_PER_CPU
from gridaware.sim.scenario import Regions, Workload, load_regions, load_workload

YEAR0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp()
MINUTE = 60.0
HOUR = 3600.0


@dataclass(frozen=True)
class Window:
    zone: str
    start: float  # seconds from 2023-01-01T00:00Z
    end: float
    types: tuple[str, ...]
    sources: tuple[str, ...]


def load_events(directory: Path, year: int = 2023, types: tuple[str, ...] = ()) -> list[Window]:
    """Event windows starting in ``year`` (all types, or only ``types``), merged per zone."""
    rows: list[tuple[str, float, float, str, str]] = []
    for path in sorted(directory.glob("events_*.csv")):
        with path.open(newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(fh):
                if not r["start_utc"].startswith(str(year)) or (types and r["type"] not in types):
                    continue
                start, end = parse_time(r["start_utc"]), parse_time(r["end_utc"])
                rows.append((r["zone"], start - YEAR0, end - YEAR0, r["type"], r["source_name"]))
    return _merge(sorted(rows))


def _merge(rows: list[tuple[str, float, float, str, str]]) -> list[Window]:
    out: list[Window] = []
    for zone, start, end, type_, source in rows:
        last = out[-1] if out else None
        if last is not None and last.zone == zone and start <= last.end:
            out[-1] = Window(
                zone,
                last.start,
                max(last.end, end),
                tuple(sorted({*last.types, type_})),
                tuple(sorted({*last.sources, source})),
            )
        else:
            out.append(Window(zone, start, end, (type_,), (source,)))
    return out


@dataclass
class EventParams:
    reduce_share: float = 0.25  # Curtail by this share of the baseline
    pausable_share: float = 0.6  # share of jobs that checkpoint (chosen deterministically)
    ramp_kw_per_minute: float | None = None
    latency_s: float = 30.0  # checkpoint grace: a pause takes effect this much later
    pue: float = 1.2


@dataclass
class EventResult:
    zone: str
    start: float
    end: float
    types: tuple[str, ...]
    jobs: int
    baseline_kw: float
    target_kw: float
    achieved_kw: float
    compliance: float
    time_to_target_s: float | None
    paused: int
    held: int
    delay_job_hours: float
    extra_carbon_kg: float
    deadline_misses: int
    forecast_error: float  # mean absolute error of the 3 h load forecast, share of actual

    @property
    def curtailed_kw(self) -> float:
        return self.baseline_kw - self.achieved_kw


@dataclass
class _Job:
    index: int
    kw: float
    start: float  # seconds (baseline start)
    length: float
    deadline: float
    pausable: bool
    paused_at: float | None = None
    resumed_at: float | None = None
    held_to: float | None = None

    def active(self, t: float) -> bool:
        """Drawing power at ``t`` under the response."""
        start = self.held_to if self.held_to is not None else self.start
        if t < start:
            return False
        if self.paused_at is not None and self.paused_at <= t:
            if self.resumed_at is None or t < self.resumed_at:
                return False
            return t < self.end()
        return t < start + self.length

    def end(self) -> float:
        start = self.held_to if self.held_to is not None else self.start
        lost = 0.0
        if self.paused_at is not None and self.resumed_at is not None:
            lost = self.resumed_at - self.paused_at
        return start + self.length + lost

    def load(self, zone: str, t: float) -> JobLoad:
        return JobLoad(
            str(self.index), zone, zone, self.kw, LoadState.RUNNING, self.start,
            max(0.0, self.start + self.length - t), self.deadline, self.pausable,
            self.pausable, 0, None, 1,
        )  # fmt: skip


def _pausable(index: int, share: float) -> bool:
    return (index * 0.6180339887498949) % 1.0 < share  # spread evenly, reproducible


@dataclass
class _Run:
    w: Window
    jobs: list[_Job]
    params: EventParams
    ramp: ZoneRamp | None

    def admit(self, kw: float, t: float) -> float:
        """When a change of ``kw`` may take effect at or after ``t`` (ramp-limited)."""
        if self.ramp is None:
            return t
        at = self.ramp.next_room(kw, t)
        self.ramp.admit(kw, at)
        return at


def _jobs_in(zone_index: int, work: Workload, w: Window, p: EventParams) -> list[_Job]:
    sel = np.flatnonzero(
        (work.home == zone_index)
        & (work.arrival * HOUR < w.end)
        & ((work.arrival + work.length) * HOUR > w.start - 1)
    )
    return [
        _Job(
            int(i),
            float(work.cpus[i]) * WATTS_PER_CPU / 1000 * p.pue,
            float(work.arrival[i]) * HOUR,
            float(work.length[i]) * HOUR,
            float(work.deadline[i]) * HOUR,
            _pausable(int(i), p.pausable_share),
        )
        for i in sel
    ]


def _load_at(jobs: list[_Job], t: float) -> float:
    return sum(j.kw for j in jobs if j.active(t))


def _round(run: _Run, req: Request, t: float) -> None:
    """One minute of the controller: hold new starts that can wait, pause what is needed."""
    w = run.w
    for j in run.jobs:
        arrives = t - MINUTE < j.start <= t and j.held_to is None and j.paused_at is None
        if arrives and j.deadline - j.length >= w.end:
            j.held_to = w.end  # when exactly: _release
    running = [
        j.load(w.zone, t)
        for j in run.jobs
        if j.active(t) and j.paused_at is None and j.held_to is None
    ]
    steps = plan.plan_curtail(Request(req.name, "Curtail", req.target_kw, t, w.end), running, [], t)
    by_index = {j.index: j for j in run.jobs}
    for s in steps:
        if s.type == "Pause" and s.job is not None:
            j = by_index[int(s.job)]
            j.paused_at = run.admit(j.kw, t) + run.params.latency_s


def _release(run: _Run) -> None:
    """At the window's end: held starts and paused jobs go again, tightest deadline first,
    spread by the ramp limit."""
    waiting = sorted(
        (j for j in run.jobs if j.paused_at is not None or j.held_to is not None),
        key=lambda j: (j.deadline, j.index),
    )
    times = ramp.spread([j.kw for j in waiting], run.params.ramp_kw_per_minute, run.w.end)
    for j, t in zip(waiting, times, strict=True):
        if j.paused_at is not None:
            j.resumed_at = max(t, j.paused_at)
        else:
            j.held_to = t


def replay_event(
    w: Window, zone_index: int, regions: Regions, work: Workload, p: EventParams
) -> EventResult:
    jobs = _jobs_in(zone_index, work, w, p)
    limiter = None if p.ramp_kw_per_minute is None else ZoneRamp(p.ramp_kw_per_minute)
    run = _Run(w, jobs, p, limiter)
    baseline_jobs = [_Job(j.index, j.kw, j.start, j.length, j.deadline, False) for j in jobs]
    baseline = _load_at(baseline_jobs, w.start)
    req = Request("event", "Curtail", baseline * (1 - p.reduce_share), w.start, w.end)
    tally = Tally.start(w.start, baseline, "Curtail", req.target_kw)
    minutes = max(1, math.ceil((w.end - w.start) / MINUTE))
    for k in range(minutes):
        t = w.start + k * MINUTE
        _round(run, req, t)
        tally = tally.add(t, _load_at(jobs, t), "Curtail", req.target_kw)
    tally = tally.add(w.end, tally.last_kw, "Curtail", req.target_kw)
    _release(run)
    return _result(
        w,
        regions.carbon[zone_index],
        jobs,
        baseline,
        req,
        tally,
        _forecast_error(w, jobs, baseline_jobs),
    )


def _forecast_error(w: Window, jobs: list[_Job], baseline_jobs: list[_Job]) -> float:
    """The fleet's 3-hour load forecast at the window start (running jobs with their known
    remaining work; later arrivals are unknown) against the baseline load that happened."""
    known = [j.load(w.zone, w.start) for j in baseline_jobs if j.active(w.start)]
    planned = power.profile(known, w.start, 3, w.start)
    actual = np.array(
        [
            np.mean([_load_at(baseline_jobs, w.start + h * HOUR + m * MINUTE) for m in range(60)])
            for h in range(3)
        ]
    )
    return power.forecast_error(planned, actual)[1]


def _result(
    w: Window,
    carbon: np.ndarray,
    jobs: list[_Job],
    baseline: float,
    req: Request,
    tally: Tally,
    fc_error: float,
) -> EventResult:
    ci = accounting.Series(0.0, np.asarray(carbon, dtype=np.float64))
    delay = extra = 0.0
    misses = 0
    for j in jobs:
        if j.paused_at is None and j.held_to is None:
            continue
        shift = j.end() - (j.start + j.length)
        delay += shift / HOUR
        before = ci.mean_over(j.start, j.start + j.length) * j.length
        runs = _segments(j)
        after = sum(ci.mean_over(a, b) * (b - a) for a, b in runs)
        extra += j.kw * (after - before) / HOUR / 1000  # kg
        misses += j.end() > j.deadline + 1e-6
    return EventResult(
        w.zone, w.start, w.end, w.types, len(jobs), baseline, req.target_kw, tally.achieved_kw,
        tally.compliance, tally.time_to_target, sum(j.paused_at is not None for j in jobs),
        sum(j.held_to is not None for j in jobs), delay, extra, misses, fc_error,
    )  # fmt: skip


def _segments(j: _Job) -> list[tuple[float, float]]:
    start = j.held_to if j.held_to is not None else j.start
    if j.paused_at is None or j.resumed_at is None:
        return [(start, start + j.length)]
    return [(start, j.paused_at), (j.resumed_at, j.end())]


def replay(
    windows: list[Window], regions: Regions, work: Workload, p: EventParams
) -> list[EventResult]:
    """Every window of a zone that the scenario has, in time order."""
    out = []
    for w in windows:
        if w.zone in regions.zones:
            out.append(replay_event(w, regions.zones.index(w.zone), regions, work, p))
    return out


def rows(results: list[EventResult]) -> list[dict[str, str]]:
    """One table row per event, for ``gridaware simulate --events``."""
    return [
        {
            "zone": r.zone,
            "start": dt.datetime.fromtimestamp(YEAR0 + r.start, tz=dt.UTC).strftime("%m-%d %H:%M"),
            "hours": f"{(r.end - r.start) / HOUR:.1f}",
            "jobs": str(r.jobs),
            "baseline kW": f"{r.baseline_kw:.1f}",
            "achieved kW": f"{r.achieved_kw:.1f}",
            "curtailed": f"{100 * r.curtailed_kw / r.baseline_kw:.0f}%" if r.baseline_kw else "-",
            "compliance": f"{100 * r.compliance:.0f}%",
            "to target": "-" if r.time_to_target_s is None else f"{r.time_to_target_s:.0f}s",
            "paused/held": f"{r.paused}/{r.held}",
            "delay h": f"{r.delay_job_hours:.1f}",
            "carbon kg": f"{r.extra_carbon_kg:+.2f}",
            "missed": str(r.deadline_misses),
            "fc err": f"{100 * r.forecast_error:.0f}%",
        }
        for r in results
    ]


def totals(results: list[EventResult]) -> dict[str, float]:
    """Fleet-wide figures: mean compliance weighted by window length, and sums."""
    span = sum(r.end - r.start for r in results) or 1.0
    return {
        "events": float(len(results)),
        "compliance": sum(r.compliance * (r.end - r.start) for r in results) / span,
        "curtailed_kwh": sum(r.curtailed_kw * (r.end - r.start) / HOUR for r in results),
        "delay_job_hours": sum(r.delay_job_hours for r in results),
        "extra_carbon_kg": sum(r.extra_carbon_kg for r in results),
        "deadline_misses": float(sum(r.deadline_misses for r in results)),
        "median_time_to_target_s": float(
            np.median([r.time_to_target_s for r in results if r.time_to_target_s is not None])
        )
        if any(r.time_to_target_s is not None for r in results)
        else float("nan"),
    }


def simulate(
    data_dir: Path,
    workload: Path,
    zones: list[str] | None = None,
    slack: float = 24.0,
    params: EventParams | None = None,
    limit: int | None = None,
) -> list[EventResult]:
    """Replay the 2023 event windows of ``data_dir/grid-events`` on the 2023 traces and the
    job trace (homes round-robin over the zones that have events, or over ``zones``)."""
    windows = load_events(data_dir / "grid-events")
    zones = zones or sorted({w.zone for w in windows})
    work = load_workload(workload, len(zones), slack, limit=limit)
    pad = int(np.ceil(max(0.0, float(work.deadline.max()) - 8760))) + 48
    regions = load_regions(zones, data_dir, pad)
    return replay(windows, regions, work, params or EventParams())
