"""Ramp limits: in any 60 s window a zone's changes sum to at most the limit."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gridaware.core import ramp
from gridaware.core.ramp import RampLimiter, ZoneRamp


@pytest.mark.parametrize(
    ("steps", "admitted"),
    [
        pytest.param([(0, 4), (1, 4), (2, 4)], [True, True, False], id="third-step-waits"),
        pytest.param([(0, 4), (1, -4), (2, 2)], [True, True, True], id="pauses-count-too"),
        pytest.param([(0, 8), (60, 8)], [True, True], id="window-slides"),
        pytest.param([(0, 8), (59.9, 3)], [True, False], id="still-inside-window"),
        pytest.param([(0, 25), (10, 1)], [True, False], id="oversized-step-alone"),
        pytest.param([(0, 1), (1, 25)], [True, False], id="oversized-needs-empty-window"),
    ],
)
def test_zone_ramp(steps: list[tuple[float, float]], admitted: list[bool]) -> None:
    r = ZoneRamp(10.0)
    assert [r.admit(kw, t) for t, kw in steps] == admitted


def test_limiter_zones_without_limit_admit_everything() -> None:
    lim = RampLimiter()
    lim.set_limit("DE-LU", 5)
    assert lim.admit("GB", 1e6, 0) and lim.room("GB", 0) == float("inf")
    assert lim.admit("DE-LU", 5, 0) and not lim.admit("DE-LU", 1, 1)
    lim.set_limit("DE-LU", None)
    assert lim.admit("DE-LU", 100, 2)


def test_spread_schedule() -> None:
    assert ramp.spread([4, 4, 4, 4], 10, 100) == [100, 100, 160, 160]
    assert ramp.spread([1, 2], None, 5) == [5, 5]


@given(
    st.floats(1, 100),
    st.lists(st.tuples(st.floats(0, 30), st.floats(-150, 150)), max_size=60),
)
@example(1.0, [(0.0, 0.0), (0.0, 2.0)])  # a zero step next to an oversized one
@example(1.0, [(0.0, 2.0), (29.999999999999996, 0.0), (29.999999999999996, 1.0)])  # 60 s - ulp
def test_a_ramp_limit_is_never_exceeded(limit: float, steps: list[tuple[float, float]]) -> None:
    r, t = ZoneRamp(limit), 0.0
    times: list[float] = []
    kws: list[float] = []
    for gap, kw in steps:
        t += gap
        if r.admit(kw, t):
            times.append(t)
            kws.append(kw)
    biggest = max((abs(k) for k in kws), default=0.0)
    assert ramp.max_window_change(times, kws) <= max(limit, biggest) + 1e-6
    # only an oversized step may stand alone above the limit
    for i, kw in enumerate(kws):
        if abs(kw) > limit:
            # (a zero step changes no load: it may stand anywhere)
            others = [
                k
                for j, k in enumerate(kws)
                if j != i and k and abs(times[j] - times[i]) < 60 - 1e-6
            ]
            assert others == []


@given(st.floats(1, 100), st.lists(st.floats(-150, 150), max_size=40), st.floats(0, 1e6))
def test_spread_respects_the_limit(limit: float, deltas: list[float], now: float) -> None:
    times = ramp.spread(deltas, limit, now)
    assert times == sorted(times) and all(t >= now for t in times)
    biggest = max((abs(d) for d in deltas), default=0.0)
    assert ramp.max_window_change(times, deltas) <= max(limit, biggest) + 1e-6
