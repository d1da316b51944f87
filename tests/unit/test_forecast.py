"""The built-in forecaster: table-driven cases on shapes whose right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.core.forecast import (
    COMBINE,
    blend_share,
    min_history,
    regression,
    regression_all,
    seasonal_blend,
)

DAY = np.array([100.0] * 8 + [50.0] * 8 + [150.0] * 8)


@pytest.mark.parametrize(
    ("history", "horizon", "expected"),
    [
        pytest.param(np.full(72, 300.0), 5, np.full(5, 300.0), id="constant"),
        pytest.param(np.tile(DAY, 7), 24, DAY, id="pure-daily-cycle"),
        pytest.param(np.array([1.0, 2.0, 3.0]), 3, np.array([3.0, 3.0, 3.0]), id="short"),
        pytest.param(np.tile(DAY, 3)[:-8], 8, np.full(8, 150.0), id="mid-day-start"),
    ],
)
def test_seasonal_blend_cases(history: np.ndarray, horizon: int, expected: np.ndarray) -> None:
    assert np.allclose(seasonal_blend(history, horizon), expected)


def test_level_shift_decays_towards_the_profile() -> None:
    plain = seasonal_blend(np.tile(DAY, 7), 48, level_half_life=6)
    history = np.tile(DAY, 7)
    history[-1] += 60  # the last hour came in higher than usual
    gap = seasonal_blend(history, 48, level_half_life=6) - plain
    assert gap[0] > 25  # the recent level carries into the next hours
    assert abs(gap[46]) < 1  # and has faded two days out
    assert np.all(np.diff(gap[:23]) <= 1e-9)


def test_nan_gaps_are_ignored() -> None:
    history = np.tile(DAY, 7)
    history[5::24] = np.nan
    assert np.all(np.isfinite(seasonal_blend(history, 24)))


@given(st.lists(st.floats(0, 2000), min_size=1, max_size=400), st.integers(1, 96))
def test_forecast_stays_within_the_observed_range(values: list[float], horizon: int) -> None:
    fc = seasonal_blend(np.array(values), horizon)
    assert fc.shape == (horizon,)
    lo, hi = min(values), max(values)
    span = hi - lo
    assert np.all(fc >= lo - span - 1e-6) and np.all(fc <= hi + span + 1e-6)


@pytest.mark.parametrize(
    ("history", "horizon", "expected"),
    [
        pytest.param(np.full(40 * 24, 300.0), 30, np.full(30, 300.0), id="constant"),
        pytest.param(np.tile(DAY, 40), 48, np.tile(DAY, 2), id="pure-daily-cycle"),
        pytest.param(np.tile(DAY, 40)[:-5], 24, np.roll(DAY, 5), id="mid-day-origin"),
    ],
)
def test_regression_cases(history: np.ndarray, horizon: int, expected: np.ndarray) -> None:
    assert np.allclose(regression(history, horizon), expected, atol=1e-3)


def test_regression_falls_back_to_the_blend_on_short_history() -> None:
    history = np.tile(DAY, 9)
    assert len(history) < min_history(48)
    assert np.allclose(regression(history, 48), seasonal_blend(history, 48))


def test_regression_all_matches_one_at_a_time() -> None:
    rng = np.random.default_rng(2)
    n = 45 * 24
    series = 300 + 100 * np.sin(np.arange(n) / 24 * 2 * np.pi) + rng.normal(0, 15, n).cumsum() / 5
    every = regression_all(series, 30, refit_hours=1)
    for t in (1, 100, min_history(30) - 1, min_history(30), 900, n - 1):
        assert np.allclose(every[t], regression(series[:t], 30)), t


@given(st.lists(st.floats(0, 2000), min_size=1, max_size=1200), st.integers(1, 72))
def test_regression_stays_within_a_widened_observed_range(
    values: list[float], horizon: int
) -> None:
    fc = regression(np.array(values), horizon)
    assert fc.shape == (horizon,) and np.all(np.isfinite(fc))
    lo, hi = min(values), max(values)
    span = hi - lo
    assert np.all(fc >= lo - span - 1e-6) and np.all(fc <= hi + span + 1e-6)


@pytest.mark.parametrize(
    "combined",
    [
        pytest.param(COMBINE, id="built-in-share"),
        pytest.param(0.0, id="regression-alone"),
        pytest.param(1.0, id="blend-far-out"),
    ],
)
def test_blend_share_grows_with_the_lead_up_to_the_combined_share(combined: float) -> None:
    share = blend_share(96, combined)
    assert share.shape == (96,)
    assert np.all(np.diff(share) >= 0) and np.all(share >= 0)
    assert share[0] <= combined / 4  # the next hour is the regression's
    assert 0.99 * combined <= share[-1] <= combined  # four days out: the combined share


def _wandering(days: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = days * 24
    return 300 + 100 * np.sin(np.arange(n) / 24 * 2 * np.pi) + rng.normal(0, 15, n).cumsum() / 5


@pytest.mark.parametrize(
    ("days", "horizon"),
    [
        pytest.param(40, 48, id="two-days"),
        pytest.param(36, 96, id="beyond-the-fitted-leads"),
        pytest.param(30, 6, id="short-horizon"),
    ],
)
def test_built_in_forecast_is_the_regression_combined_with_the_blend(
    days: int, horizon: int
) -> None:
    history = _wandering(days, days)
    alone = regression(history, horizon, combined=0.0)
    blend = seasonal_blend(history, horizon)
    share = blend_share(horizon)
    assert not np.allclose(alone, blend)  # else the test could not tell them apart
    assert np.allclose(regression(history, horizon), (1 - share) * alone + share * blend)


def test_regression_all_combines_like_regression() -> None:
    series = _wandering(45, 7)
    for combined in (0.0, COMBINE):
        every = regression_all(series, 30, refit_hours=1, combined=combined)
        for t in (min_history(30), 900, series.size - 1):
            assert np.allclose(every[t], regression(series[:t], 30, combined=combined)), t
