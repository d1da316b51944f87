"""Per-zone fallback chains with a staleness-aware cache: what the operator and CLI call.

For each zone and signal the configured providers are asked in order. A value carries its
age (how long ago its interval ended; 0 while it is current); beyond ``stale_after`` it is
stale, the next provider is asked, and if nobody has a fresh value the freshest stale one is
returned flagged ``stale`` with the reasons, so consumers can decide (the operator marks
decisions made on stale data). Answers are cached for ``refresh_seconds``; a warm refresh of
many zones costs no network and well under a millisecond per zone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from gridaware.api.feeds import FeedsConfig
from gridaware.api.signals import Quality, Reading, Series, Signal, from_epoch
from gridaware.core import forecast as forecaster
from gridaware.signals.base import Provider
from gridaware.signals.errors import NoDataError, SignalError

HOUR = 3600


@dataclass
class _Entry:
    series: Series
    fetched: float  # wall/grid clock at fetch


class Feeds:
    """Signals for any zone through its configured chain of providers."""

    def __init__(
        self,
        config: FeedsConfig,
        providers: Mapping[str, Provider],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.providers = dict(providers)
        self.clock = clock
        self._cache: dict[tuple[str, str, Signal, str], _Entry] = {}

    def chain(self, zone: str, signal: Signal) -> list[Provider]:
        names = getattr(self.config.chain(zone), signal.value)
        return [self.providers[n] for n in names]

    def _cached(
        self,
        provider: Provider,
        zone: str,
        signal: Signal,
        what: str,
        fetch: Callable[[], Series],
        now: float,
    ) -> Series:
        key = (provider.name, zone, signal, what)
        entry = self._cache.get(key)
        # a cached answer is reused until the refresh interval passes, or until the interval
        # it ends with is over (a new hour has begun: the provider has a newer value)
        outdated = (
            entry is not None and what == "latest" and entry.fetched < entry.series.end <= now
        )
        if entry is not None and now - entry.fetched < self.config.refresh_seconds and not outdated:
            return entry.series
        series = fetch()
        self._cache[key] = _Entry(series, now)
        return series

    def reading(self, zone: str, signal: Signal) -> Reading:
        """The current value for ``zone``, from the first provider with a fresh one."""
        now = self.clock()
        errors: list[str] = []
        stale: Reading | None = None
        chain = self.chain(zone, signal)
        if not chain:
            raise NoDataError(f"no provider is configured for {signal.value} in {zone}")
        for provider in chain:
            try:
                series = self._cached(
                    provider,
                    zone,
                    signal,
                    "latest",
                    partial(provider.latest, zone, signal, now),
                    now,
                )
            except SignalError as exc:
                errors.append(str(exc))
                continue
            reading = self._to_reading(zone, signal, series, now, provider.name)
            if reading is None:
                errors.append(f"{provider.name}: no value up to now")
                continue
            if not reading.stale:
                return reading.model_copy(update={"errors": tuple(errors)})
            errors.append(f"{provider.name}: value is {reading.age_seconds / 60:.0f} min old")
            if stale is None or reading.age_seconds < stale.age_seconds:
                stale = reading
        if stale is not None:
            return stale.model_copy(update={"errors": tuple(errors)})
        raise SignalError(
            f"no provider answered for {signal.value} in {zone}: " + "; ".join(errors)
        )

    def _to_reading(
        self, zone: str, signal: Signal, series: Series, now: float, source: str
    ) -> Reading | None:
        past = np.nonzero(series.start <= now)[0]
        if not len(past):
            return None
        i = int(past[-1])
        end = float(series.start[i] + series.length[i])
        age = max(0.0, now - end)
        return Reading(
            zone=zone,
            signal=signal,
            value=float(series.value[i]),
            unit=series.unit,
            kind=series.kind,
            quality=Quality(int(series.quality[i])),
            source=series.source,
            interval_start=from_epoch(float(series.start[i])),
            age_seconds=age,
            stale=age > self.config.stale_after_seconds,
        )

    def history(self, zone: str, signal: Signal, hours: int | None = None) -> Series:
        """Recent history (default ``history_hours``) from the first provider that has it."""
        now = self.clock()
        span = (hours or self.config.history_hours) * HOUR
        start = (now - span) // HOUR * HOUR
        errors = []
        for provider in self.chain(zone, signal):
            try:
                return self._cached(
                    provider,
                    zone,
                    signal,
                    f"history:{span}",
                    partial(provider.history, zone, signal, start, now),
                    now,
                )
            except SignalError as exc:
                errors.append(str(exc))
        raise SignalError(f"no history for {signal.value} in {zone}: " + "; ".join(errors))

    def forecast(self, zone: str, signal: Signal, hours: int | None = None) -> Series:
        """Hourly forecast from the current hour: the first provider's own forecast, else the
        built-in forecaster over the chain's history (sources say which)."""
        now = self.clock()
        horizon = hours or self.config.forecast_hours
        hour0 = int(now // HOUR * HOUR)
        errors = []
        for provider in self.chain(zone, signal):
            try:
                fc = self._cached(
                    provider,
                    zone,
                    signal,
                    f"forecast:{horizon}",
                    partial(provider.forecast, zone, signal, now, horizon),
                    now,
                )
            except SignalError as exc:
                errors.append(str(exc))
                continue
            if len(fc) and fc.end > now + HOUR:
                return fc
            errors.append(f"{provider.name}: forecast ends too soon")
        history = self.history(zone, signal)
        hourly = history.hourly(hour0 - self.config.history_hours * HOUR, self.config.history_hours)
        values = forecaster.seasonal_blend(hourly, horizon)
        return Series(
            zone,
            signal,
            history.unit,
            f"gridaware forecaster (from {history.source})",
            hour0 + HOUR * np.arange(horizon, dtype=np.int64),
            np.full(horizon, HOUR, dtype=np.int32),
            values,
            np.full(horizon, int(Quality.FORECAST), dtype=np.int8),
            history.kind,
            now,
        )
