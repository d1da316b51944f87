"""The token bucket that limits Normal Events."""

from __future__ import annotations

import kubernetes.client
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.core.ratelimit import TokenBucket
from gridaware.k8s.gateway import EventRecorder


@pytest.mark.parametrize(
    ("rate", "burst", "times", "taken"),
    [
        pytest.param(1.0, 3, [0, 0, 0, 0], [True, True, True, False], id="burst-then-empty"),
        pytest.param(1.0, 3, [0, 0, 0, 0, 1.0], [True, True, True, False, True], id="refills"),
        pytest.param(2.0, 1, [0, 0.2, 0.5, 0.6], [True, False, True, False], id="rate"),
        pytest.param(1.0, 2, [0, 0, 100, 100, 100], [True, True, True, True, False], id="cap"),
        pytest.param(1.0, 1, [5, 4, 5, 6], [True, False, False, True], id="clock-backwards"),
        pytest.param(0.0, 2, [0, 10, 20], [True, True, False], id="no-refill"),
    ],
)
def test_take(rate: float, burst: int, times: list[float], taken: list[bool]) -> None:
    bucket = TokenBucket(rate, burst)
    assert [bucket.take(t) for t in times] == taken


@given(
    rate=st.floats(0, 100),
    burst=st.integers(1, 50),
    steps=st.lists(st.floats(0, 10), max_size=200),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket, now, taken = TokenBucket(rate, burst), 0.0, 0
    for step in steps:
        now += step
        taken += bucket.take(now)
    assert taken <= burst + rate * now + 1e-9


def test_the_recorder_limits_normal_events_only() -> None:
    now = [0.0]
    rec = EventRecorder(
        kubernetes.client.ApiClient(), normal_rate=1.0, normal_burst=2, clock=lambda: now[0]
    )
    assert [rec._admit("Placed") for _ in range(3)] == [True, True, False]
    assert rec._admit("Paused")  # a burst of one reason leaves the others alone
    now[0] = 1.0
    assert rec._admit("Placed")
    assert not rec._admit("Placed")
