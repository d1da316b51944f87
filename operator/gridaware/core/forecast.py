"""The built-in forecaster for zones whose provider offers no forecast.

Grid signals are dominated by the daily cycle plus weather deviations that fade over hours to
days. ``regression`` (the built-in forecaster) learns, per zone and per lead time, how to
weigh the last value, the same hour yesterday, the weekly profile and today's level, by least
squares on the zone's own last four weeks, and combines that with ``seasonal_blend`` (the
former built-in, and the fallback while there is too little history: the weekly profile with
the current gap decaying at a fixed half-life), the blend's share growing with the lead time.
Both read only the past. ``bench/forecast.py`` measures them against persistence on every
zone of the shared data (rolling origin).

Why combine: the blend lies in the span of the regression's features (the profile, and the
last value against the profile at the last hour), so mixing them shrinks the fitted weights
towards the blend's fixed ones. Four weeks of origins make the far leads' weights noisy (their
errors are large and autocorrelated), and the shrinkage pays there. The share was chosen on
January-June 2023 and checked on July-December (figures in bench/forecast.py's docstring).
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


# --- the regression forecaster ---------------------------------------------------------------
#
# Per lead time h (1 .. FIT_LEADS hours), the value h hours ahead is a linear combination of
# what is known at the forecast origin: the last value, the most recent value at the same hour
# of day, the mean of the 7 most recent values at that hour of day (the weekly profile), the
# mean of the last 24 hours (today's level) and a constant. The weights are fitted by least
# squares on the zone's own recent past (the last ``FIT_DAYS`` days of origins, every one of
# them with its outcome already observed), so each zone learns how fast its weather deviations
# fade and how much its daily shape is worth, and the fit follows the seasons. It needs no
# library beyond numpy, a few milliseconds and a few hundred KB per call.

FIT_LEADS = 48  # leads beyond this reuse the weights of the last fitted lead
# the blend's share of the forecast at lead h: COMBINE * (1 - 0.5 ** (h / COMBINE_HALF_LIFE)),
# chosen on the first half of 2023 (bench/forecast.py; a 3 h half-life did as well far out
# but cost 0.1 g/kWh at 1 and 6 h): 0.02 at 1 h, 0.2 at 12 h, 0.3 at 24 h, 0.4 far out
COMBINE = 0.4
COMBINE_HALF_LIFE = 12.0
FIT_DAYS = 28  # days of forecast origins the weights are fitted on
N_FEATURES = 6
LOOKBACK = 8 * DAY  # hours of history the features of one origin read


def min_history(horizon: int, fit_days: int = FIT_DAYS) -> int:
    """Hours of history ``regression`` needs to fit ``horizon`` leads over a week of origins
    at least (below it, it falls back to ``seasonal_blend``)."""
    return LOOKBACK + min(horizon, FIT_LEADS) + min(fit_days, 7) * DAY


def _filled(history: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """NaN gaps linearly interpolated (edges held), so features never read a hole."""
    h = np.asarray(history, dtype=np.float64)
    bad = ~np.isfinite(h)
    if not bad.any():
        return h
    idx = np.arange(h.size)
    out = h.copy()
    out[bad] = np.interp(idx[bad], idx[~bad], h[~bad])
    return out


def _features(
    y: npt.NDArray[np.float64],
    cum: npt.NDArray[np.float64],
    origins: npt.NDArray[np.int64],
    lead: int,
) -> npt.NDArray[np.float64]:
    """(len(origins), N_FEATURES) features for predicting y[o + lead - 1] from y[:o]."""
    back = (-lead) % DAY + 1  # hours from the origin back to the latest same-hour value
    same = y[origins - back]
    prof = (y[origins[:, None] - back - DAY * np.arange(7)]).mean(axis=1)
    last = y[origins - 1]
    prof_last = (y[origins[:, None] - 1 - DAY * np.arange(1, 8)]).mean(axis=1)
    level = (cum[origins] - cum[origins - DAY]) / DAY
    return np.stack([last, same, prof, prof_last, level, np.ones(origins.size)], axis=1)


def fit_weights(
    history: npt.NDArray[np.float64], leads: int, fit_days: int = FIT_DAYS
) -> npt.NDArray[np.float64] | None:
    """(leads, N_FEATURES) least-squares weights per lead fitted on the last ``fit_days`` days
    of origins of ``history`` (hourly, oldest first, gaps filled); None when too short."""
    y = _filled(history)
    cum = np.concatenate([[0.0], np.cumsum(y)])
    n = y.size
    weights = np.empty((leads, N_FEATURES))
    for lead in range(1, leads + 1):
        last_origin = n - lead + 1  # its target y[n - 1] is the last observation
        first_origin = max(LOOKBACK + 1, last_origin - fit_days * DAY)
        if last_origin - first_origin < 2 * DAY:
            return None
        origins = np.arange(first_origin, last_origin, dtype=np.int64)
        x = _features(y, cum, origins, lead)
        target = y[origins + lead - 1]
        gram = x.T @ x
        ridge = 1e-6 * np.trace(gram) / N_FEATURES
        weights[lead - 1] = np.linalg.solve(gram + ridge * np.eye(N_FEATURES), x.T @ target)
    return weights


def predict(
    history: npt.NDArray[np.float64], weights: npt.NDArray[np.float64], horizon: int
) -> npt.NDArray[np.float64]:
    """``horizon`` values following ``history`` with fitted ``weights`` (leads beyond the
    fitted ones reuse the last row)."""
    y = _filled(history)
    cum = np.concatenate([[0.0], np.cumsum(y)])
    origin = np.array([y.size], dtype=np.int64)
    out = np.empty(horizon)
    for lead in range(1, horizon + 1):
        w = weights[min(lead, weights.shape[0]) - 1]
        out[lead - 1] = float(_features(y, cum, origin, lead)[0] @ w)
    return out


def regression(
    history: npt.NDArray[np.float64],
    horizon: int,
    fit_days: int = FIT_DAYS,
    combined: float = COMBINE,
) -> npt.NDArray[np.float64]:
    """The built-in forecaster: ``horizon`` hourly values following ``history`` (hourly,
    oldest first), from weights fitted on the history itself; ``seasonal_blend`` when the
    history is shorter than ``min_history``. Values are kept within the observed range
    widened by half its span (a linear fit must not forecast a negative intensity), then
    combined with ``seasonal_blend`` (``combined``: the blend's share far ahead, 0 for the
    regression alone)."""
    if horizon <= 0:
        return np.empty(0)
    h = np.asarray(history, dtype=np.float64)
    finite = h[np.isfinite(h)]
    if finite.size == 0 or h.size < min_history(horizon, fit_days):
        return seasonal_blend(h, horizon)
    weights = fit_weights(h, min(horizon, FIT_LEADS), fit_days)
    blend = seasonal_blend(h, horizon)
    if weights is None:
        return blend
    seen = _filled(h)[-(fit_days * DAY + LOOKBACK) :]
    return combine(_clamp(predict(h, weights, horizon), seen), blend, combined)


def blend_share(horizon: int, combined: float = COMBINE) -> npt.NDArray[np.float64]:
    """Per lead (1 .. horizon): the share of ``seasonal_blend`` in the built-in forecast."""
    lead = np.arange(1, horizon + 1, dtype=np.float64)
    return np.asarray(combined * (1 - 0.5 ** (lead / COMBINE_HALF_LIFE)), dtype=np.float64)


def combine(
    fitted: npt.NDArray[np.float64], blend: npt.NDArray[np.float64], combined: float = COMBINE
) -> npt.NDArray[np.float64]:
    """The regression's forecast(s) ``fitted`` (leads on the last axis) combined with the
    blend's ``blend`` (same shape) by ``blend_share``."""
    share = blend_share(fitted.shape[-1], combined)
    return np.asarray((1 - share) * fitted + share * blend, dtype=np.float64)


