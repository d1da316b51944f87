"""Per-zone fallback chains with a staleness-aware cache: what the operator and CLI call.

For each zone and signal the configured providers are asked in order. A value carries its
age (how long ago its interval ended; 0 while it is current); beyond ``stale_after`` it is
stale, the next provider is asked, and if nobody has a fresh value the freshest stale one is
returned flagged ``stale`` with the reasons, so consumers can decide (the operator marks
decisions made on stale data). Answers are cached for ``refresh_seconds``; a warm refresh of
many zones costs no network and well under a millisecond per zone.

A feed outage must not stop placement, so a refresh that fails keeps the cached answer: it is
served (its age growing, stale once past ``stale_after_seconds``) with the failure among the
reading's errors. Each (provider, zone, signal, query) has one refresh in flight at a time:
concurrent callers wait for it and share its result instead of each spending a full retry
budget, and after a failure nobody asks again before a backoff (``retry_backoff_seconds``,
doubling per consecutive failure up to ``refresh_seconds``) has passed. A provider that is
unreachable (network, timeout, 5xx, 429) is left alone for that backoff for all its zones, so
an outage costs one retry budget, not one per zone. When no provider has any value,
``SignalUnavailableError`` says why and when the chain will try again; ``health()`` lists each
cached query's state for status and metrics.

Overlays (``overlays``: in-memory providers such as the prices an OpenADR VTN sets,
``signals.providers.openadr``) come before every zone's chain without being configured: where
an overlay has a value for the current moment the reading is its, and a forecast is the
chain's with the overlay's intervals laid over it (converted to the chain's currency), and so
is history (the built-in forecaster still learns from the chain's own history only).
Outside an overlay's intervals nothing changes. Overlays fetch nothing, so they are asked
directly, not cached.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from gridaware.api.feeds import FeedsConfig
from gridaware.api.signals import Quality, Reading, Series, Signal, from_epoch
from gridaware.core import forecast as forecaster
from gridaware.core import money
from gridaware.signals.base import Provider
from gridaware.signals.errors import (
    FeedUnavailableError,
    NoDataError,
    SignalError,
    SignalUnavailableError,
)

HOUR = 3600

Key = tuple[str, str, Signal, str]  # provider, zone, signal, query ("latest", "forecast:48")


@dataclass
class _Entry:
    series: Series
    fetched: float  # wall/grid clock at fetch


@dataclass
class _Slot:
    """The cached answer to one query and the state of its refreshes."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    entry: _Entry | None = None
    error: SignalError | None = None
    failures: int = 0  # consecutive
    retry_at: float = 0.0  # no attempt before this (chain clock)


@dataclass(frozen=True)
class FeedHealth:
    """One cached query as status pages and metrics show it."""

    provider: str
    zone: str
    signal: Signal
    query: str
    fetched_at: float | None  # when the cached answer was fetched; None: never
    failures: int
    last_error: str
    retry_at: float


class _UnavailableError(SignalError):
    """A query that failed and has no cached answer; ``retry_at`` is its next attempt."""

    def __init__(self, message: str, retry_at: float) -> None:
        super().__init__(message)
        self.retry_at = retry_at


@dataclass(frozen=True)
class _Answer:
    series: Series
    note: str  # why a cached answer is served instead of a fresh one; "" when fresh


