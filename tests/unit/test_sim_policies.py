"""The simulator's perfect-foresight bounds per job (issue 12: the temporal bench reports the
shares of the interruptible bound per half of the trace, so the bound must split by job)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridaware.core import planning
from gridaware.sim import policies
from gridaware.sim.engine import WATTS_PER_CPU, Context, Params, Schedule
from gridaware.sim.report import capacities
from gridaware.sim.scenario import Forecasts, Regions, Workload

HORIZON = 48


def _context(carbon: np.ndarray, jobs: list[tuple[float, float, int]], slack: float) -> Context:
    r, t = carbon.shape
    regions = Regions([f"Z{i}" for i in range(r)], carbon, carbon * 0 + 50, ["x"] * r, np.ones(r))
    a = np.array([j[0] for j in jobs])
    ln = np.array([j[1] for j in jobs])
    cpus = np.array([float(j[2]) for j in jobs])
    work = Workload(a, ln, cpus, np.arange(a.size) % r, a + ln + slack)
    regions.capacity = capacities(regions, work, 0.5)
    ext = np.concatenate([carbon, carbon[:, :HORIZON]], axis=1)
    future = np.lib.stride_tricks.sliding_window_view(ext, HORIZON, axis=1)[:, :t]
    return Context(
        regions, work, Forecasts(np.array(future), "perfect"), Params(slack=slack, horizon=HORIZON)
    )


def _per_job_kg(ctx: Context, sched: Schedule) -> np.ndarray:
    reg, w = ctx.regions, ctx.work
    job = np.array(sched.job, dtype=np.int64)
    r = np.array(sched.region, dtype=np.int64)
    g = planning.integrate(
        planning.prefix(reg.carbon), reg.carbon, np.array(sched.start), np.array(sched.end), rows=r
    )
    out = np.zeros(w.count)
    np.add.at(out, job, g * w.cpus[job] * WATTS_PER_CPU / 1e6 * reg.pue[r])
    return out


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 2),
    st.lists(
        st.tuples(st.floats(0, 30), st.floats(0.2, 6), st.integers(1, 4)), min_size=1, max_size=6
    ),
    st.integers(0, 8),
    st.randoms(use_true_random=False),
)
def test_interruptible_bound_splits_by_job_and_bounds_each_job(
    regions: int, jobs: list[tuple[float, float, int]], slack: int, rnd: object
) -> None:
    rng = np.random.default_rng(rnd.getrandbits(32))  # type: ignore[attr-defined]
    ctx = _context(rng.uniform(50, 500, size=(regions, 120)), jobs, float(slack))
    per_job = policies.oracle_interruptible_bound_jobs(ctx)
    assert per_job.shape == (len(jobs),)
    assert np.isclose(per_job.sum(), policies.oracle_interruptible_bound(ctx))
    # no schedule of a job (at once, the non-interruptible oracle's, the interruptible
    # planner's with perfect forecasts) beats its bound
    schedules = {name: policies.POLICIES[name](ctx) for name in ("now", "oracle")}
    schedules["gridaware-interruptible"] = policies.gridaware_interruptible(ctx)
    for name, sched in schedules.items():
        kg = _per_job_kg(ctx, sched)
        assert np.all(per_job <= kg + 1e-9 * (1 + kg)), name


MARGIN_H = Params().startup_seconds / 3600  # every policy's start-up margin before a deadline


@pytest.mark.parametrize(
    ("green", "arrival", "length", "slack", "grams"),
    [
        # the green hour 0 is half gone at arrival: half an hour of it, then hour 1
        pytest.param({0: 10, 1: 20}, 0.5, 1.0, 3.0, 0.5 * 10 + 0.5 * 20, id="arrival-hour-in-part"),
        pytest.param({0: 10, 1: 20}, 0.0, 1.0, 3.0, 10.0, id="whole-arrival-hour"),
        pytest.param({3: 5}, 0.0, 1.0, 1.0, 400.0, id="green-hour-after-the-deadline"),
        # deadline 4.0 less the start-up margin: the green hour 3 only in part
        pytest.param(
            {3: 5}, 2.0, 1.0, 1.0, (1 - MARGIN_H) * 5 + MARGIN_H * 400, id="margin-cuts-hour-3"
        ),
        # no slack: the run as it arrives, the margin waived (the deadline wins)
        pytest.param({1: 20}, 0.5, 1.0, 0.0, 0.5 * 400 + 0.5 * 20, id="no-slack"),
    ],
)
def test_interruptible_bound_counts_only_the_time_a_job_can_use(
    green: dict[int, float], arrival: float, length: float, slack: float, grams: float
) -> None:
    carbon = np.full((1, 24), 400.0)
    for hour, value in green.items():
        carbon[0, hour] = value
    ctx = _context(carbon, [(arrival, length, 1)], slack)
    got = policies.oracle_interruptible_bound_jobs(ctx)[0] * 1e6 / WATTS_PER_CPU
    assert got == pytest.approx(grams)


def _forecast_rows(first: np.ndarray, later: np.ndarray, t: int) -> np.ndarray:
    """(1, t, HORIZON) forecasts: the one issued at hour 0 is ``first``, every later one
    ``later`` (both hourly values by absolute hour), each row starting at its issue hour."""
    rows = np.empty((1, t, HORIZON))
    for hour in range(t):
        values = first if hour == 0 else later
        rows[0, hour] = np.concatenate([values, values[:HORIZON]])[hour : hour + HORIZON]
    return rows


GREEN_NOW = np.where(np.arange(120) < 2, 100.0, 400.0)  # hours 0 and 1 green, then dear
GREEN_AT_5 = np.select(  # hour 1 dear after all, hours 5 and 6 green
    [np.arange(120) < 1, np.arange(120) == 5, np.arange(120) == 6], [100.0, 50.0, 60.0], 400.0
)


@pytest.mark.parametrize(
    ("later", "segments"),
    [
        # the forecast issued at hour 1 (the job running since 0) shows hour 1 dear and hours
        # 5-6 greener: the operator's run plan, re-planned while the job runs, pauses it at
        # hour 1 and resumes it at 5 (the 0.1 h overhead included); the plan of hour 0 alone
        # ran it through
        pytest.param(GREEN_AT_5, [(0.0, 1.0), (5.0, 6.1)], id="revised-forecast-pauses"),
        pytest.param(GREEN_NOW, [(0.0, 2.0)], id="unchanged-forecast-runs-on"),
    ],
)
def test_a_running_interruptible_job_is_replanned_hourly(
    later: np.ndarray, segments: list[tuple[float, float]]
) -> None:
    ctx = _context(GREEN_NOW[None, :], [(0.0, 2.0, 1)], slack=20.0)
    ctx = Context(
        ctx.regions,
        ctx.work,
        Forecasts(_forecast_rows(GREEN_NOW, later, 120), "revised"),
        ctx.params,
    )
    sched = policies.gridaware_interruptible(ctx)
    got = sorted(zip(sched.start, sched.end, strict=True))
    assert np.allclose(got, segments)


def test_a_waiting_interruptible_job_starts_when_its_planned_start_comes() -> None:
    """Forecasts issued at hours 0 and 1 put the green hours at 2-3; from hour 2 on they put
    them at 5-6. The job deferred to hour 2 starts then (as the operator does when its held
    start comes), runs to the next re-plan and is paused there for the rest at 5; re-planned
    at hour 2 instead, it would have waited for 5."""
    early = np.where((np.arange(120) == 2) | (np.arange(120) == 3), 50.0, 400.0)
    late = np.where((np.arange(120) == 5) | (np.arange(120) == 6), 50.0, 400.0)
    rows = np.empty((1, 120, HORIZON))
    for hour in range(120):
        values = early if hour < 2 else late
        rows[0, hour] = np.concatenate([values, values[:HORIZON]])[hour : hour + HORIZON]
    ctx = _context(late[None, :], [(0.0, 2.0, 1)], slack=20.0)
    ctx = Context(ctx.regions, ctx.work, Forecasts(rows, "revised"), ctx.params)
    sched = policies.gridaware_interruptible(ctx)
    (s1, e1), (s2, e2) = sorted(zip(sched.start, sched.end, strict=True))
    assert (s1, e1) == pytest.approx((2.0, 3.0))
    # the hour left and the resume's 0.1 h, all in the green hours 5-6 (either end trimmed)
    assert s2 >= 5.0 - 1e-9 and e2 <= 7.0 + 1e-9 and e2 - s2 == pytest.approx(1.1)
