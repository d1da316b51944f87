"""Replaying grid events on the 2023 traces: the real windows of ``../shared/data/grid-events``
(CAISO, ERCOT, PJM, GB DFS) or any file of windows or GridEvents (``sim.eventfile``,
``gridaware simulate --events``): how well the fleet would have answered, and what answering
cost.

Curtail: each zone's jobs of the trace run at once in their home zone (the baseline). When an
event opens, the controller's own planner (``core.events``) answers minute by minute, exactly
as the operator does: the baseline and target are fixed from the load at the window's start
(the event's own amount, or ``EventParams.reduce_share`` for the data set's notices, which
state none we can use); starts that can wait are held to the window's end; running
checkpointing jobs are paused, lowest priority and most slack first, each taking effect after
the checkpoint latency, at most as fast as the ramp limit allows; nothing that would miss its
deadline is touched unless the event is mandatory. Paused and held work resumes at the end,
again ramp-limited.

Pre-curtailment (``EventParams.precurtail``, on by default): each event is known
``EventParams.notice_s`` before its window (an hour: GB DFS events and CAISO Flex Alerts come
a day ahead, ERCOT appeals and PJM calls hours ahead). From then on the controller asks
``core.events.plan_ahead`` each minute, as the operator does while an event is Pending; once
the lead (the ramp's spread of the pauses, the checkpoint latency and one minute of round)
says so, it fixes the baseline and target from the load expected at the start, holds arrivals
that can wait and pauses, so that the window opens on target. Without it (or with a notice
shorter than the lead) the window's own rounds do the rest.

Absorb needs deferred work to pull forward, which running everything at once never has: for
an Absorb window the baseline is the temporal shifter's plan instead (each job starts at the
hour, within its slack, that gives its run the lowest mean intensity, with perfect foresight),
and the planner starts deferred jobs that have arrived early, soonest planned first, without
overshooting the target.

Reported per event: compliance, achieved kW and time to target (``core.events.Tally``, the
same figures as a GridEvent's status), kW curtailed or absorbed (against the mean load had
nobody responded, which a replay knows and the operator can only take from the load at the
window's start: its baseline, which fixes the target here too), job-hours of delay (negative
when work ran earlier), the carbon the response added or saved (the zone's hourly intensity),
deadline misses, and the error of the fleet's own 3-hour load forecast (``core.power``) made at
the window's start.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gridaware.core import accounting, planning, power, ramp
from gridaware.core import events as plan
from gridaware.core.events import Kind, Request, Tally
from gridaware.core.power import JobLoad, LoadState
from gridaware.core.ramp import ZoneRamp
from gridaware.sim.engine import WATTS_PER_CPU
from gridaware.sim.eventfile import YEAR0, Window, csv_rows, merge
from gridaware.sim.scenario import Regions, Workload, load_regions, load_workload

__all__ = ["YEAR0", "EventParams", "EventResult", "Window", "load_events", "replay", "simulate"]

MINUTE = 60.0
HOUR = 3600.0


def load_events(directory: Path, year: int = 2023, types: tuple[str, ...] = ()) -> list[Window]:
    """Event windows starting in ``year`` (all types, or only ``types``), merged per zone."""
    y0 = dt.datetime(year, 1, 1, tzinfo=dt.UTC).timestamp() - YEAR0
    y1 = dt.datetime(year + 1, 1, 1, tzinfo=dt.UTC).timestamp() - YEAR0
    rows = [
        r
        for path in sorted(directory.glob("events_*.csv"))
        for r in csv_rows(path.read_text(encoding="utf-8"), str(path))
        if y0 <= r[1] < y1 and (not types or r[3] in types)
    ]
    return merge(sorted(rows))


@dataclass
class EventParams:
    reduce_share: float = 0.25  # Curtail by this share of the baseline
    pausable_share: float = 0.6  # share of jobs that checkpoint (chosen deterministically)
    ramp_kw_per_minute: float | None = None
    latency_s: float = 30.0  # checkpoint grace: a pause takes effect this much later
    pue: float = 1.2
    precurtail: bool = True  # act ahead of a Curtail window (core.events.plan_ahead)
    notice_s: float = HOUR  # how long before its window an event is known


@dataclass
class EventResult:
    zone: str
    start: float
    end: float
    types: tuple[str, ...]
    name: str
    kind: Kind
    mandatory: bool
    jobs: int
    baseline_kw: float  # load at the window's start (fixes the target, as in the operator)
    target_kw: float
    achieved_kw: float
    without_kw: float  # mean load over the window had nobody responded (the counterfactual)
    compliance: float
    time_to_target_s: float | None
    paused: int
    held: int
    pulled: int
    delay_job_hours: float
    extra_carbon_kg: float
    deadline_misses: int
    forecast_error: float  # mean absolute error of the 3 h load forecast, share of actual

    @property
    def curtailed_kw(self) -> float:
        """kW shed on average over the window against drawing as without the event
        (negative: drawn more)."""
        return self.without_kw - self.achieved_kw

    @property
    def response_kw(self) -> float:
        """kW moved in the direction asked: curtailed for Curtail, absorbed for Absorb."""
        return self.curtailed_kw if self.kind == "Curtail" else -self.curtailed_kw


@dataclass
class _Job:
    index: int
    kw: float
    start: float  # seconds (baseline start: arrival, or the shifter's plan for Absorb)
    length: float
    deadline: float
    pausable: bool
    paused_at: float | None = None
    resumed_at: float | None = None
    held_to: float | None = None  # the start under the response, when it moved
    arrival: float | None = None  # when it is known, if before its baseline start
    pulled: bool = False

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
    last: float = -math.inf  # the latest change admitted so far

    def admit(self, kw: float, t: float) -> float:
        """When a change of ``kw`` may take effect at or after ``t`` (ramp-limited). Changes
        are admitted in time order, as ``ramp.spread`` does: the limiter forgets what is
        older than a minute before the latest time it was asked about, so a change is never
        placed before one admitted already."""
        if self.ramp is None:
            return t
        at = self.ramp.next_room(kw, max(t, self.last))
        self.ramp.admit(kw, at)
        self.last = at
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


def _hold_arrivals(run: _Run, req: Request, t: float) -> None:
    """Jobs arriving in the minute up to ``t`` that can wait for the window's end wait."""
    for j in run.jobs:
        arrives = t - MINUTE < j.start <= t and j.held_to is None and j.paused_at is None
        if arrives and (req.mandatory or j.deadline - j.length >= run.w.end):
            j.held_to = run.w.end  # when exactly: _release


