"""Interruptible plans: hand-checked cases, brute force on small windows, and the bounds no
plan may break (window, pauses, shortest run, work plus overheads)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gridaware.core.interruptible import (
    Bounds,
    IntervalPlan,
    plan_intervals,
    replanned_resume,
    run_cost,
)

H = 3600.0
TWO_DIPS = np.array([5, 5, 1, 1, 5, 5, 5, 1, 1, 5, 5, 5], dtype=float)


@pytest.mark.parametrize(
    ("bounds", "now", "work", "running_for", "intervals"),
    [
        pytest.param(Bounds(1, H, 0), 0, 4 * H, 0.0, [(2, 4), (7, 9)], id="two-green-windows"),
        pytest.param(Bounds(0, H, 0), 0, 2 * H, 0.0, [(2, 4)], id="no-pauses-one-window"),
        pytest.param(
            Bounds(1, H, 600), 0, 4 * H, 0.0, [(2, 4), (7 - 1 / 6, 9)], id="resume-overhead"
        ),
        pytest.param(Bounds(2, 3 * H, 0), 0, 4 * H, 0.0, None, id="min-run-forbids-splitting"),
        pytest.param(Bounds(1, H / 2, 0), 1800, 1.5 * H, 0.0, [(2.5, 4)], id="partial-hour"),
        pytest.param(Bounds(2, H, 0), 0, 3 * H, H, [(2, 4), (7, 8)], id="running-job-pauses-now"),
        pytest.param(
            Bounds(0, H, 0), 0, 3 * H, H, [(0, 3)], id="running-job-without-pauses-runs-on"
        ),
        # arrives at 7.5 h: whole slots start at 8 h, [8, 9.5) costs 1 + 0.5 x 5 = 3.5; the
        # single run from now, [7.5, 9), costs 0.5 x 1 + 1 = 1.5
        pytest.param(Bounds(0, H, 0), 7.5 * H, 1.5 * H, 0.0, [(7.5, 9)], id="starts-mid-hour"),
        # the same with pauses allowed: no split beats the 1.5 of running now
        pytest.param(Bounds(2, H, 0), 7.5 * H, 1.5 * H, 0.0, [(7.5, 9)], id="mid-hour-no-split"),
    ],
)
def test_plan_cases(
    bounds: Bounds,
    now: float,
    work: float,
    running_for: float,
    intervals: list[tuple[float, float]] | None,
) -> None:
    plan = plan_intervals(TWO_DIPS, 0.0, now, 12 * H, work, bounds, running_for=running_for)
    assert plan is not None
    if intervals is None:  # one run, wherever the single window is cheapest
        assert plan.pauses == 0 and plan.cost == pytest.approx(12.0)
        return
    got = [x / H for span in plan.intervals for x in span]
    assert got == pytest.approx([x for span in intervals for x in span])


@pytest.mark.parametrize(
    ("overhead", "pauses", "cost"),
    [
        # a 6-minute resume: hours 0 and 3 plus 0.1 h at 5 cost 0.7 against 5.1 for two hours in
        # one run; costed in whole slots (3 for 2.1 h) the pause looked dearer (5.2)
        pytest.param(360.0, 1, 0.7, id="short-overhead-pays"),
        pytest.param(1800.0, 1, 2.7, id="half-hour-overhead-pays"),  # 0.1 + 0.1 + 0.5 x 5
        pytest.param(3600.0, 0, 5.1, id="hour-overhead-does-not"),  # 0.1 + 0.1 + 5 > 5.1
    ],
)
def test_pauses_are_compared_at_their_real_run_time(
    overhead: float, pauses: int, cost: float
) -> None:
    score = np.array([0.1, 5, 5, 0.1, 5, 5, 5, 5])
    plan = plan_intervals(score, 0.0, 0.0, score.size * H, 2 * H, Bounds(1, H, overhead))
    assert plan is not None
    assert (plan.pauses, plan.cost) == (pauses, pytest.approx(cost))
    assert plan.run_seconds == pytest.approx(2 * H + pauses * overhead)


def test_no_room_returns_none() -> None:
    assert plan_intervals(TWO_DIPS, 0.0, 0.0, 3 * H, 4 * H, Bounds()) is None


@pytest.mark.parametrize("running_for", [0.0, 1800.0])
@pytest.mark.parametrize("work", [1e-9, 1e-6, 1e-4])
def test_a_float_remainder_of_work_is_done(work: float, running_for: float) -> None:
    """What is left of a run's work after float arithmetic needs no slot (it crashed the
    slot programme with a plan of no runs)."""
    plan = plan_intervals(TWO_DIPS, 0.0, 1800.0, 10 * H, work, Bounds(), running_for=running_for)
    assert plan is not None and plan.intervals == ()


def _brute(cost: np.ndarray, work_slots: int, bounds: Bounds) -> float:
    """Cheapest set of whole slots in runs meeting the bounds (overhead in whole slots)."""
    m = max(1, min(math.ceil(bounds.min_run_seconds / H), work_slots))
    ov = round(bounds.overhead_seconds / H)
    best = math.inf
    for mask in itertools.product((0, 1), repeat=cost.size):
        runs = [len(list(g)) for k, g in itertools.groupby(mask) if k]
        if not runs or len(runs) > bounds.max_pauses + 1 or min(runs) < m:
            continue
        if sum(runs) != work_slots + ov * (len(runs) - 1):
            continue
        best = min(best, float(np.dot(mask, cost)))
    return best


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 9), min_size=3, max_size=9),
    st.integers(1, 5),
    st.integers(0, 3),
    st.integers(1, 3),
    st.integers(0, 1),
)
def test_plan_equals_brute_force(
    values: list[int], work: int, pauses: int, min_run: int, overhead: int
) -> None:
    cost = np.array(values, dtype=float)
    bounds = Bounds(pauses, min_run * H, overhead * H)
    plan = plan_intervals(cost, 0.0, 0.0, cost.size * H, work * H, bounds)
    brute = _brute(cost, work, bounds)
    if plan is None:
        assert math.isinf(brute)
    else:
        assert plan.cost == pytest.approx(brute)


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.floats(-50, 900), min_size=4, max_size=60),
    st.floats(0, 3 * H),
    st.floats(0.05 * H, 20 * H),
    st.integers(0, 5),
    st.floats(0, 3 * H),
    st.floats(0, 0.5 * H),
    st.floats(0, 2 * H),
)
# negative costs tempted the plan into a run the work does not need (it had a negative length)
@example([0.0, -1.0, 0.0, -1.0], 0.0, 180.0, 2, 0.0, 1711.0, 1.0)
@example([0.0, 1.0, 0.0, 0.0, 0.0], 0.0, 9001.0, 1, 7201.0, 1800.0, 3601.0)  # runs on 1 h
def test_plans_keep_their_bounds(
    values: list[float],
    now: float,
    work: float,
    pauses: int,
    min_run: float,
    overhead: float,
    running_for: float,
) -> None:
    score = np.array(values)
    deadline = score.size * H
    bounds = Bounds(pauses, min_run, overhead)
    plan = plan_intervals(score, 0.0, now, deadline, work, bounds, running_for=running_for)
    if plan is None:
        return
    spans = plan.intervals
    assert spans and spans[0][0] >= now - 1e-6 and spans[-1][1] <= deadline + 1e-6
    assert all(e > s for s, e in spans)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(spans))  # a real pause between runs
    # a running job the plan stops now resumes later: that resume redoes the overhead too
    stops_now = running_for > 0 and spans[0][0] > now + 1e-6
    assert plan.pauses + stops_now <= pauses
    resumes = plan.pauses + stops_now
    assert plan.run_seconds == pytest.approx(work + overhead * resumes, abs=1e-3)
    if running_for > 0:
        assert spans[0][0] == pytest.approx(now) or plan.pauses <= pauses
    else:  # never dearer than running at once without a pause (when that fits)
        at_once = run_cost(score, 0.0, ((now, now + work),))
        assert now + work > deadline or plan.cost <= at_once + 1e-6 * (1 + abs(at_once))
    if plan.pauses:  # (a running job's first span continues the run it is in)
        lengths = [e - s + (running_for if i == 0 else 0.0) for i, (s, e) in enumerate(spans)]
        assert all(n >= min(min_run, work) - H for n in lengths)


@pytest.mark.parametrize(
    ("plan", "now", "held", "expected"),
    [
        pytest.param(IntervalPlan(((5 * H, 7 * H),), 1.0), H, 3 * H, 5 * H, id="plan-moves-it"),
        pytest.param(IntervalPlan(((0.0, 2 * H),), 1.0), H, 3 * H, H, id="plan-says-now"),
        pytest.param(None, H, 3 * H, None, id="no-plan-held-still-fits"),
        pytest.param(None, H, 5 * H, H, id="no-plan-held-too-late-resumes-now"),
    ],
)
def test_replanned_resume(
    plan: IntervalPlan | None, now: float, held: float, expected: float | None
) -> None:
    # two hours of work left, to be done by hour 6
    assert replanned_resume(plan, now, held, 2 * H, 6 * H) == expected
