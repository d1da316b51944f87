"""The provider interface and the parsing helpers every provider shares.

Parsers turn untrusted bodies into ``Series``; anything unexpected (missing keys, wrong types,
unparseable times, wrong units, impossible values) becomes ``FeedDataError`` so that callers
only ever see the layer's own errors.
"""

from __future__ import annotations

import abc
import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

from gridaware.api.signals import (
    CARBON_UNIT,
    EmissionKind,
    Quality,
    Series,
    Signal,
)
from gridaware.signals.errors import FeedDataError, NoDataError

# Highest plausible average grid intensity (lignite plants emit about 1,100 to 1,200 g/kWh;
# marginal rates of old coal units reach about 1,400): beyond this a value is an error.
MAX_CARBON = 2000.0
MAX_ABS_PRICE = 20000.0


class Provider(abc.ABC):
    """One source of signals. Times are epoch seconds in grid time."""

    kind: str = "provider"
    signals: frozenset[Signal] = frozenset()

    def __init__(self, name: str, zone_map: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.zone_map = dict(zone_map or {})

    def code(self, zone: str) -> str:
        """The provider's own code for a gridaware zone."""
        return self.zone_map.get(zone, zone)

    def supports(self, signal: Signal) -> bool:
        return signal in self.signals

    def _require(self, signal: Signal) -> None:
        if not self.supports(signal):
            raise NoDataError(f"{self.name}: provides no {signal.value} signal")

    @abc.abstractmethod
    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        """The most recent value(s), the current interval last."""

    @abc.abstractmethod
    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        """Values whose intervals overlap [start, end)."""

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        """Forecast values from ``now`` for ``hours``; NoDataError when the provider has none."""
        raise NoDataError(f"{self.name}: offers no forecast")


def iso(t: float, seconds: bool = True) -> str:
    """An epoch time as ISO-8601 UTC with a ``Z`` (minutes only when ``seconds`` is off)."""
    fmt = "%Y-%m-%dT%H:%M:%SZ" if seconds else "%Y-%m-%dT%H:%MZ"
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime(fmt)


def parse_time(value: Any, what: str = "time") -> int:
    """Epoch seconds from an ISO-8601 string with zone (``Z`` or offset), else FeedDataError."""
    if not isinstance(value, str) or not value:
        raise FeedDataError(f"{what}: expected an ISO-8601 time string, got {value!r:.60}")
    text = value.strip().replace("z", "Z")
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        raise FeedDataError(f"{what}: unparseable time {value!r:.60}") from None
    if parsed.tzinfo is None:
        raise FeedDataError(f"{what}: time {value!r:.60} has no time zone")
    return int(parsed.timestamp())


def number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FeedDataError(f"{what}: expected a number, got {value!r:.60}")
    try:
        out = float(value)
    except ValueError:
        raise FeedDataError(f"{what}: expected a number, got {value!r:.60}") from None
    if not math.isfinite(out):
        raise FeedDataError(f"{what}: not a finite number ({value!r:.60})")
    return out


def field(obj: Any, key: str, what: str) -> Any:
    if not isinstance(obj, Mapping) or key not in obj:
        raise FeedDataError(f"{what}: missing '{key}'")
    return obj[key]


def items(obj: Any, key: str, what: str) -> list[Any]:
    value = field(obj, key, what)
    if not isinstance(value, list):
        raise FeedDataError(f"{what}: '{key}' must be a list")
    return value


def check_values(signal: Signal, values: Iterable[float], source: str) -> None:
    """Reject physically impossible values, including the all-zero answers of an outage."""
    vals = list(values)
    if signal is Signal.CARBON:
        if any(v < 0 or v > MAX_CARBON for v in vals):
            bad = next(v for v in vals if v < 0 or v > MAX_CARBON)
            raise FeedDataError(f"{source}: carbon intensity {bad} is outside 0..{MAX_CARBON:.0f}")
        if vals and all(v == 0 for v in vals):
            raise FeedDataError(f"{source}: carbon intensity of exactly 0 (a provider outage?)")
    elif signal is Signal.PRICE:
        if any(abs(v) > MAX_ABS_PRICE for v in vals):
            raise FeedDataError(f"{source}: price beyond +-{MAX_ABS_PRICE:.0f}/MWh")
    elif signal is Signal.RENEWABLE_SHARE and any(v < 0 or v > 100 for v in vals):
        raise FeedDataError(f"{source}: renewable share outside 0..100 %")


def make_series(
    zone: str,
    signal: Signal,
    unit: str,
    source: str,
    points: list[tuple[int, int, float, Quality]],
    kind: EmissionKind | None = None,
    fetched_at: float = 0.0,
) -> Series:
    """Validate values, drop duplicate timestamps (the last wins) and build the series."""
    check_values(signal, (p[2] for p in points), source)
    if signal is Signal.CARBON and kind is None:
        kind = EmissionKind.AVERAGE
    try:
        return Series.build(zone, signal, unit, source, points, kind, fetched_at)
    except ValueError as exc:
        raise FeedDataError(f"{source}: {exc}") from None


def carbon_series(
    zone: str,
    source: str,
    points: list[tuple[int, int, float, Quality]],
    kind: EmissionKind = EmissionKind.AVERAGE,
    fetched_at: float = 0.0,
) -> Series:
    return make_series(zone, Signal.CARBON, CARBON_UNIT, source, points, kind, fetched_at)


def json_body(resp: Any, source: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        snippet = " ".join(str(getattr(resp, "text", ""))[:80].split())
        raise FeedDataError(f"{source}: response is not JSON ({snippet!r})") from None
