"""Power budgets: standing, hourly (local time, across midnight) and scheduled caps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.api.v1alpha1 import PowerBudget, parse_time
from gridaware.core import budget

DAY = parse_time("2023-07-10T00:00:00Z")
BUDGET = PowerBudget.model_validate(
    {
        "capKw": 100,
        "timeZone": "Europe/Berlin",
        "hourly": [
            {"startHour": 17, "endHour": 20, "capKw": 60},
            {"startHour": 22, "endHour": 6, "capKw": 80},
        ],
        "schedule": [{"start": "2023-07-10T12:00:00Z", "end": "2023-07-10T13:00:00Z", "capKw": 30}],
    }
)


@pytest.mark.parametrize(
    ("when", "cap"),
    [
        pytest.param("2023-07-10T08:00:00Z", 100, id="standing"),
        pytest.param("2023-07-10T15:00:00Z", 60, id="17h-berlin-is-15h-utc"),
        pytest.param("2023-07-10T17:59:59Z", 60, id="last-second-of-hourly"),
        pytest.param("2023-07-10T18:00:00Z", 100, id="hourly-end-exclusive"),
        pytest.param("2023-07-10T23:30:00Z", 80, id="wraps-past-midnight"),
        pytest.param("2023-07-10T12:30:00Z", 30, id="schedule-lowest-wins"),
        pytest.param("2023-07-10T13:00:00Z", 100, id="schedule-end-exclusive"),
    ],
)
def test_cap_at(when: str, cap: float) -> None:
    assert budget.cap_at(BUDGET, parse_time(when)) == cap


@pytest.mark.parametrize(
    ("b", "drawn", "add", "ok", "excess"),
    [
        pytest.param(None, 1e6, 1e6, True, 0.0, id="no-budget"),
        pytest.param(PowerBudget(capKw=10), 6, 4, True, 0.0, id="exactly-at-cap"),
        pytest.param(PowerBudget(capKw=10), 6, 4.1, False, 0.0, id="over-by-a-little"),
        pytest.param(PowerBudget(capKw=10), 12, 0, False, 2.0, id="already-over"),
        pytest.param(PowerBudget(), 50, 50, True, 0.0, id="empty-budget"),
    ],
)
def test_admits_and_excess(
    b: PowerBudget | None, drawn: float, add: float, ok: bool, excess: float
) -> None:
    assert budget.admits(b, drawn, add, DAY) is ok
    assert budget.excess(b, drawn, DAY) == pytest.approx(excess)


def test_next_change() -> None:
    t = parse_time("2023-07-10T14:00:30Z")
    assert budget.next_change(BUDGET, t) == parse_time("2023-07-10T15:00:00Z")
    assert budget.next_change(PowerBudget(capKw=5), t) is None


@given(
    st.lists(st.tuples(st.integers(0, 23), st.integers(1, 24), st.floats(0, 500)), max_size=4),
    st.floats(0, 500),
    st.lists(st.floats(0, 50), max_size=30),
    st.integers(0, 86400 * 2),
)
def test_admitting_never_exceeds_the_budget(
    hourly: list[tuple[int, int, float]], cap: float, adds: list[float], offset: int
) -> None:
    b = PowerBudget.model_validate(
        {
            "capKw": cap,
            "hourly": [{"startHour": s, "endHour": e, "capKw": c} for s, e, c in hourly if s != e],
        }
    )
    t, drawn = DAY + offset, 0.0
    for add in adds:
        if budget.admits(b, drawn, add, t):
            drawn += add
    limit = budget.cap_at(b, t)
    assert limit is not None and drawn <= limit + 1e-6
    assert budget.headroom(b, drawn, t) == pytest.approx(max(0.0, limit - drawn))
