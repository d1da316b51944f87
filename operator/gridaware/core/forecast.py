"""The built-in forecaster for zones whose provider offers no forecast.

Grid signals are dominated by the daily cycle, so the forecast is the average daily profile of
the last days (seasonal naive over several days, which damps one-off weather), shifted towards
the current level: the gap between the last observed value and the profile decays with the
lead time. The simulator measures its error on real data (issue: simulator).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

DAY = 24


def seasonal_blend(
    history: npt.NDArray[np.float64], horizon: int, days: int = 7, level_half_life: float = 6.0
) -> npt.NDArray[np.float64]:
    """Forecast ``horizon`` hourly values following ``history`` (hourly, oldest first).

    NaNs in the history are ignored; with less than a day of history the last value (or the
    mean) is repeated.
    """
    if horizon <= 0:
        return np.empty(0)
    h = np.asarray(history, dtype=np.float64)
    finite = h[np.isfinite(h)]
    if finite.size == 0:
        raise ValueError("cannot forecast from a history without values")
    if h.size < DAY:
        return np.full(horizon, finite[-1])
    n_days = min(days, h.size // DAY)
    recent = h[-n_days * DAY :].reshape(n_days, DAY)
    ok = np.isfinite(recent)
    counts = ok.sum(axis=0)
    sums = np.where(ok, recent, 0.0).sum(axis=0)
    profile = np.where(counts > 0, sums / np.maximum(counts, 1), finite.mean())
    # profile[k] is the value k hours after the start of the window; the window ends at "now",
    # so lead time j (1-based) falls on profile index (j - 1) % 24
    lead = np.arange(1, horizon + 1)
    base = profile[(lead - 1) % DAY]
    last_obs = h[np.isfinite(h)][-1]
    gap = last_obs - profile[-1]
    decay = 0.5 ** (lead / level_half_life)
    return np.asarray(base + gap * decay, dtype=np.float64)


def seasonal_blend_all(
    series: npt.NDArray[np.float64], horizon: int, days: int = 7, level_half_life: float = 6.0
) -> npt.NDArray[np.float64]:
    """``seasonal_blend`` issued at every hour t of ``series``: row t is the forecast made
    from ``series[:t]`` (what was known at the start of hour t) for hours t .. t+horizon-1.
    Row 0, with no history at all, repeats the first value."""
    s = np.asarray(series, dtype=np.float64)
    out = np.empty((s.size, horizon))
    out[0] = s[0]
    for t in range(1, s.size):
        out[t] = seasonal_blend(s[max(0, t - days * DAY) : t], horizon, days, level_half_life)
    return out
