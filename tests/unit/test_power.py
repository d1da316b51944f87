"""The fleet power model: kW now and planned per hour, per cluster and zone."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.api.v1alpha1 import GridAwareJobSpec
from gridaware.core import power
from gridaware.core.power import JobLoad, LoadState
from tests.fakes import job_spec

T = 1_700_000_000.0 // 3600 * 3600  # an hour boundary


def load(key: str, kw: float, state: LoadState, start: float, remaining: float | None) -> JobLoad:
    zone = "DE-LU" if key.startswith("de") else "GB"
    return JobLoad(key, key.split("-", maxsplit=1)[0], zone, kw, state, start, remaining)


@pytest.mark.parametrize(
    ("spec", "pue", "kw"),
    [
        pytest.param(job_spec(cpu="4"), 1.0, 0.04, id="default-10w-per-cpu"),
        pytest.param(job_spec(cpu="4"), 1.5, 0.06, id="pue-multiplies"),
        pytest.param(
            job_spec(cpu="2", energy={"wattsPerReplica": 500}), 1.2, 0.6, id="per-replica-model"
        ),
        pytest.param(job_spec(cpu="2", energy={"wattsPerCpu": 50}), 1.0, 0.1, id="per-cpu-model"),
    ],
)
def test_job_kw(spec: dict[str, object], pue: float, kw: float) -> None:
    assert power.job_kw(GridAwareJobSpec.model_validate(spec), pue) == pytest.approx(kw)


@pytest.mark.parametrize(
    ("job", "now", "expected"),
    [
        pytest.param(
            load("de-a", 10, LoadState.RUNNING, T - 600, 5400), T, [10, 5, 0], id="running-ends"
        ),
        pytest.param(
            load("de-a", 10, LoadState.RUNNING, T, None), T + 1800, [5, 10, 10], id="unknown-end"
        ),
        pytest.param(
            load("de-a", 4, LoadState.DEFERRED, T + 5400, 3600), T, [0, 2, 2], id="deferred"
        ),
        pytest.param(
            load("de-a", 4, LoadState.DEFERRED, T - 60, 1800), T, [2, 0, 0], id="overdue-deferred"
        ),
        pytest.param(
            load("de-a", 6, LoadState.PAUSED, T + 3600, 7200), T, [0, 6, 6], id="paused-resumes"
        ),
    ],
)
def test_profile(job: JobLoad, now: float, expected: list[float]) -> None:
    assert power.profile([job], T, 3, now) == pytest.approx(np.array(expected, dtype=float))


def test_by_cluster_and_zone() -> None:
    loads = [
        load("de-a", 10, LoadState.RUNNING, T, None),
        load("de-b", 5, LoadState.PAUSED, T + 3600, 3600),
        load("gb-c", 2, LoadState.RUNNING, T, 1800),
    ]
    zones = power.by(loads, "zone", T)
    assert zones["DE-LU"].now_kw == 10 and zones["DE-LU"].paused == 1
    assert zones["DE-LU"].planned_kw[:3] == pytest.approx([10, 15, 10])
    assert zones["GB"].planned_kw[:2] == pytest.approx([1, 0])
    assert set(power.by(loads, "cluster", T)) == {"de", "gb"}


def test_forecast_error() -> None:
    mae, share = power.forecast_error(np.array([10.0, 12.0]), np.array([10.0, 8.0]))
    assert (mae, share) == pytest.approx((2.0, 2.0 / 9.0))


@given(
    st.lists(
        st.tuples(
            st.floats(0, 100),
            st.sampled_from(list(LoadState)),
            st.floats(-7200, 7200),
            st.floats(1, 20000),
        ),
        max_size=20,
    ),
    st.floats(0, 3599),
)
def test_planned_energy_is_the_work_left(
    jobs: list[tuple[float, LoadState, float, float]], offset: float
) -> None:
    """Energy in the plan equals kW x remaining work for every job that ends in the horizon."""
    now = T + offset
    loads = [load(f"de-{i}", kw, s, now + d, r) for i, (kw, s, d, r) in enumerate(jobs)]
    planned = power.profile(loads, T, 10, now)
    assert planned.min(initial=0.0) >= 0
    expected = sum(j.kw * j.remaining / 3600 for j in loads if j.remaining)
    assert planned.sum() == pytest.approx(expected, rel=1e-9, abs=1e-6)