def _running(run: _Run, t: float) -> list[JobLoad]:
    return [
        j.load(run.w.zone, t)
        for j in run.jobs
        if j.active(t) and j.paused_at is None and j.held_to is None
    ]


def _pause(run: _Run, steps: list[plan.Planned] | tuple[plan.Planned, ...], t: float) -> None:
    by_index = {j.index: j for j in run.jobs}
    for s in steps:
        if s.type == "Pause" and s.job is not None:
            j = by_index[int(s.job)]
            j.paused_at = run.admit(j.kw, t) + run.params.latency_s


def _round(run: _Run, req: Request, t: float) -> None:
    """One minute of the controller: hold new starts that can wait, pause what is needed."""
    _hold_arrivals(run, req, t)
    now = Request(req.name, "Curtail", req.target_kw, t, run.w.end, req.mandatory)
    _pause(run, plan.plan_curtail(now, _running(run, t), [], t), t)


Fixed = tuple[Request, float]  # the request and the baseline it was fixed from


def _ahead_round(run: _Run, fixed: Fixed | None, t: float) -> Fixed | None:
    """One minute before the window (pre-curtailment): nothing until ``plan_ahead`` says
    the lead has come; then the request fixed (baseline: the load expected at the start),
    arrivals held and jobs paused. Returns what was fixed (None: not begun)."""
    w, p = run.w, run.params
    running = _running(run, t)
    if fixed is None:
        probe = Request(w.name or "event", "Curtail", 0.0, w.start, w.end, w.mandatory)
        baseline = plan.load_at_start(probe, running, t)
        req, begun = replace(probe, target_kw=_target(w, baseline, p)), False
    else:
        (req, baseline), begun = fixed, True
    limits = {} if p.ramp_kw_per_minute is None else {w.zone: p.ramp_kw_per_minute}
    reaction = p.latency_s + MINUTE  # the checkpoint, and a decision a round late
    ahead = plan.plan_ahead(req, running, [], t, reaction, limits, begun)
    if not ahead.steps:
        return fixed
    _hold_arrivals(run, req, t)
    _pause(run, ahead.steps, t)
    return req, baseline