def _clamp(
    values: npt.NDArray[np.float64], seen: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    lo, hi = float(seen.min()), float(seen.max())
    pad = 0.5 * (hi - lo)
    low = max(lo - pad, 0.0) if lo >= 0 else lo - pad
    return np.clip(values, low, hi + pad)


def regression_all(
    series: npt.NDArray[np.float64],
    horizon: int,
    fit_days: int = FIT_DAYS,
    refit_hours: int = DAY,
    combined: float = COMBINE,
) -> npt.NDArray[np.float64]:
    """``regression`` issued at every hour t of ``series`` (row t: the forecast made from
    ``series[:t]`` for hours t .. t+horizon-1), with the weights refitted every
    ``refit_hours`` (from ``series[:t]`` at the refit hour) instead of at every hour, which
    makes a year of hourly forecasts take seconds. Hours before enough history fall back to
    ``seasonal_blend`` like ``regression`` does."""
    y = _filled(np.asarray(series, dtype=np.float64))
    n = y.size
    blend = seasonal_blend_all(y, horizon)
    out = blend.copy()
    cum = np.concatenate([[0.0], np.cumsum(y)])
    leads = min(horizon, FIT_LEADS)
    start = min_history(horizon, fit_days)
    for t0 in range(start, n, refit_hours):
        weights = fit_weights(y[:t0], leads, fit_days)
        origins = np.arange(t0, min(n, t0 + refit_hours), dtype=np.int64)
        if weights is None:
            continue  # the blend stays
        seen = y[max(0, t0 - fit_days * DAY - LOOKBACK) : t0]
        for lead in range(1, horizon + 1):
            w = weights[min(lead, leads) - 1]
            out[origins, lead - 1] = _features(y, cum, origins, lead) @ w
        out[origins] = combine(_clamp(out[origins], seen), blend[origins], combined)
    return out
