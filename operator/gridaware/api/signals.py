"""Grid signals as typed time series: carbon intensity, day-ahead price, renewable share.

Every value says what it is (unit, average or marginal emissions, measured, estimated or
forecast) and where it came from, because mixing marginal with average intensity, or measured
with forecast values, silently corrupts decisions and carbon accounts. Series are stored as
numpy arrays (one year of hourly data for a zone is about 300 kB) so that the operator can keep
history for many zones and the simulator can vectorise over them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

UTC = dt.UTC


class Signal(StrEnum):
    CARBON = "carbon"  # gCO2e/kWh
    PRICE = "price"  # <currency>/MWh
    RENEWABLE_SHARE = "renewable_share"  # percent


class EmissionKind(StrEnum):
    AVERAGE = "average"
    MARGINAL = "marginal"


class Quality(IntEnum):
    MEASURED = 0
    ESTIMATED = 1
    FORECAST = 2


CARBON_UNIT = "gCO2e/kWh"


def price_unit(currency: str) -> str:
    return f"{currency.upper()}/MWh"


def from_epoch(s: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(s), tz=UTC)


@dataclass(frozen=True, eq=False)
class Series:
    """Values of one signal for one zone: interval starts (epoch s), lengths (s), values.

    Intervals are sorted by start and do not overlap; ``quality`` holds a ``Quality`` per point.
    """

    zone: str
    signal: Signal
    unit: str
    source: str
    start: npt.NDArray[np.int64]
    length: npt.NDArray[np.int32]
    value: npt.NDArray[np.float64]
    quality: npt.NDArray[np.int8]
    kind: EmissionKind | None = None
    fetched_at: float = field(default=0.0)

    def __post_init__(self) -> None:
        n = len(self.start)
        if not (len(self.length) == len(self.value) == len(self.quality) == n):
            raise ValueError("series arrays must have equal lengths")
        if n > 1 and bool(np.any(self.start[1:] < self.start[:-1] + self.length[:-1])):
            raise ValueError("series intervals must be sorted and must not overlap")
        if self.signal is Signal.CARBON and self.kind is None:
            raise ValueError("a carbon series must say whether it is average or marginal")

    def __len__(self) -> int:
        return len(self.start)

    @property
    def end(self) -> int:
        """End (epoch s) of the last interval, or 0 for an empty series."""
        return int(self.start[-1] + self.length[-1]) if len(self) else 0

    def window(self, t0: float, t1: float) -> Series:
        """The points whose intervals overlap [t0, t1)."""
        mask = (self.start < t1) & (self.start + self.length > t0)
        return self._masked(mask)

    def _masked(self, mask: npt.NDArray[np.bool_]) -> Series:
        return Series(
            self.zone,
            self.signal,
            self.unit,
            self.source,
            self.start[mask],
            self.length[mask],
            self.value[mask],
            self.quality[mask],
            self.kind,
            self.fetched_at,
        )

    def hourly(self, t0: int, hours: int) -> npt.NDArray[np.float64]:
        """Time-weighted mean per hour for ``hours`` hours from ``t0``; NaN where uncovered."""
        out = np.full(hours, np.nan)
        if not len(self):
            return out
        edges = t0 + 3600 * np.arange(hours + 1, dtype=np.int64)
        s, e = self.start.astype(np.int64), (self.start + self.length).astype(np.int64)
        for h in range(hours):
            lo, hi = edges[h], edges[h + 1]
            i0 = int(np.searchsorted(e, lo, side="right"))
            i1 = int(np.searchsorted(s, hi, side="left"))
            if i1 <= i0:
                continue
            overlap = np.minimum(e[i0:i1], hi) - np.maximum(s[i0:i1], lo)
            covered = overlap.sum()
            if covered > 0:
                out[h] = float((self.value[i0:i1] * overlap).sum() / covered)
        return out

    @staticmethod
    def build(
        zone: str,
        signal: Signal,
        unit: str,
        source: str,
        points: list[tuple[int, int, float, Quality]],
        kind: EmissionKind | None = None,
        fetched_at: float = 0.0,
    ) -> Series:
        """A series from (start, length, value, quality) tuples; later duplicates win."""
        by_start: dict[int, tuple[int, int, float, Quality]] = {}
        for p in points:
            by_start[p[0]] = p
        ordered = [by_start[k] for k in sorted(by_start)]
        return Series(
            zone,
            signal,
            unit,
            source,
            np.array([p[0] for p in ordered], dtype=np.int64),
            np.array([p[1] for p in ordered], dtype=np.int32),
            np.array([p[2] for p in ordered], dtype=np.float64),
            np.array([int(p[3]) for p in ordered], dtype=np.int8),
            kind,
            fetched_at,
        )

    def concat(self, other: Series) -> Series:
        """This series followed by the points of ``other`` that start after it ends."""
        tail = other._masked(other.start >= self.end) if len(self) else other
        return Series(
            self.zone,
            self.signal,
            self.unit,
            self.source,
            np.concatenate([self.start, tail.start]),
            np.concatenate([self.length, tail.length]),
            np.concatenate([self.value, tail.value]),
            np.concatenate([self.quality, tail.quality]),
            self.kind,
            max(self.fetched_at, other.fetched_at),
        )


class Reading(BaseModel):
    """A current value as consumers see it: with its source, age and staleness."""

    model_config = ConfigDict(frozen=True)

    zone: str
    signal: Signal
    value: float
    unit: str
    kind: EmissionKind | None
    quality: Quality
    source: str
    interval_start: dt.datetime
    age_seconds: float
    stale: bool
    forecast_hours: float = 0.0
    errors: tuple[str, ...] = ()