def _pre_curtail(run: _Run) -> Fixed | None:
    """The minutes from the event's notice to its window (``_ahead_round``)."""
    w = run.w
    fixed: Fixed | None = None
    for k in range(math.ceil(run.params.notice_s / MINUTE), 0, -1):
        fixed = _ahead_round(run, fixed, w.start - k * MINUTE)
    return fixed


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


def _target(w: Window, baseline: float, p: EventParams) -> float:
    if w.amount is None:
        return baseline * (1 - p.reduce_share)
    return w.amount.target_kw(baseline)


def replay_event(
    w: Window, zone_index: int, regions: Regions, work: Workload, p: EventParams
) -> EventResult:
    if w.kind == "Absorb":
        return _replay_absorb(w, zone_index, regions, work, p)
    jobs = _jobs_in(zone_index, work, w, p)
    limiter = None if p.ramp_kw_per_minute is None else ZoneRamp(p.ramp_kw_per_minute)
    run = _Run(w, jobs, p, limiter)
    baseline_jobs = [_Job(j.index, j.kw, j.start, j.length, j.deadline, False) for j in jobs]
    baseline = _load_at(baseline_jobs, w.start)
    req = Request(
        w.name or "event", "Curtail", _target(w, baseline, p), w.start, w.end, w.mandatory
    )
    ahead = _pre_curtail(run) if p.precurtail else None
    if ahead is not None:  # fixed when pre-curtailment began, as in the operator
        req, baseline = ahead
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
        (baseline, _mean_load(baseline_jobs, w)),
        req,
        tally,
        _forecast_error(w, jobs, baseline_jobs),
    )


def _mean_load(jobs: list[_Job], w: Window) -> float:
    """Time-weighted mean load over the window, sampled each minute like the response."""
    t = Tally.start(w.start, _load_at(jobs, w.start), "Curtail", math.inf)
    for k in range(1, max(1, math.ceil((w.end - w.start) / MINUTE))):
        at = w.start + k * MINUTE
        t = t.add(at, _load_at(jobs, at), "Curtail", math.inf)
    return t.add(w.end, t.last_kw, "Curtail", math.inf).achieved_kw


def _replay_absorb(
    w: Window, zone_index: int, regions: Regions, work: Workload, p: EventParams
) -> EventResult:
    """Absorb on the shifter's plan: deferred jobs that have arrived start early, soonest
    planned first, while the load stays at or below the target."""
    carbon = np.asarray(regions.carbon[zone_index], dtype=np.float64)
    jobs = _planned_jobs(zone_index, work, w, p, carbon)
    baseline_jobs = [replace(j) for j in jobs]
    baseline = _load_at(baseline_jobs, w.start)
    req = Request(w.name or "event", "Absorb", _target(w, baseline, p), w.start, w.end)
    tally = Tally.start(w.start, baseline, "Absorb", req.target_kw)
    minutes = max(1, math.ceil((w.end - w.start) / MINUTE))
    for k in range(minutes):
        t = w.start + k * MINUTE
        _pull(jobs, w.zone, req, t)
        tally = tally.add(t, _load_at(jobs, t), "Absorb", req.target_kw)
    tally = tally.add(w.end, tally.last_kw, "Absorb", req.target_kw)
    without = _mean_load(baseline_jobs, w)
    fc_error = _forecast_error(w, jobs, baseline_jobs)
    return _result(w, carbon, jobs, (baseline, without), req, tally, fc_error)


