"""Spatio-temporal planning primitives shared by the operator and the simulator.

Signals are hourly step series; a job of ``length`` hours started at ``t`` costs the integral
of the (PUE-weighted, normalised) signal over [t, t + length). With prefix sums the integral is
O(1) for any fractional start and length, so choosing among every region and start time is a
few vector operations, and the simulator can replay a year of decisions for 100,000 jobs.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from gridaware.core.placement import CARBON_REF, PRICE_REF

F64 = npt.NDArray[np.float64]


def prefix(series: F64) -> F64:
    """Cumulative sums along the last axis with a leading 0: P[..., k] = sum(series[..., :k])."""
    s = np.asarray(series, dtype=np.float64)
    zeros = np.zeros((*s.shape[:-1], 1))
    return np.concatenate([zeros, np.cumsum(s, axis=-1)], axis=-1)


def integrate(
    p: F64, series: F64, t0: F64 | float, t1: F64 | float, rows: npt.NDArray[np.int64] | None = None
) -> F64:
    """Integral over [t0, t1) of an hourly step series with prefix sums ``p``; hours are
    indices into the series. For 2-D ``series``/``p`` (one row per region or job) ``rows``
    picks the row for each t0/t1 element."""

    def at(t: F64 | float) -> F64:
        t_arr = np.asarray(t, dtype=np.float64)
        k = np.floor(t_arr).astype(np.int64)
        k = np.minimum(np.maximum(k, 0), series.shape[-1] - 1)  # np.clip is slow on small arrays
        frac = t_arr - k
        if rows is None:
            return np.asarray(p[..., k] + frac * series[..., k], dtype=np.float64)
        return np.asarray(p[rows, k] + frac * series[rows, k], dtype=np.float64)

    return at(t1) - at(t0)


def cost_series(
    carbon: F64,
    price: F64 | None,
    carbon_weight: float,
    price_weight: float,
    pue: F64 | float = 1.0,
) -> F64:
    """The placement score per hour (see ``placement.score``) for whole series at once."""
    total = carbon_weight * np.asarray(carbon) / CARBON_REF
    if price_weight > 0:
        if price is None:
            raise ValueError("a price weight needs a price series")
        total = total + price_weight * np.asarray(price) / PRICE_REF
    return np.asarray(total * pue / (carbon_weight + price_weight), dtype=np.float64)


def relative_saving(base: float, alt: float) -> float:
    """How much cheaper ``alt`` is than ``base``, as a share of the larger magnitude of the two.

    A difference, never a ratio of the two costs: with negative prices a ratio flips sign
    (-1.0 / -1.1 looks like a 9 % saving although -1.0 costs more). Positive for a real saving
    whatever the signs, 0 when both are 0; for positive costs it is ``1 - alt / base``."""
    scale = max(abs(base), abs(alt))
    return 0.0 if scale == 0 else (base - alt) / scale


def should_migrate(stay: float, move: float, overhead: float, margin: float) -> bool:
    """Move only when the expected saving over the remaining run beats the cost of moving
    (lost work and restart energy, in the same units) by a relative margin: hysteresis that
    keeps oscillating signals from causing flapping. The margin scales with the magnitude of
    the costs, so negative costs (negative prices) never turn a loss into a saving."""
    return stay - move > overhead + margin * max(abs(stay), abs(move))