class Feeds:
    """Signals for any zone through its configured chain of providers. Thread-safe."""

    def __init__(
        self,
        config: FeedsConfig,
        providers: Mapping[str, Provider],
        clock: Callable[[], float] = time.time,
        overlays: Sequence[Provider] = (),
    ) -> None:
        self.config = config
        self.providers = dict(providers)
        self.clock = clock
        self.overlays = tuple(overlays)
        self._slots: dict[Key, _Slot] = {}
        self._slots_lock = threading.Lock()
        self._down: dict[str, tuple[float, SignalError]] = {}  # provider -> (retry_at, error)
        self._builtin: dict[tuple[str, Signal, int, int, str, int], Series] = {}

    def chain(self, zone: str, signal: Signal) -> list[Provider]:
        names = getattr(self.config.chain(zone), signal.value)
        return [self.providers[n] for n in names]

    def _slot(self, key: Key) -> _Slot:
        slot = self._slots.get(key)
        if slot is None:
            with self._slots_lock:
                slot = self._slots.setdefault(key, _Slot())
        return slot

    def _current(self, entry: _Entry | None, what: str, now: float) -> bool:
        """Whether a cached answer needs no refresh: younger than the refresh interval and,
        for "latest", its last interval not yet over (else the provider has a newer value)."""
        if entry is None or now - entry.fetched >= self.config.refresh_seconds:
            return False
        return not (what == "latest" and entry.fetched < entry.series.end <= now)

    def _backoff(self, failures: int) -> float:
        base = float(self.config.retry_backoff_seconds)
        cap = max(base, float(self.config.refresh_seconds))
        return min(cap, base * 2.0 ** min(failures - 1, 30))

    def _cached(
        self,
        provider: Provider,
        zone: str,
        signal: Signal,
        what: str,
        fetch: Callable[[], Series],
        now: float,
    ) -> _Answer:
        slot = self._slot((provider.name, zone, signal, what))
        entry = slot.entry
        if self._current(entry, what, now):
            assert entry is not None
            return _Answer(entry.series, "")
        with slot.lock:  # one refresh in flight; the others wait here and share its result
            entry = slot.entry
            if self._current(entry, what, now):
                assert entry is not None
                return _Answer(entry.series, "")
            if slot.error is None or now >= slot.retry_at:
                series = self._refresh(provider.name, slot, fetch, now)
                if series is not None:
                    return _Answer(series, "")
            assert slot.error is not None
            wait = max(0.0, slot.retry_at - now)
            if entry is None:
                raise _UnavailableError(
                    f"{slot.error} (next attempt in {wait:.0f} s)", slot.retry_at
                )
            return _Answer(
                entry.series,
                f"{slot.error}; serving the answer fetched {(now - entry.fetched) / 60:.0f} min "
                f"ago (next attempt in {wait:.0f} s)",
            )

    def _refresh(
        self, provider: str, slot: _Slot, fetch: Callable[[], Series], now: float
    ) -> Series | None:
        """Fetch into ``slot`` (its lock held); None after a failure, recorded in the slot.

        An unreachable provider (network, timeout, 5xx, 429) is down for every query until its
        backoff passes: during an outage one query spends the retry budget, not each zone's."""
        with self._slots_lock:
            down = self._down.get(provider)
        if down is not None and now < down[0]:
            slot.error, slot.retry_at = down[1], max(slot.retry_at, down[0])
            return None
        try:
            series = fetch()
        except SignalError as exc:
            slot.error, slot.failures = exc, slot.failures + 1
            slot.retry_at = now + self._backoff(slot.failures)
            if isinstance(exc, FeedUnavailableError):
                with self._slots_lock:
                    self._down[provider] = (slot.retry_at, exc)
            return None
        slot.entry, slot.error, slot.failures = _Entry(series, now), None, 0
        with self._slots_lock:
            self._down.pop(provider, None)
        return series

    def health(self) -> list[FeedHealth]:
        """The state of every query asked so far, failing ones first."""
        with self._slots_lock:
            items = list(self._slots.items())
        out = [
            FeedHealth(
                provider,
                zone,
                signal,
                what,
                slot.entry.fetched if slot.entry else None,
                slot.failures,
                str(slot.error) if slot.error else "",
                slot.retry_at if slot.error else 0.0,
            )
            for (provider, zone, signal, what), slot in items
        ]
        return sorted(out, key=lambda h: (-h.failures, h.provider, h.zone, h.signal, h.query))

    def reading(self, zone: str, signal: Signal) -> Reading:
        """The current value for ``zone``, from the first provider with a fresh one; raises
        ``SignalUnavailableError`` when no provider has any value."""
        now = self.clock()
        for overlay in self.overlays:
            current = self._overlay_reading(overlay, zone, signal, now)
            if current is not None:
                return current
        errors: list[str] = []
        retry: list[float] = []
        stale: Reading | None = None
        chain = self.chain(zone, signal)
        if not chain:
            raise NoDataError(f"no provider is configured for {signal.value} in {zone}")
        for provider in chain:
            try:
                answer = self._cached(
                    provider,
                    zone,
                    signal,
                    "latest",
                    partial(provider.latest, zone, signal, now),
                    now,
                )
            except SignalError as exc:
                errors.append(str(exc))
                retry.append(exc.retry_at if isinstance(exc, _UnavailableError) else now)
                continue
            if answer.note:
                errors.append(answer.note)
            reading = self._to_reading(zone, signal, answer.series, now, provider.name)
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
        raise SignalUnavailableError(
            f"no provider answered for {signal.value} in {zone}: " + "; ".join(errors),
            zone,
            signal.value,
            min(retry, default=now),
        )

    def _overlay_reading(
        self, overlay: Provider, zone: str, signal: Signal, now: float
    ) -> Reading | None:
        """The overlay's value for this moment, None when it has none."""
        if not overlay.supports(signal):
            return None
        try:
            series = overlay.latest(zone, signal, now)
        except SignalError:
            return None
        reading = self._to_reading(zone, signal, series, now, overlay.name)
        return reading if reading is not None and reading.age_seconds == 0 else None

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
        """Recent history (default ``history_hours``) from the first provider that has it,
        with the overlays' past intervals laid over it (what was paid, for cost accounts)."""
        now = self.clock()
        span = (hours or self.config.history_hours) * HOUR
        start = (now - span) // HOUR * HOUR
        out = self._chain_history(zone, signal, now, start, span)
        for overlay in self.overlays:
            if not overlay.supports(signal):
                continue
            try:
                top = overlay.history(zone, signal, start, now)
            except SignalError:
                continue
            out = overlaid(out, top, start, now)
        return out

    def _chain_history(
        self, zone: str, signal: Signal, now: float, start: float, span: float
    ) -> Series:
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
                ).series
            except SignalError as exc:
                errors.append(str(exc))
        raise SignalError(f"no history for {signal.value} in {zone}: " + "; ".join(errors))

    def forecast(self, zone: str, signal: Signal, hours: int | None = None) -> Series:
        """Hourly forecast from the current hour: the first provider's own forecast, else the
        built-in forecaster over the chain's history (sources say which), with the overlays'
        intervals laid over it."""
        now = self.clock()
        horizon = hours or self.config.forecast_hours
        out = self._chain_forecast(zone, signal, now, horizon)
        for overlay in self.overlays:
            if not overlay.supports(signal):
                continue
            try:
                top = overlay.forecast(zone, signal, now, horizon)
            except SignalError:
                continue
            hour0 = int(now // HOUR * HOUR)
            out = overlaid(out, top, hour0, hour0 + horizon * HOUR)
        return out

    def _chain_forecast(self, zone: str, signal: Signal, now: float, horizon: int) -> Series:
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
                ).series
            except SignalError as exc:
                errors.append(str(exc))
                continue
            if len(fc) and fc.end > now + HOUR:
                return fc
            errors.append(f"{provider.name}: forecast ends too soon")
        span = self.config.history_hours * HOUR  # the market's history, not the VTN's tariffs
        history = self._chain_history(zone, signal, now, (now - span) // HOUR * HOUR, span)
        memo = (zone, signal, horizon, hour0, history.source, history.end)
        cached = self._builtin.get(memo)
        if cached is not None:
            return cached
        hourly = history.hourly(hour0 - self.config.history_hours * HOUR, self.config.history_hours)
        values = forecaster.regression(hourly, horizon)
        if len(self._builtin) > 4096:  # one entry per zone, signal and hour: keep it small
            self._builtin.clear()
        self._builtin[memo] = out = Series(
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
        return out


def overlaid(base: Series, top: Series, lo: float, hi: float) -> Series:
    """``base`` with ``top``'s intervals (clipped to [lo, hi)) in place of what they cover,
    in ``base``'s unit (prices converted with ``core.money``; ``base`` unchanged when a
    currency is unknown or the units are not both prices). Only ``base``'s intervals that a
    ``top`` interval touches are cut, so a long history costs array operations, not a loop."""
    top = top.window(lo, hi)
    factor = _conversion(top.unit, base.unit)
    if not len(top) or factor is None:
        return base
    t_start = np.maximum(top.start.astype(np.int64), int(lo))
    t_end = np.minimum(top.start.astype(np.int64) + top.length, int(hi))
    b_start = base.start.astype(np.int64)
    b_end = b_start + base.length
    first = np.searchsorted(t_end, b_start, side="right")  # the first top interval ending later
    touched = (first < len(t_start)) & (t_start[np.minimum(first, len(t_start) - 1)] < b_end)
    spans = list(zip(t_start.tolist(), t_end.tolist(), strict=True))
    cut = [
        (a, b - a, float(base.value[i]), int(base.quality[i]))
        for i in np.flatnonzero(touched).tolist()
        for a, b in _uncovered(int(b_start[i]), int(b_end[i]), spans, int(first[i]))
    ]
    keep = ~touched
    start = np.concatenate([b_start[keep], t_start, [c[0] for c in cut]]).astype(np.int64)
    order = np.argsort(start, kind="stable")
    return Series(
        base.zone,
        base.signal,
        base.unit,
        f"{top.source}, else {base.source}",
        start[order],
        np.concatenate([base.length[keep], t_end - t_start, [c[1] for c in cut]]).astype(np.int32)[
            order
        ],
        np.concatenate([base.value[keep], top.value * factor, [c[2] for c in cut]]).astype(
            np.float64
        )[order],
        np.concatenate([base.quality[keep], top.quality, [c[3] for c in cut]]).astype(np.int8)[
            order
        ],
        base.kind,
        max(base.fetched_at, top.fetched_at),
    )


def _conversion(unit: str, into: str) -> float | None:
    """The factor that turns a value in ``unit`` into ``into``; None when there is none."""
    if unit == into:
        return 1.0
    try:
        return money.to_usd_per_mwh(1.0, unit) / money.to_usd_per_mwh(1.0, into)
    except KeyError:
        return None


def _uncovered(
    start: int, end: int, spans: list[tuple[int, int]], begin: int = 0
) -> Iterator[tuple[int, int]]:
    """The parts of [start, end) that no span (sorted, disjoint; none before ``begin`` ends
    after ``start``) covers."""
    t = start
    for a, b in itertools.islice(spans, begin, None):
        if b <= t:
            continue
        if a >= end:
            break
        if a > t:
            yield t, a
        t = b
        if t >= end:
            return
    if t < end:
        yield t, end
