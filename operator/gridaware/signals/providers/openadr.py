"""Prices a utility's OpenADR 3 VTN sets, as a price provider that the chain asks first.

A utility can send a PRICE event (a tariff for some hours, a critical-peak price) instead of,
or along with, asking for less load. Those prices are what the fleet actually pays in the
event's zones while the event lasts, so they must reach the price signal, not only the logs.
The VEN service (``services.openadr``) hands every poll's ``PricePoint``\\ s to ``update``;
this provider keeps, per zone, the latest price intervals the VTN lists, converted to
``<currency>/MWh`` like every price provider (the currency of the zone's earliest interval;
others converted with ``core.money``), past ones included as long as the VTN lists their
events. Nothing else is stored: an event the VTN no longer lists (withdrawn or deleted) is gone
at the next poll, and a failed poll keeps the last one.

``signals.chain.Feeds`` takes it as an overlay: inside one of the VTN's intervals the reading
comes from here; outside them, and for every other zone and signal, the configured providers
answer as before; a forecast is the configured one with the VTN's intervals laid over it, and
so is history (what was paid, for cost accounts).
It fetches nothing, so it is not cached by the chain and is thread-safe (the VEN's thread
writes, placement threads read).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from gridaware.api.signals import Quality, Series, Signal
from gridaware.signals.base import Provider
from gridaware.signals.errors import NoDataError
from gridaware.signals.openadr import PricePoint, Skipped, price_problem, price_series

HOUR = 3600


class VtnPrices(Provider):
    """The latest prices from one VTN, per zone (see the module docstring)."""

    kind = "openadr"
    signals = frozenset({Signal.PRICE})

    def __init__(self, name: str = "openadr") -> None:
        super().__init__(name)
        self._lock = threading.Lock()
        self._zones: dict[str, Series] = {}

    def update(self, points: Iterable[PricePoint], now: float) -> list[Skipped]:
        """Replace every zone's prices with those of this poll; the points not used, and why."""
        by_zone: dict[str, list[PricePoint]] = defaultdict(list)
        skipped: list[Skipped] = []
        for point in points:
            why = price_problem(point) or _no_zone(point)
            if why is not None:
                skipped.append(Skipped(point.event_id, why))
                continue
            for zone in point.zones:
                by_zone[zone].append(point)
        zones = {zone: _series(zone, pts, now) for zone, pts in by_zone.items()}
        with self._lock:
            self._zones = zones
        return skipped

    def zones(self) -> list[str]:
        """The zones the VTN has prices for now."""
        with self._lock:
            return sorted(self._zones)

    def _get(self, zone: str, signal: Signal) -> Series:
        self._require(signal)
        with self._lock:
            series = self._zones.get(zone)
        if series is None:
            raise NoDataError(f"{self.name}: the VTN set no price for {zone}")
        return series

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        """The VTN's interval that covers ``now``; NoDataError outside its intervals."""
        current = _as_of(self._get(zone, signal).window(now, now + 1), now)
        if not len(current):
            raise NoDataError(f"{self.name}: no VTN price interval for {zone} at this time")
        return current

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        """The intervals the VTN still lists that overlap [start, end)."""
        found = self._get(zone, signal).window(start, end)
        if not len(found):
            raise NoDataError(f"{self.name}: no VTN price for {zone} in that time")
        return found

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        """The VTN's intervals over the next ``hours`` (the current one included): the prices
        the utility has announced."""
        return _as_of(self.history(zone, signal, now, now + hours * HOUR), now)


def _no_zone(point: PricePoint) -> str | None:
    if point.zones:
        return None
    if point.clusters:
        return "PRICE for clusters only: the price signal is per zone (target zone_<code>)"
    return "PRICE with no zone_ target and no default zones"


def _series(zone: str, points: list[PricePoint], now: float) -> Series:
    first = min(points, key=lambda p: (p.start, p.end))
    return price_series(points, zone, first.currency or "", now)


def _as_of(series: Series, now: float) -> Series:
    """The series with begun intervals MEASURED and later ones FORECAST, as seen at ``now``."""
    quality = np.where(series.start <= now, int(Quality.MEASURED), int(Quality.FORECAST))
    return Series(
        series.zone,
        series.signal,
        series.unit,
        series.source,
        series.start,
        series.length,
        series.value,
        quality.astype(np.int8),
        series.kind,
        now,
    )
