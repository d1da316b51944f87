"""The policies compared by the simulator. ``gridaware`` uses the operator's own scoring and
planning functions (``core.placement``/``core.planning``); the others are the simpler
strategies users could pick instead, and the perfect-foresight oracles."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import MigrationPolicy, Objective
from gridaware.core import cfe, interruptible, migration, planning, shifting
from gridaware.sim.engine import Capacity, Context, Schedule, place_best, spread

H = 3600.0
F64 = npt.NDArray[np.float64]


def _offsets(ctx: Context, j: int) -> np.ndarray:
    """Whole-hour start delays that still meet the deadline (the threshold policy's clock)."""
    w = ctx.work
    latest = _latest(ctx, j) - w.arrival[j]
    return np.arange(0, int(np.floor(latest + 1e-9)) + 1, dtype=np.float64)


def _start_offsets(ctx: Context, j: int) -> np.ndarray:
    """Start delays worth costing (``core.shifting.candidate_starts``: now, the latest start,
    every hour boundary and every start whose run ends on one); the same set the operator's
    planner costs, so the oracle over it is the true optimum of an hourly step signal."""
    w = ctx.work
    a = float(w.arrival[j])
    return shifting.candidate_starts(a, _latest(ctx, j), float(w.length[j]), 1.0) - a


def _latest(ctx: Context, j: int) -> float:
    """The latest start (hours) that meets job j's deadline with the operator's start-up
    margin (``core.shifting.latest_start``), never before its arrival."""
    w = ctx.work
    latest = (
        shifting.latest_start(w.deadline[j] * H, w.length[j] * H, ctx.params.startup_seconds) / H
    )
    return max(float(w.arrival[j]), latest)


def _window_costs(
    ctx: Context, j: int, regions: list[int], offsets: np.ndarray, foresight: bool
) -> np.ndarray:
    """(regions, offsets) cost of running job j from arrival + offset, from the forecast made
    at its arrival hour (or the actual series for the oracle)."""
    w = ctx.work
    a, length = w.arrival[j], w.length[j]
    t0 = int(np.floor(a))
    if foresight:
        series = ctx.cost[regions, t0 : t0 + ctx.params.horizon]
    else:
        series = ctx.fcost[regions, t0, :]
    start = a - t0 + offsets
    p = planning.prefix(series)
    rows = np.repeat(np.arange(len(regions)), offsets.size)
    t = np.tile(start, len(regions))
    return planning.integrate(p, series, t, t + length, rows=rows).reshape(len(regions), -1)


def _run(
    ctx: Context,
    choose: str,
    foresight: bool = False,
    temporal: bool = True,
    operator: bool = False,
    value: bool = False,
) -> Schedule:
    """Place jobs in arrival order. With ``operator`` the operator's own planner places them
    and its migration check re-evaluates running jobs at their check times, interleaved with
    arrivals in time order (a move decided at hour 36 must not take capacity that a job
    arriving at hour 28 could have used)."""
    w, reg = ctx.work, ctx.regions
    cap = Capacity(reg)
    sched = Schedule()
    all_regions = list(range(reg.count))
    checks: list[tuple[float, int, int, int, float, float, int]] = []

    def run_checks(until: float) -> None:
        while checks and checks[0][0] <= until:
            t, _, j, r, s, e, moves = heapq.heappop(checks)
            nxt = _operator_check(ctx, cap, sched, j, r, s, e, moves, t, value)
            if nxt is not None:
                heapq.heappush(checks, (nxt[0], j, j, *nxt[1:]))

    for j in range(w.count):
        run_checks(float(w.arrival[j]))
        regions = all_regions if choose == "all" else [int(w.home[j])]
        offsets = _start_offsets(ctx, j) if temporal else np.zeros(1)
        planned = _operator_plan(ctx, cap, j, value) if operator else None
        if planned is not None:
            r, s = planned
        else:
            costs = _window_costs(ctx, j, regions, offsets, foresight)
            r, s = place_best(ctx, cap, j, costs, regions, offsets)
            if not temporal and not cap.fits(r, s, s + w.length[j], w.cpus[j]):
                # every region is full at arrival: wait for the earliest start that fits
                later = _start_offsets(ctx, j)
                earliest = np.broadcast_to(later, (len(regions), later.size)).copy()
                r, s = place_best(ctx, cap, j, earliest, regions, later)
        e = s + w.length[j]
        cap.take(r, s, e, w.cpus[j])
        first = float(np.ceil(s) + ctx.params.min_dwell_h)
        if operator and w.length[j] >= ctx.params.min_migration_length_h and first < e - 1:
            heapq.heappush(checks, (first, j, j, r, s, e, 0))
        else:
            sched.add(j, r, s, e)
    run_checks(np.inf)
    return sched


@dataclass(frozen=True)
class Valuing:
    """``objective.valueContracts`` for one job: the load already committed (``cap.kwh``)
    is served first; ``own`` is the job's current run (region, start, end in hours), left
    out of that load when a running job is re-evaluated."""

    cap: Capacity
    cpus: float
    own: tuple[int, float, float] | None = None


def _forecasts_at(ctx: Context, t0: int, value: Valuing | None = None) -> list[shifting.Forecast]:
    """What the operator would get from its feeds at hour t0: per region, the carbon (and,
    when priced, day-ahead price) forecast from that hour; with ``value``, the hours the
    region's contracts would cover valued market-based as the operator does
    (``core.cfe.cover`` and ``core.cfe.valued``, the functions ``services.ledger`` uses)."""
    reg = ctx.regions
    out = []
    for r in range(reg.count):
        price = ctx.price_forecast[r, t0] if ctx.price_forecast is not None else None
        carbon = ctx.forecasts.carbon[r, t0, :]
        if value is not None and reg.supply is not None:
            carbon, price = _valued(ctx, value, r, t0, carbon, price)
        out.append(shifting.Forecast(str(r), float(reg.pue[r]), t0 * H, carbon, price))
    return out


def _valued(
    ctx: Context, v: Valuing, r: int, t0: int, carbon: F64, price: F64 | None
) -> tuple[F64, F64 | None]:
    assert ctx.regions.supply is not None
    hours = carbon.size
    d = ctx.regions.supply.delivery(r, t0, hours)
    other = np.zeros(hours)
    n = max(0, min(hours, v.cap.kwh.shape[1] - t0))
    other[:n] = v.cap.kwh[r, t0 : t0 + n]
    kw = v.cap.kw(r, v.cpus)
    if v.own is not None and v.own[0] == r:
        mine = np.zeros(hours)
        spread(mine, v.own[1] - t0, v.own[2] - t0, kw)
        other = np.clip(other - mine, 0.0, None)
    covered = cfe.cover(d.kwh, other, np.full(hours, kw))
    return cfe.valued(carbon, price, covered, d)


def _objective(ctx: Context) -> Objective:
    return Objective(carbon_weight=ctx.params.carbon_weight, price_weight=ctx.params.price_weight)


def _operator_plan(
    ctx: Context, cap: Capacity, j: int, value: bool = False
) -> tuple[int, float] | None:
    """``core.shifting.plan``, exactly as the operator calls it for a deferred job: at
    arrival, then again at every hour while the job waits, each time with the forecasts issued
    at that hour (the operator re-plans on every retry, at most a minute apart; forecasts
    change hourly, so hourly re-planning sees every forecast it would), holding the plan it is
    deferred to as the operator does (``committed``: the status' deferral). The job starts
    when a plan's start falls before the next forecast; then the capacity check."""
    w = ctx.work
    a, length = float(w.arrival[j]), float(w.length[j])
    latest = _latest(ctx, j)
    now = a
    valuing = Valuing(cap, float(w.cpus[j])) if value else None
    held: tuple[str, float] | None = None
    while True:
        hour = int(np.floor(now))
        plan = shifting.plan(
            _forecasts_at(ctx, hour, valuing),
            _objective(ctx),
            now=now * H,
            earliest=a * H,
            latest_start=latest * H,
            duration=length * H,
            step=H,
            committed=held,
        )
        if plan is None:
            return None
        s = plan.start / H
        if s < hour + 1 or now >= latest:
            r = int(plan.cluster)
            return (r, s) if cap.fits(r, s, s + length, w.cpus[j]) else None
        held = (plan.cluster, plan.start)
        now = float(hour + 1)


def _operator_check(
    ctx: Context,
    cap: Capacity,
    sched: Schedule,
    j: int,
    r: int,
    s: float,
    e: float,
    moves: int,
    t: float,
    value: bool = False,
) -> tuple[float, int, float, float, int] | None:
    """``core.migration.consider``, exactly as the operator calls it, then capacity and
    deadline checks; on a move the source segment ends now and the target's starts, with
    the overhead added to the run. Returns the next check (time, region, start, end, moves),
    or None once the job's last segment is final (it is then added to the schedule)."""
    p, w = ctx.params, ctx.work
    if t >= e - 1 or moves >= p.max_migrations:
        sched.add(j, r, s, e)
        return None
    policy = MigrationPolicy(
        policy="Checkpoint",
        min_dwell_seconds=int(p.min_dwell_h * H),
        max_migrations=p.max_migrations,
        overhead_seconds=int(p.migration_overhead_h * H),
        margin=p.migration_margin,
    )
    remaining = e - t
    valuing = Valuing(cap, float(w.cpus[j]), (r, s, e)) if value else None
    move = migration.consider(
        str(r),
        _forecasts_at(ctx, int(t), valuing),
        _objective(ctx),
        policy,
        now=t * H,
        remaining=remaining * H,
        since_start=(t - s) * H,
        moves_done=moves,
        duration=float(w.length[j]) * H,
        deadline=float(w.deadline[j]) * H,
    )
    if move is not None:
        target = int(move.target)
        new_end = t + p.migration_overhead_h + remaining
        if new_end <= w.deadline[j] and cap.fits(target, t, new_end, w.cpus[j]):
            cap.release(r, t, e, w.cpus[j])
            cap.take(target, t, new_end, w.cpus[j])
            sched.add(j, r, s, t)
            sched.migrations += 1
            return t + p.min_dwell_h, target, t, new_end, moves + 1
    return t + p.check_every_h, r, s, e, moves


def now(ctx: Context) -> Schedule:
    """Carbon-agnostic: run at arrival in the home region."""
    w = ctx.work
    sched = Schedule()
    for j in range(w.count):
        sched.add(j, int(w.home[j]), float(w.arrival[j]), float(w.arrival[j] + w.length[j]))
    return sched


def threshold(ctx: Context) -> Schedule:
    """Hold in the home region while the current intensity is above the median of the past
    week, up to the latest start that meets the deadline."""
    w, reg = ctx.work, ctx.regions
    cap = Capacity(reg)
    sched = Schedule()
    for j in range(w.count):
        r, a = int(w.home[j]), w.arrival[j]
        t0 = int(np.floor(a))
        past = reg.carbon[r, max(0, t0 - 168) : t0 + 1]
        limit = float(np.median(past))
        chosen = a
        for k in _offsets(ctx, j):
            if reg.carbon[r, t0 + int(k)] <= limit and cap.fits(
                r, a + k, a + k + w.length[j], w.cpus[j]
            ):
                chosen = a + k
                break
        else:
            chosen = a + _offsets(ctx, j)[-1]
        cap.take(r, chosen, chosen + w.length[j], w.cpus[j])
        sched.add(j, r, float(chosen), float(chosen + w.length[j]))
    return sched


def lowest_window(ctx: Context) -> Schedule:
    """Start at the forecast-cheapest window before the deadline, in the home region."""
    return _run(ctx, choose="home")


def greedy_spatial(ctx: Context) -> Schedule:
    """Always the region with the lowest forecast cost for the run, no waiting."""
    return _run(ctx, choose="all", temporal=False)


def gridaware(ctx: Context) -> Schedule:
    """The operator's planner: every region and start time within the deadline from
    forecasts, then migration with hysteresis while the job runs."""
    return _run(ctx, choose="all", operator=True)


def gridaware_contracts(ctx: Context) -> Schedule:
    """``gridaware`` with ``objective.valueContracts``: the hours each region's contracts
    would cover (after the load already planned there) are planned at the contracts'
    intensity and price."""
    return _run(ctx, choose="all", operator=True, value=True)


def oracle(ctx: Context) -> Schedule:
    """Perfect foresight, same constraints, non-interruptible (no migration)."""
    return _run(ctx, choose="all", foresight=True)


def oracle_interruptible_bound(ctx: Context) -> float:
    """Lower bound on carbon (kg) with perfect foresight and free suspend/resume and moves:
    each job runs in the cheapest hours among all regions before its deadline (no capacity).
    """
    return float(oracle_interruptible_bound_jobs(ctx).sum())


def oracle_interruptible_bound_jobs(ctx: Context) -> F64:
    """``oracle_interruptible_bound`` per job (kg), so a report can split it (by season).

    A job may run in any part of any hour between its arrival and its deadline less the
    start-up margin every policy keeps (``shifting.latest_start``), in any region at once: the
    hours at either end count only for the part of them inside that window (counting them
    whole, the bound ran 1-hour jobs partly before they arrived, which no policy can)."""
    from gridaware.sim.engine import WATTS_PER_CPU  # noqa: PLC0415

    w, reg = ctx.work, ctx.regions
    margin = ctx.params.startup_seconds / H
    out = np.zeros(w.count)
    for j in range(w.count):
        need = float(w.length[j])
        t0 = float(w.arrival[j])
        t1 = max(float(w.deadline[j]) - margin, t0 + need)
        h0 = int(np.floor(t0))
        values = reg.carbon[:, h0 : int(np.ceil(t1))] * reg.pue[:, None]
        hours = h0 + np.arange(values.shape[1])
        room = np.minimum(hours + 1, t1) - np.maximum(hours, t0)
        out[j] = _cheapest_fill(values.ravel(), np.tile(room, reg.count), need)
        out[j] *= w.cpus[j] * WATTS_PER_CPU / 1e6
    return out


def _cheapest_fill(values: F64, room: F64, need: float) -> float:
    """The least sum of value x hours that fills ``need`` hours from slots of ``room``
    hours each (hours past the trace's end, which it does not reach, count nothing)."""
    order = np.argsort(values, kind="stable")
    v, c = values[order], room[order]
    full = np.cumsum(c) <= need
    left = need - float(c[full].sum())
    rest = v[~full]
    return float((v[full] * c[full]).sum()) + (left * float(rest[0]) if rest.size else 0.0)


POLICIES = {
    "now": now,
    "threshold": threshold,
    "lowest-window": lowest_window,
    "greedy-spatial": greedy_spatial,
    "gridaware": gridaware,
    "oracle": oracle,
}


def _interruptible_job(ctx: Context, sched: Schedule, j: int) -> None:
    """One checkpointable job under ``core.interruptible.plan_intervals``, re-planned every
    hour with that hour's forecasts while it waits, is paused or runs, as the operator does
    (``services.runplan`` re-plans a running job every few grid minutes and pauses it when the
    plan's current run ends now; forecasts change hourly, so hourly re-planning sees every
    forecast it would). When the planned start or resume comes, the job runs (the operator
    wakes a little after it, when the plan's hour slots could no longer start it then) until
    the next re-plan. A resume redoes ``pause_overhead_h`` of work. The cluster is the one
    whose plan is cheapest at arrival (``core.interruptible.first_run``, as the operator
    defers such a job; pauses are in place, no moves)."""
    p, w = ctx.params, ctx.work
    a, deadline = float(w.arrival[j]), float(w.deadline[j])
    first = interruptible.first_run(
        _forecasts_at(ctx, int(np.floor(a))),
        _objective(ctx),
        a * H,
        _latest_end(ctx, deadline),
        float(w.length[j]) * H,
        _bounds(ctx, p.max_pauses),
    )
    region = int(first[0].cluster) if first is not None else int(w.home[j])
    now, work, pauses, run_start = a, float(w.length[j]), p.max_pauses, -1.0
    due = -1.0  # the planned start or resume the job waits for
    while work > 1e-9:
        hour = int(np.floor(now))
        if run_start < 0 <= due <= now + 1e-9:  # it has come: the job runs to the next plan
            run_start, due = now, -1.0
            step = min(float(hour + 1), now + work)
            work -= step - now
            now = step
            continue
        running_for = now - run_start if run_start >= 0 else 0.0
        plan = _interval_plan(ctx, region, hour, now, deadline, work, pauses, running_for)
        if plan is None or not plan.intervals:  # the deadline wins: run to the end now
            sched.add(j, region, run_start if run_start >= 0 else now, now + work)
            return
        s, e = plan.intervals[0][0] / H, plan.intervals[0][1] / H
        if e <= now + 1e-9:  # nothing left to plan (rounding): finish now
            break
        if s > now + 1e-9:
            if run_start >= 0:  # pause now: the segment ends, the resume redoes the overhead
                sched.add(j, region, run_start, now)
                sched.pauses += 1
                pauses, work, run_start = pauses - 1, work + p.pause_overhead_h, -1.0
            due = s
            now = s if s < hour + 1 else float(hour + 1)
            continue
        if run_start < 0:
            run_start = now
        step = min(e, float(hour + 1))  # run on to the plan's pause or the next forecast
        work -= step - now
        now = step
    if run_start < 0:
        run_start = now
    sched.add(j, region, run_start, now + max(0.0, work))


def _interval_plan(
    ctx: Context,
    r: int,
    hour: int,
    now: float,
    deadline: float,
    work: float,
    pauses: int,
    running_for: float,
) -> interruptible.IntervalPlan | None:
    """``core.interruptible.plan_intervals`` on region r's forecast issued at ``hour``."""
    return interruptible.plan_intervals(
        ctx.fcost[r, hour, :],
        hour * H,
        now * H,
        _latest_end(ctx, deadline),
        work * H,
        _bounds(ctx, pauses),
        running_for=running_for * H,
    )


def _bounds(ctx: Context, pauses: int) -> interruptible.Bounds:
    p = ctx.params
    return interruptible.Bounds(
        max_pauses=max(0, pauses),
        min_run_seconds=p.min_run_h * H,
        overhead_seconds=p.pause_overhead_h * H,
    )


def _latest_end(ctx: Context, deadline: float) -> float:
    """The end (epoch seconds) an interval plan must keep: the deadline less the start-up
    margin (``shifting.latest_start`` of no run), as ``services.runplan`` plans it."""
    return shifting.latest_start(deadline * H, 0.0, ctx.params.startup_seconds)


def gridaware_interruptible(ctx: Context) -> Schedule:
    """Checkpointable jobs: the operator's interruptible plans (pause and resume in place)
    for jobs long enough to pause at all (two shortest runs); shorter ones are planned like
    any deferred job (``core.shifting.plan``, re-planned hourly)."""
    w, cap, sched = ctx.work, Capacity(ctx.regions), Schedule()
    bounds = _bounds(ctx, ctx.params.max_pauses)
    for j in range(w.count):
        if interruptible.plans_pauses(float(w.length[j]) * H, bounds):
            _interruptible_job(ctx, sched, j)
            continue
        planned = _operator_plan(ctx, cap, j)
        r, s = planned if planned is not None else (int(w.home[j]), float(w.arrival[j]))
        cap.take(r, s, s + w.length[j], w.cpus[j])
        sched.add(j, r, s, s + float(w.length[j]))
    return sched


INTERRUPTIBLE = {"gridaware-interruptible": gridaware_interruptible}
CONTRACTS = {"gridaware+contracts": gridaware_contracts}  # run when the scenario has contracts
