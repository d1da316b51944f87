"""Providers that need no network: a static table, a replay of recorded traces, and the
synthetic model that is the offline default for demos and the lab."""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
import zlib
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from gridaware.api.signals import CARBON_UNIT, EmissionKind, Quality, Series, Signal, price_unit
from gridaware.signals.base import Provider, check_values, number
from gridaware.signals.errors import FeedDataError, NoDataError

HOUR = 3600


def _hourly(
    zone: str,
    signal: Signal,
    unit: str,
    source: str,
    t0: int,
    values: np.ndarray,
    quality: Quality,
    kind: EmissionKind | None,
) -> Series:
    n = len(values)
    return Series(
        zone,
        signal,
        unit,
        source,
        t0 + HOUR * np.arange(n, dtype=np.int64),
        np.full(n, HOUR, dtype=np.int32),
        values.astype(np.float64),
        np.full(n, int(quality), dtype=np.int8),
        kind,
    )


def as_forecast(s: Series) -> Series:
    """The same values labelled as a forecast."""
    return Series(
        s.zone,
        s.signal,
        s.unit,
        s.source,
        s.start,
        s.length,
        s.value,
        np.full(len(s), int(Quality.FORECAST), dtype=np.int8),
        s.kind,
        s.fetched_at,
    )


def _hours(start: float, end: float) -> tuple[int, int]:
    t0 = int(start // HOUR * HOUR)
    return t0, max(0, math.ceil((end - t0) / HOUR))


class Static(Provider):
    """Fixed values per zone, e.g. from a sustainability report: ``{zone: {carbon, price,
    currency}}``. Marked estimated; useful as the last link of a fallback chain."""

    kind = "static"
    signals = frozenset({Signal.CARBON, Signal.PRICE})

    def __init__(self, name: str, table: Mapping[str, Mapping[str, object]]) -> None:
        super().__init__(name)
        self.table = {z: dict(v) for z, v in table.items()}

    def _value(self, zone: str, signal: Signal) -> tuple[float, str]:
        row = self.table.get(zone)
        if row is None or signal.value not in row:
            raise NoDataError(f"{self.name}: no {signal.value} value for {zone}")
        value = number(row[signal.value], f"{self.name} {zone}.{signal.value}")
        unit = (
            CARBON_UNIT if signal is Signal.CARBON else price_unit(str(row.get("currency", "EUR")))
        )
        return value, unit

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        value, unit = self._value(zone, signal)
        check_values(signal, [value], self.name)
        t0, n = _hours(start, end)
        kind = EmissionKind.AVERAGE if signal is Signal.CARBON else None
        return _hourly(
            zone, signal, unit, self.name, t0, np.full(n, value), Quality.ESTIMATED, kind
        )

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        return self.history(zone, signal, now, now + 1)

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        return as_forecast(self.history(zone, signal, now, now + hours * HOUR))


# --- trace replay --------------------------------------------------------------------------

CARBON_COLUMNS = {
    "lifecycle": "Carbon Intensity gCO₂eq/kWh (LCA)",
    "direct": "Carbon Intensity gCO₂eq/kWh (direct)",
}


PRICE_COLUMN = re.compile(r"^Price \((?P<currency>[A-Z]{3})/MWh\)$")


def _column(
    fieldnames: list[str], signal: Signal, carbon_column: str, path: Path
) -> tuple[str, str]:
    """(column, unit) of ``signal`` in a trace's header; a clear error when it is not there."""
    if signal is Signal.PRICE:
        for name in fieldnames:
            m = PRICE_COLUMN.match(name.strip())
            if m:
                return name, price_unit(m["currency"])
        raise FeedDataError(
            f"replay: {path.name} has no price column 'Price (<CUR>/MWh)' (columns: "
            f"{', '.join(fieldnames)})"
        )
    column = carbon_column if signal is Signal.CARBON else "Renewable Percentage"
    if column not in fieldnames:
        raise FeedDataError(
            f"replay: {path.name} has no column {column!r} (columns: {', '.join(fieldnames)})"
        )
    return column, (CARBON_UNIT if signal is Signal.CARBON else "%")


@lru_cache(maxsize=64)
def _read_trace(
    path: Path, signal: Signal, carbon_column: str
) -> tuple[int, np.ndarray, np.ndarray, str]:
    """(first hour epoch, values, estimated flags, unit) of an hourly trace CSV (UTC times,
    ``Datetime (UTC)``); any year or range, leap years included. Gaps and duplicate hours
    are errors that say where they are."""
    times: list[int] = []
    values: list[float] = []
    estimated: list[bool] = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            column, unit = _column(list(reader.fieldnames or []), signal, carbon_column, path)
            for row in reader:
                text = row["Datetime (UTC)"].strip().replace(" ", "T")
                stamp = dt.datetime.fromisoformat(text)
                if stamp.tzinfo is None:
                    stamp = stamp.replace(tzinfo=dt.UTC)
                times.append(int(stamp.timestamp()))
                values.append(float(row[column]) if row[column] else math.nan)
                estimated.append(row.get("Data Estimated", "false").strip().lower() == "true")
    except (OSError, KeyError, ValueError) as exc:
        raise FeedDataError(f"replay: cannot read {path}: {exc}") from None
    if not times:
        raise FeedDataError(f"replay: {path} is empty")
    t = np.array(times, dtype=np.int64)
    _check_hourly(t, path.name)
    return int(t[0]), np.array(values), np.array(estimated), unit


def _check_hourly(t: np.ndarray, what: str) -> None:
    """Raise FeedDataError naming the first duplicate, backwards step or gap."""
    steps = np.diff(t)
    bad = np.flatnonzero(steps != HOUR)
    if bad.size == 0:
        return
    i = int(bad[0])
    at = dt.datetime.fromtimestamp(int(t[i + 1]), dt.UTC).isoformat()
    if steps[i] == 0:
        raise FeedDataError(f"replay: {what}: duplicate hour {at}")
    if steps[i] < 0:
        raise FeedDataError(f"replay: {what}: hours out of order at {at}")
    if steps[i] % HOUR:
        raise FeedDataError(f"replay: {what}: {at} is not on the hour")
    raise FeedDataError(
        f"replay: {what}: gap of {int(steps[i] // HOUR) - 1} h before {at} (hourly data only)"
    )


def _join(
    parts: list[tuple[int, np.ndarray, np.ndarray, str]], names: list[str]
) -> tuple[int, np.ndarray, np.ndarray, str]:
    """Consecutive traces (e.g. one file per year) as one series; they must join without a
    gap or an overlap and share a unit."""
    parts_sorted = sorted(zip(parts, names, strict=True), key=lambda pn: pn[0][0])
    (t0, values, est, unit), first_name = parts_sorted[0]
    out_v, out_e, end = [values], [est], t0 + HOUR * len(values)
    for (t, v, e, u), name in parts_sorted[1:]:
        if u != unit:
            raise FeedDataError(f"replay: {name} is in {u}, {first_name} in {unit}")
        if t != end:
            at = dt.datetime.fromtimestamp(min(t, end), dt.UTC).isoformat()
            kind = "overlaps the previous file" if t < end else "leaves a gap"
            raise FeedDataError(f"replay: {name} {kind} at {at}")
        out_v.append(v)
        out_e.append(e)
        end = t + HOUR * len(v)
    return t0, np.concatenate(out_v), np.concatenate(out_e), unit


def trace_files(directory: Path, code: str, signal: Signal) -> list[Path]:
    """The documented layout: ``carbon/<ZONE>_<YEAR>_hourly.csv`` and
    ``prices/<ZONE>_electricity_prices_<YEAR>.csv`` (any years, one file or several
    consecutive ones), or ``carbon/<ZONE>_hourly.csv`` / ``prices/<ZONE>_electricity_prices.csv``
    for a trace of any range."""
    if signal is Signal.PRICE:
        pattern, plain = (
            re.compile(rf"^{re.escape(code)}_electricity_prices_\d{{4}}\.csv$"),
            (f"{code}_electricity_prices.csv"),
        )
        folder = directory / "prices"
    else:
        pattern, plain = (
            re.compile(rf"^{re.escape(code)}_\d{{4}}_hourly\.csv$"),
            (f"{code}_hourly.csv"),
        )
        folder = directory / "carbon"
    if not folder.is_dir():
        return []
    found = sorted(p for p in folder.iterdir() if pattern.match(p.name))
    return found or ([folder / plain] if (folder / plain).exists() else [])


class Replay(Provider):
    """Recorded hourly traces served as if they happened ``offset`` seconds later: from the
    documented layout under ``directory`` (``trace_files``: any year or range, several
    consecutive files joined) or from explicit ``paths`` per zone and signal
    (``{zone: {"carbon": [files], "price": [files]}}``). Price files carry their currency in
    the ``Price (<CUR>/MWh)`` column.

    With an offset that maps a recorded day onto today, and the operator's replay clock running
    faster than wall time, demos and tests replay a real day in minutes. Forecasts are the
    recorded future (a perfect forecast) unless ``perfect_forecast`` is off, in which case the
    chain's built-in forecaster fills in.
    """

    kind = "replay"
    signals = frozenset({Signal.CARBON, Signal.PRICE, Signal.RENEWABLE_SHARE})

    def __init__(
        self,
        name: str,
        directory: Path,
        offset: float = 0.0,
        zone_map: Mapping[str, str] | None = None,
        factor: str = "lifecycle",
        perfect_forecast: bool = True,
        paths: Mapping[str, Mapping[str, Sequence[Path | str]]] | None = None,
    ) -> None:
        super().__init__(name, zone_map)
        self.directory = directory
        self.offset = int(offset)
        self.column = CARBON_COLUMNS[factor]
        self.perfect_forecast = perfect_forecast
        self.paths = {
            z: {k: [Path(p) for p in v] for k, v in m.items()} for z, m in (paths or {}).items()
        }

    def files(self, zone: str, signal: Signal) -> list[Path]:
        key = "price" if signal is Signal.PRICE else "carbon"
        explicit = self.paths.get(zone, {}).get(key)
        if explicit is not None:
            return explicit
        return trace_files(self.directory, self.code(zone), signal)

    def _trace(self, zone: str, signal: Signal) -> tuple[int, np.ndarray, np.ndarray, str]:
        files = self.files(zone, signal)
        missing = [p for p in files if not p.exists()]
        if not files or missing:
            what = missing[0].name if missing else f"in {self.directory}"
            raise NoDataError(f"{self.name}: no {signal.value} trace for {zone} ({what})")
        parts = [_read_trace(p, signal, self.column) for p in files]
        t0, values, est, unit = _join(parts, [p.name for p in files])
        return t0 + self.offset, values, est, unit

    def span(self, zone: str, signal: Signal) -> tuple[int, int]:
        """[first hour, end) of the recorded trace (epoch seconds, offset applied)."""
        t0, values, _, _ = self._trace(zone, signal)
        return t0, t0 + HOUR * len(values)

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        t0, values, est, unit = self._trace(zone, signal)
        i0 = max(0, int((start - t0) // HOUR))
        i1 = min(len(values), math.ceil((end - t0) / HOUR))
        if i1 <= i0:
            raise NoDataError(f"{self.name}: the {zone} trace does not cover that time")
        vals = values[i0:i1]
        keep = np.isfinite(vals)
        n = int(keep.sum())
        kind = EmissionKind.AVERAGE if signal is Signal.CARBON else None
        return Series(
            zone,
            signal,
            unit,
            self.name,
            (t0 + HOUR * np.arange(i0, i1, dtype=np.int64))[keep],
            np.full(n, HOUR, dtype=np.int32),
            vals[keep],
            np.where(est[i0:i1], int(Quality.ESTIMATED), int(Quality.MEASURED)).astype(np.int8)[
                keep
            ],
            kind,
        )

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        return self.history(zone, signal, now, now + 1)

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        if not self.perfect_forecast:
            return super().forecast(zone, signal, now, hours)
        return as_forecast(self.history(zone, signal, now, now + hours * HOUR))


# --- synthetic model -----------------------------------------------------------------------

# (mean gCO2e/kWh, solar depth, wind depth, mean price, currency) per zone; profiles for zones
# not listed are derived from the zone name. Synthetic: shapes, not measurements.
PROFILES: dict[str, tuple[float, float, float, float, str]] = {
    "US-CAL-CISO": (230, 0.55, 0.15, 60, "USD"),
    "US-MIDA-PJM": (390, 0.08, 0.10, 45, "USD"),
    "US-TEX-ERCO": (380, 0.20, 0.35, 50, "USD"),
    "US-NY-NYIS": (250, 0.05, 0.05, 55, "USD"),
    "CA-ON": (75, 0.05, 0.25, 30, "CAD"),
    "DE-LU": (380, 0.30, 0.45, 95, "EUR"),
    "GB": (200, 0.15, 0.50, 100, "GBP"),
    "SE-SE3": (30, 0.05, 0.30, 55, "EUR"),
    "FR": (55, 0.10, 0.20, 95, "EUR"),
    "CN-NX": (520, 0.55, 0.20, 50, "CNY"),
    "CN-IM": (600, 0.10, 0.55, 45, "CNY"),
    "CN-AH": (760, 0.10, 0.05, 60, "CNY"),
}


def synthetic_values(
    zone: str, t0: int, hours: int, tz_offset_hours: float = 0.0
) -> tuple[np.ndarray, np.ndarray, str]:
    """Carbon (g/kWh) and price (<currency>/MWh) per hour from ``t0``: a diurnal solar dip, a
    multi-day wind cycle and deterministic weather noise, seeded by the zone name."""
    seed = zlib.crc32(zone.encode())
    mean, solar, wind, price, currency = PROFILES.get(
        zone, (150 + seed % 500, (seed >> 9) % 50 / 100, (seed >> 15) % 50 / 100, 60.0, "EUR")
    )
    t = (t0 + HOUR * np.arange(hours, dtype=np.int64)).astype(np.float64)
    local_hour = ((t / HOUR) + tz_offset_hours) % 24
    sun = np.clip(np.cos((local_hour - 13) / 24 * 2 * np.pi), 0, None) ** 1.5
    phase = (seed % 1000) / 1000 * 2 * np.pi
    gust = 0.5 + 0.5 * np.sin(t / (HOUR * 24 * 2.7) * 2 * np.pi + phase)
    gust = gust * (0.6 + 0.4 * np.sin(t / (HOUR * 17.3) * 2 * np.pi + 2 * phase))
    hour_idx = (t // HOUR).astype(np.int64)
    noise = (
        np.array([((zlib.crc32(f"{zone}:{h}".encode()) % 2001) - 1000) / 1000 for h in hour_idx])
        * 0.05
    )
    share = np.clip(solar * sun + wind * gust + noise, 0, 0.95)
    carbon = np.clip(mean * (1.35 - share * 1.2), 5, None)
    prices = price * (0.55 + 0.9 * (1 - share)) + 10 * np.sin((local_hour - 19) / 24 * 2 * np.pi)
    return carbon, prices, currency


class Synthetic(Provider):
    """The offline default: plausible, deterministic diurnal and weather-like patterns per zone
    (clearly labelled ``synthetic``), so that the demo and the lab work with no network."""

    kind = "synthetic"
    signals = frozenset({Signal.CARBON, Signal.PRICE})

    def __init__(
        self, name: str = "synthetic", tz_offsets: Mapping[str, float] | None = None
    ) -> None:
        super().__init__(name)
        self.tz_offsets = dict(tz_offsets or {})

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        t0, n = _hours(start, end)
        carbon, prices, currency = synthetic_values(zone, t0, n, self.tz_offsets.get(zone, 0.0))
        if signal is Signal.CARBON:
            return _hourly(
                zone,
                signal,
                CARBON_UNIT,
                self.name,
                t0,
                carbon,
                Quality.ESTIMATED,
                EmissionKind.AVERAGE,
            )
        return _hourly(
            zone, signal, price_unit(currency), self.name, t0, prices, Quality.ESTIMATED, None
        )

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        return self.history(zone, signal, now, now + 1)

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        return as_forecast(self.history(zone, signal, now, now + hours * HOUR))