def _planned_jobs(
    zone_index: int, work: Workload, w: Window, p: EventParams, carbon: np.ndarray
) -> list[_Job]:
    """The zone's jobs that run or wait around the window, each starting where the shifter
    plans it: the whole hour within its slack with the lowest mean intensity over its run."""
    latest = work.deadline - work.length
    sel = np.flatnonzero(
        (work.home == zone_index)
        & (work.arrival * HOUR < w.end)
        & (np.maximum(latest, work.arrival + work.length) * HOUR > w.start - 1)
    )
    pre = planning.prefix(carbon)
    out = []
    for i in sel:
        arrival, length = float(work.arrival[i]), float(work.length[i])
        starts = arrival + np.arange(
            int(max(0.0, float(latest[i]) - arrival)) + 1, dtype=np.float64
        )
        runs = planning.integrate(pre, carbon, starts, starts + length)
        start = float(starts[int(np.argmin(runs))]) * HOUR
        job = _Job(
            int(i), float(work.cpus[i]) * WATTS_PER_CPU / 1000 * p.pue, start, length * HOUR,
            float(work.deadline[i]) * HOUR, False, arrival=arrival * HOUR,
        )  # fmt: skip
        if start + job.length > w.start:
            out.append(job)
    return out


def _pull(jobs: list[_Job], zone: str, req: Request, t: float) -> None:
    """One minute of the controller: pull deferred work forward into the room left."""
    deferred = [
        JobLoad(str(j.index), zone, zone, j.kw, LoadState.DEFERRED, j.start, j.length, j.deadline)
        for j in jobs
        if not j.pulled and j.arrival is not None and j.arrival <= t < j.start
    ]
    by_index = {j.index: j for j in jobs}
    for step in plan.plan_absorb(req, _load_at(jobs, t), deferred, t):
        j = by_index[int(step.job or -1)]
        j.held_to, j.pulled = t, True


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
    loads: tuple[float, float],  # at the window's start, and the mean without a response
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
    pulled = sum(j.pulled for j in jobs)
    return EventResult(
        w.zone, w.start, w.end, w.types, w.name, w.kind, w.mandatory, len(jobs), loads[0],
        req.target_kw, tally.achieved_kw, loads[1], tally.compliance, tally.time_to_target,
        sum(j.paused_at is not None for j in jobs),
        sum(j.held_to is not None for j in jobs) - pulled, pulled, delay, extra, misses, fc_error,
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


def _label(r: EventResult) -> str:
    return r.name or "+".join(r.types)


def _actions(r: EventResult) -> str:
    parts = [
        f"{n} {what}"
        for n, what in ((r.paused, "paused"), (r.held, "held"), (r.pulled, "pulled"))
        if n
    ]
    return ", ".join(parts) or "none"


def _change(r: EventResult) -> str:
    """Mean load over the window against the mean without a response, in kW and share."""
    delta = -r.curtailed_kw
    share = f" ({100 * delta / r.without_kw:+.0f}%)" if r.without_kw else ""
    return f"{delta:+.2f} kW{share}"


def rows(results: list[EventResult], origin: float = YEAR0) -> list[dict[str, str]]:
    """One table row per event, for ``gridaware simulate --events`` (``origin``: epoch
    seconds of the traces' first hour, from which the results' times count)."""
    return [
        {
            "EVENT": _label(r),
            "ZONE": r.zone,
            "KIND": r.kind + (" (mandatory)" if r.mandatory else ""),
            "START": dt.datetime.fromtimestamp(origin + r.start, tz=dt.UTC).strftime(
                "%Y-%m-%d %H:%M"
            ),
            "HOURS": f"{(r.end - r.start) / HOUR:.1f}",
            "JOBS": str(r.jobs),
            "BASELINE kW": f"{r.baseline_kw:.2f}",
            "TARGET kW": f"{r.target_kw:.2f}",
            "WITHOUT kW": f"{r.without_kw:.2f}",
            "ACHIEVED kW": f"{r.achieved_kw:.2f}",
            "CHANGE": _change(r),
            "COMPLIANCE": f"{100 * r.compliance:.0f}%",
            "TO TARGET": "-" if r.time_to_target_s is None else f"{r.time_to_target_s:.0f}s",
            "ACTIONS": _actions(r),
            "DELAY job-h": f"{r.delay_job_hours:+.1f}",
            "CARBON kg": f"{r.extra_carbon_kg:+.2f}",
            "MISSED": str(r.deadline_misses),
            "FC ERR": f"{100 * r.forecast_error:.0f}%",
        }
        for r in results
    ]


def totals(results: list[EventResult]) -> dict[str, float]:
    """Fleet-wide figures: mean compliance weighted by window length, and sums."""
    span = sum(r.end - r.start for r in results) or 1.0
    ttt = [r.time_to_target_s for r in results if r.time_to_target_s is not None]
    return {
        "events": float(len(results)),
        "compliance": sum(r.compliance * (r.end - r.start) for r in results) / span,
        "curtailed_kwh": sum(
            r.response_kw * (r.end - r.start) / HOUR for r in results if r.kind == "Curtail"
        ),
        "absorbed_kwh": sum(
            r.response_kw * (r.end - r.start) / HOUR for r in results if r.kind == "Absorb"
        ),
        "delay_job_hours": sum(r.delay_job_hours for r in results),
        "extra_carbon_kg": sum(r.extra_carbon_kg for r in results),
        "deadline_misses": float(sum(r.deadline_misses for r in results)),
        "median_time_to_target_s": float(np.median(ttt)) if ttt else float("nan"),
        "events_never_on_target": float(len(results) - len(ttt)),
    }


def _stamp(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(
    results: list[EventResult], skipped: list[Window], origin: float = YEAR0
) -> dict[str, Any]:
    """Every event's figures (times as RFC 3339; results count from ``origin``, skipped
    windows from 2023-01-01), the totals, and the windows left out."""

    events = []
    for r in results:
        d = asdict(r)
        d.update(start=_stamp(origin + r.start), end=_stamp(origin + r.end), types=list(r.types))
        d.update(curtailed_kw=r.curtailed_kw, response_kw=r.response_kw)
        events.append(d)
    left_out = [
        {
            "zone": w.zone,
            "name": w.name,
            "start": _stamp(YEAR0 + w.start),
            "end": _stamp(YEAR0 + w.end),
        }
        for w in skipped
    ]
    return {
        "events": [_finite(e) for e in events],
        "totals": _finite(dict(totals(results))),
        "skipped": left_out,
    }


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    """NaN (no figure) as null: JSON has no NaN."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in d.items()}


@dataclass
class Replayed:
    """The results of a file of windows, and the windows that could not be replayed."""

    results: list[EventResult]
    skipped: list[Window]  # outside the traces' time range
    zones: list[str]
    jobs: int
    trace_start: float  # epoch seconds of the traces' first hour
    trace_hours: int


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
    return replay_windows(windows, data_dir, workload, zones, slack, params, limit).results


def replay_windows(
    windows: list[Window],
    data_dir: Path,
    workload: Path,
    zones: list[str] | None = None,
    slack: float = 24.0,
    params: EventParams | None = None,
    limit: int | None = None,
    every: int = 1,
) -> Replayed:
    """Replay these windows on the carbon traces of their zones (or of ``zones``) and the job
    trace, homes round-robin over those zones. Windows outside the traces' range are left
    out (and returned as such): the job trace's hours count from the traces' first hour."""
    zones = zones or sorted({w.zone for w in windows})
    work = load_workload(workload, len(zones), slack, limit=limit, every=every)
    pad = int(np.ceil(max(0.0, float(work.deadline.max()) - 8760))) + 48
    regions = load_regions(zones, data_dir, pad)
    shift = YEAR0 - regions.start  # windows count from 2023-01-01, the jobs from hour 0
    inside: list[Window] = []
    skipped: list[Window] = []
    for w in windows:
        moved = replace(w, start=w.start + shift, end=w.end + shift)
        ok = w.zone in zones and moved.start >= 0 and moved.end <= regions.hours * HOUR
        (inside if ok else skipped).append(moved if ok else w)
    results = replay(inside, regions, work, params or EventParams())
    return Replayed(results, skipped, zones, int(work.arrival.size), regions.start, regions.hours)
