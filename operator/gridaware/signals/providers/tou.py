"""Time-of-use (TOU) tariffs as a price provider.

Many users pay no market price but a published tariff: peak/flat/valley periods by season and
day type, fixed ahead (Chinese provincial C&I schedules, Californian utility rates, Spain's
six-period access tariffs). Such a price is known for any hour, so this provider answers
history, latest and a forecast of any horizon, offline.

A tariff is read from a YAML file in the schema of the reference tariffs (``id``, ``zone``
(IANA), ``currency``, ``unit``, ``price_basis``, ``valid_from``/``valid_to``, ``seasons``
(months), ``day_types``, ``periods`` with ``from``/``to`` clock times and a ``ratio`` or
``price``, ``conditional_overrides``) or given inline in that schema or a compact one
(``schedule``: per season and day type, ``"HH:MM name value"`` entries, each running until the
next, the last one past midnight). Periods may cross midnight (``from: "22:00", to: "06:00"``
covers the end and the start of the same day type's day). Clock times are local: the price at
an instant is the period at that instant's wall-clock time in the tariff's zone, so daylight
saving days simply have 23 or 25 hours.

Day types are matched by ``days`` (``mon``..``sun``, ``holiday``) or, for files that state
them only in prose, by their well-known ids (``all_days``, ``weekday``, ``weekend``,
``working_day``, ``weekend_holiday``). Holidays are explicit dates (the tariff's ``holidays``
plus the provider's): on a holiday the day type that lists ``holiday`` applies, if any, and
overrides bound to holidays replace the base periods where they apply.

Prices are absolute (the tariff's currency per its unit) or ratios to a flat base price that
the user supplies (one number, or per month: ``{7: 0.65, "2025-08": 0.61, default: 0.6}``),
because ratio tariffs leave the base to the monthly purchase price. Series are in
``<currency>/MWh`` like every price signal, cut at every period change and every hour.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gridaware.api.signals import Quality, Series, Signal, price_unit
from gridaware.signals.base import Provider
from gridaware.signals.errors import NoDataError, SignalError

MINUTES = 24 * 60
HOUR = 3600
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY = "holiday"
FORECAST_HOURS = 48
# day types that the reference files describe only in prose, by id
KNOWN_DAY_TYPES: dict[str, tuple[str, ...]] = {
    "all_days": (*DAYS, HOLIDAY),
    "all": (*DAYS, HOLIDAY),
    "every_day": (*DAYS, HOLIDAY),
    "weekday": DAYS[:5],
    "weekdays": DAYS[:5],
    "weekend": DAYS[5:],
    "weekends": DAYS[5:],
    "working_day": DAYS[:5],
    "working_days": DAYS[:5],
    "weekend_holiday": (*DAYS[5:], HOLIDAY),
    "weekends_and_holidays": (*DAYS[5:], HOLIDAY),
    "holiday": (HOLIDAY,),
    "holidays": (HOLIDAY,),
}
UNITS = {"per kwh": 1000.0, "kwh": 1000.0, "per mwh": 1.0, "mwh": 1.0}


class TariffError(SignalError):
    """A tariff that cannot be read or does not describe every minute of every day."""


def clock_minutes(text: str, allow_24: bool = True) -> int:
    """Minutes after midnight of ``HH:MM`` (``24:00`` is the end of the day)."""
    hh, sep, mm = str(text).strip().partition(":")
    if not sep or not hh.isdigit() or not mm.isdigit() or len(mm) != 2:
        raise ValueError(f"clock time {text!r} is not HH:MM")
    minutes = int(hh) * 60 + int(mm)
    if int(mm) >= 60 or minutes > MINUTES or (minutes == MINUTES and not allow_24):
        raise ValueError(f"clock time {text!r} is outside 00:00..24:00")
    return minutes


class _Model(BaseModel):
    # documentation fields of the reference files (source, label_zh, derived, ...) are ignored
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Season(_Model):
    id: str
    months: list[int]

    @field_validator("months")
    @classmethod
    def _months(cls, months: list[int]) -> list[int]:
        if not months or any(not 1 <= m <= 12 for m in months):
            raise ValueError("months must be numbers 1..12")
        return months


class DayType(_Model):
    id: str
    rule: str = ""
    days: list[str] | None = None

    def members(self) -> tuple[str, ...]:
        if self.days is not None:
            bad = [d for d in self.days if d not in (*DAYS, HOLIDAY)]
            if bad:
                raise ValueError(f"day type {self.id}: unknown days {bad} (mon..sun, holiday)")
            return tuple(self.days)
        if self.id in KNOWN_DAY_TYPES:
            return KNOWN_DAY_TYPES[self.id]
        raise ValueError(
            f"day type {self.id}: say which days it covers (days: [mon, ..., holiday])"
        )


class Window(_Model):
    """A named clock-time window with its ratio or price (``None``: periods only)."""

    name: str
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    ratio: float | None = None
    price: float | None = None

    def minutes(self) -> list[int]:
        """The minutes of the day it covers; ``from`` after ``to`` wraps past midnight."""
        a, b = clock_minutes(self.start, allow_24=False), clock_minutes(self.end)
        if a == b:
            raise ValueError(f"period {self.name} {self.start}-{self.end} is empty")
        return list(range(a, b)) if a < b else [*range(a, MINUTES), *range(b)]


class Period(Window):
    season: str
    day_type: str


class Override(_Model):
    """Windows that replace the base periods on some days: holidays (``on_holidays: true``) or
    listed dates; overrides whose condition is only prose apply when the provider binds them."""

    applies_when: str = ""
    on_holidays: bool = False  # not ``on: holidays``: YAML 1.1 reads the key ``on`` as true
    dates: list[dt.date] = Field(default_factory=list)
    periods: list[Window]


class Tariff(_Model):
    id: str = "tariff"
    name: str = ""
    zone: str
    currency: str
    unit: str = "per kWh"
    price_basis: Literal["ratio_to_flat", "absolute", "periods_only"]
    valid_from: dt.date | None = None
    valid_to: dt.date | None = None
    seasons: list[Season]
    day_types: list[DayType]
    periods: list[Period]
    holidays: list[dt.date] = Field(default_factory=list)
    conditional_overrides: list[Override] = Field(default_factory=list)

    @field_validator("zone")
    @classmethod
    def _zone(cls, zone: str) -> str:
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {zone!r}") from None
        return zone

    @field_validator("unit")
    @classmethod
    def _unit(cls, unit: str) -> str:
        if unit.strip().lower() not in UNITS:
            raise ValueError(f"unit {unit!r}: use 'per kWh' or 'per MWh'")
        return unit

    @model_validator(mode="after")
    def _complete(self) -> Tariff:
        months = sorted(m for s in self.seasons for m in s.months)
        if months != list(range(1, 13)):
            raise ValueError("the seasons' months must cover 1..12 exactly once")
        weekdays = sorted(d for t in self.day_types for d in t.members() if d != HOLIDAY)
        if weekdays != sorted(DAYS):
            raise ValueError("the day types must cover each of mon..sun exactly once")
        if sum(HOLIDAY in t.members() for t in self.day_types) > 1:
            raise ValueError("at most one day type may cover holidays")
        if self.valid_from and self.valid_to and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must come after valid_from")
        for season in self.seasons:
            for day_type in self.day_types:
                rows = [
                    p for p in self.periods if (p.season, p.day_type) == (season.id, day_type.id)
                ]
                _day_table(rows, f"{season.id}/{day_type.id}")
        known = {(s.id, t.id) for s in self.seasons for t in self.day_types}
        stray = [p for p in self.periods if (p.season, p.day_type) not in known]
        if stray:
            raise ValueError(f"period {stray[0].name} names an unknown season or day type")
        return self


def _day_table(windows: Sequence[Window], label: str) -> list[int]:
    """Index into ``windows`` for every minute of a day they must tile exactly."""
    table = [-1] * MINUTES
    for i, w in enumerate(windows):
        for m in w.minutes():
            if table[m] >= 0:
                raise ValueError(f"{label}: periods overlap at {m // 60:02d}:{m % 60:02d}")
            table[m] = i
    if -1 in table:
        m = table.index(-1)
        raise ValueError(f"{label}: no period covers {m // 60:02d}:{m % 60:02d}")
    return table


# --- the compact inline form ---------------------------------------------------------------


def _entry(raw: Any) -> tuple[str, str, float | None]:
    """``"HH:MM name [value]"`` or ``[HH:MM, name, value]`` as (time, name, value)."""
    parts = raw.split() if isinstance(raw, str) else list(raw) if isinstance(raw, list) else []
    if len(parts) not in (2, 3):
        raise ValueError(f"schedule entry {raw!r} is not 'HH:MM name [value]'")
    value = float(parts[2]) if len(parts) == 3 and parts[2] is not None else None
    return str(parts[0]), str(parts[1]), value


def expand_compact(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The full tariff schema from the compact one (``basis``, ``seasons: {id: months}``,
    ``days: {id: [mon, ...]}``, ``schedule``)."""
    basis = {"ratio": "ratio_to_flat", "absolute": "absolute", "periods": "periods_only"}
    seasons = raw.get("seasons") or {"all_year": list(range(1, 13))}
    days = raw.get("days") or {"all_days": [*DAYS, HOLIDAY]}
    if not isinstance(seasons, Mapping) or not isinstance(days, Mapping):
        raise ValueError("compact tariff: seasons and days map ids to months and days")
    schedule = raw["schedule"]
    value_key = "price" if raw.get("basis", "ratio") == "absolute" else "ratio"
    periods = []
    for season in seasons:
        # schedule: {season: {days: [...]}}, {season: [...]}, {days: [...]} or [...]
        per_season = schedule
        if isinstance(schedule, Mapping) and season in schedule:
            per_season = schedule[season]
        for day in days:
            entries = per_season
            if isinstance(per_season, Mapping):
                entries = per_season.get(day)
            if not isinstance(entries, list) or not entries:
                raise ValueError(f"compact tariff: no schedule for season {season}, days {day}")
            parsed = sorted(_entry(e) for e in entries)
            for i, (at, name, value) in enumerate(parsed):
                # each entry runs until the next; the last one wraps past midnight
                start, end = (at, parsed[(i + 1) % len(parsed)][0])
                if len(parsed) == 1:
                    start, end = "00:00", "24:00"
                periods.append(
                    {
                        "season": str(season),
                        "day_type": str(day),
                        "name": name,
                        "from": start,
                        "to": end,
                        value_key: value,
                    }
                )
    full = {k: v for k, v in raw.items() if k not in ("basis", "seasons", "days", "schedule")}
    return {
        **full,
        "price_basis": basis.get(str(raw.get("basis", "ratio")), str(raw.get("basis"))),
        "seasons": [{"id": str(s), "months": m} for s, m in seasons.items()],
        "day_types": [{"id": str(d), "days": list(v)} for d, v in days.items()],
        "periods": periods,
    }


def load_tariff(source: Path | Mapping[str, Any]) -> Tariff:
    """A tariff from a YAML file or a mapping, full or compact; TariffError says what is wrong."""
    where = str(source) if isinstance(source, Path) else "inline tariff"
    try:
        raw = (
            yaml.safe_load(source.read_text(encoding="utf-8"))
            if isinstance(source, Path)
            else source
        )
        if not isinstance(raw, Mapping):
            raise TariffError(f"{where}: a tariff is a mapping")
        return Tariff.model_validate(expand_compact(raw) if "schedule" in raw else raw)
    except OSError as exc:
        raise TariffError(f"cannot read tariff {where}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise TariffError(f"tariff {where} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise TariffError(f"tariff {where}: {loc + ': ' if loc else ''}{first['msg']}") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise TariffError(f"tariff {where}: {exc}") from None


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """What a tariff says for one instant."""

    period: str
    value: float  # <currency>/MWh
    quality: Quality
    day: dt.date  # the local date


@dataclass(frozen=True)
class _Choice:
    name: str
    ratio: float | None
    price: float | None


class BasePrice:
    """The flat price ratios refer to: one number or per month (``7`` or ``"2025-07"`` keys,
    ``default`` for the rest), in the tariff's unit."""

    def __init__(self, spec: float | Mapping[Any, Any] | None) -> None:
        self.default: float | None = None
        self.by_month: dict[int, float] = {}
        self.by_year_month: dict[tuple[int, int], float] = {}
        if spec is None:
            return
        if not isinstance(spec, Mapping):
            self.default = _finite(spec)
            return
        for key, value in spec.items():
            self._add(str(key), _finite(value))

    def _add(self, key: str, value: float) -> None:
        if key == "default":
            self.default = value
        elif key.isdigit() and 1 <= int(key) <= 12:
            self.by_month[int(key)] = value
        elif len(key) == 7 and key[4] == "-" and key[:4].isdigit() and key[5:].isdigit():
            self.by_year_month[(int(key[:4]), int(key[5:]))] = value
        else:
            raise TariffError(f"base_price key {key!r}: use 1..12, YYYY-MM or default")

    @property
    def empty(self) -> bool:
        return self.default is None and not self.by_month and not self.by_year_month

    def at(self, year: int, month: int) -> tuple[float, bool] | None:
        """(base, explicit) for a month; None when no base is known."""
        if (year, month) in self.by_year_month:
            return self.by_year_month[(year, month)], True
        if month in self.by_month:
            return self.by_month[month], True
        return (self.default, False) if self.default is not None else None


class TariffClock:
    """A loaded tariff with the user's base price, holidays and value overrides: the period
    and price at any instant."""

    def __init__(
        self,
        tariff: Tariff,
        base_price: BasePrice | None = None,
        holidays: Sequence[dt.date] = (),
        period_values: Mapping[str, float] | None = None,
        holiday_overrides: Sequence[int] = (),
        override_dates: Mapping[int, Sequence[dt.date]] | None = None,
    ) -> None:
        self.tariff = tariff
        self.tz = zoneinfo.ZoneInfo(tariff.zone)
        self.base = base_price or BasePrice(None)
        self.factor = UNITS[tariff.unit.strip().lower()]
        self.holidays = frozenset([*tariff.holidays, *holidays])
        values = dict(period_values or {})
        self.ratio_basis = tariff.price_basis == "ratio_to_flat" or (
            tariff.price_basis == "periods_only" and not self.base.empty
        )
        self._day_types = {d: t.id for t in tariff.day_types for d in t.members()}
        self._season = {m: s.id for s in tariff.seasons for m in s.months}
        self._choices: list[_Choice] = []
        self._tables: dict[tuple[str, str], list[int]] = {}
        for season in tariff.seasons:
            for day_type in tariff.day_types:
                rows = [
                    p for p in tariff.periods if (p.season, p.day_type) == (season.id, day_type.id)
                ]
                index = [self._choice(w, season.id, values) for w in rows]
                table = _day_table(rows, f"{season.id}/{day_type.id}")
                self._tables[(season.id, day_type.id)] = [index[i] for i in table]
        self._overrides = self._bind_overrides(holiday_overrides, override_dates or {}, values)
        self._check_values()

    def _choice(self, window: Window, season: str, values: Mapping[str, float]) -> int:
        own = window.ratio if self.ratio_basis else window.price
        if self.tariff.price_basis == "periods_only":
            own = None
        given = values.get(f"{season}.{window.name}", values.get(window.name))
        value = given if given is not None else own
        choice = _Choice(
            window.name, value if self.ratio_basis else None, None if self.ratio_basis else value
        )
        self._choices.append(choice)
        return len(self._choices) - 1

    def _bind_overrides(
        self,
        on_holidays: Sequence[int],
        on_dates: Mapping[int, Sequence[dt.date]],
        values: Mapping[str, float],
    ) -> list[tuple[frozenset[dt.date] | None, dict[int, int]]]:
        """(dates or None for holidays, {minute: choice}) per override in force."""
        out: list[tuple[frozenset[dt.date] | None, dict[int, int]]] = []
        overrides = self.tariff.conditional_overrides
        for i in sorted({*on_holidays, *on_dates}):
            if not 0 <= i < len(overrides):
                raise TariffError(f"{self.tariff.id}: no conditional_overrides[{i}]")
        for i, ov in enumerate(overrides):
            minutes: dict[int, int] = {}
            for w in ov.periods:
                choice = self._choice(w, "", values)
                minutes.update((m, choice) for m in w.minutes())
            if ov.on_holidays or i in on_holidays:
                out.append((None, minutes))
            dates = [*ov.dates, *on_dates.get(i, ())]
            if dates:
                out.append((frozenset(dates), minutes))
        return out

    def _check_values(self) -> None:
        missing = sorted({c.name for c in self._choices if c.ratio is None and c.price is None})
        if missing:
            what = "ratio" if self.ratio_basis else "price"
            raise TariffError(
                f"{self.tariff.id}: no {what} for period(s) {', '.join(missing)}; give them in "
                "options.period_values" + (" (and a base_price)" if not self.ratio_basis else "")
            )
        if self.ratio_basis and self.base.empty:
            raise TariffError(
                f"{self.tariff.id}: prices are ratios to a flat price; set options.base_price "
                f"(in {self.tariff.currency} {self.tariff.unit}, one number or per month)"
            )

    def valid(self, day: dt.date) -> bool:
        t = self.tariff
        return (t.valid_from is None or day >= t.valid_from) and (
            t.valid_to is None or day < t.valid_to
        )

    def day_type(self, day: dt.date) -> str:
        if day in self.holidays and HOLIDAY in self._day_types:
            return self._day_types[HOLIDAY]
        return self._day_types[DAYS[day.weekday()]]

    def slot(self, t: float) -> Slot | None:
        """Period and price at epoch second ``t``; None when no base price is known then."""
        local = dt.datetime.fromtimestamp(t, self.tz)
        day = local.date()
        minute = local.hour * 60 + local.minute
        choice = self._tables[(self._season[local.month], self.day_type(day))][minute]
        for dates, minutes in self._overrides:
            hit = day in self.holidays if dates is None else day in dates
            if hit and minute in minutes:
                choice = minutes[minute]
        c = self._choices[choice]
        if c.price is not None:
            return Slot(c.name, c.price * self.factor, Quality.MEASURED, day)
        base = self.base.at(local.year, local.month)
        if base is None or c.ratio is None:
            return None
        value, explicit = base
        quality = Quality.MEASURED if explicit else Quality.ESTIMATED
        return Slot(c.name, c.ratio * value * self.factor, quality, day)

    @property
    def step(self) -> int:
        """Seconds between instants at which the price can change: the clock times' common
        divisor with 15 minutes (every UTC offset and DST shift is a multiple of 15 minutes)."""
        g = 15
        windows: list[Window] = [*self.tariff.periods]
        windows += [w for ov in self.tariff.conditional_overrides for w in ov.periods]
        for w in windows:
            for text in (w.start, w.end):
                g = math.gcd(g, clock_minutes(text))
        return g * 60


# --- the provider --------------------------------------------------------------------------


def _finite(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TariffError(f"expected a number, got {value!r:.40}")
    if not math.isfinite(value):
        raise TariffError(f"expected a finite number, got {value!r}")
    return float(value)


def _dates(values: Any, what: str) -> list[dt.date]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise TariffError(f"{what} must be a list of dates")
    try:
        return [v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v)) for v in values]
    except ValueError as exc:
        raise TariffError(f"{what}: {exc}") from None


class TimeOfUse(Provider):
    """Prices from a TOU tariff (``options.tariff``: a file path or an inline mapping)."""

    kind = "tou"
    signals = frozenset({Signal.PRICE})

    def __init__(
        self,
        name: str,
        clock: TariffClock,
        zones: Sequence[str] = (),
        ignore_validity: bool = False,
    ) -> None:
        super().__init__(name)
        self.clock = clock
        self.zones = frozenset(zones)
        self.ignore_validity = ignore_validity
        self.unit = price_unit(clock.tariff.currency)

    @classmethod
    def from_options(cls, name: str, opts: Mapping[str, Any]) -> TimeOfUse:
        """Build from a provider's ``options`` in the feeds configuration."""
        spec = opts.get("tariff")
        if spec is None:
            raise TariffError(f"provider {name}: tou needs options.tariff (a file or a mapping)")
        tariff = load_tariff(spec if isinstance(spec, Mapping) else Path(str(spec)))
        try:
            return cls._configured(name, tariff, opts)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise TariffError(f"provider {name}: bad tou options ({exc})") from None

    @classmethod
    def _configured(cls, name: str, tariff: Tariff, opts: Mapping[str, Any]) -> TimeOfUse:
        values = {str(k): _finite(v) for k, v in (opts.get("period_values") or {}).items()}
        binds = opts.get("apply_overrides") or []
        on_holidays = [int(b["index"]) for b in binds if b.get("on_holidays") is True]
        on_dates = {
            int(b["index"]): _dates(b.get("dates"), f"{name}: apply_overrides dates")
            for b in binds
            if b.get("dates")
        }
        zones = opts.get("zones") or []
        if not isinstance(zones, list) or not all(isinstance(z, str) for z in zones):
            raise TariffError(f"provider {name}: options.zones must be a list of zone names")
        clock = TariffClock(
            tariff,
            BasePrice(opts.get("base_price")),
            _dates(opts.get("holidays"), f"{name}: holidays"),
            values,
            on_holidays,
            on_dates,
        )
        return cls(name, clock, zones, opts.get("ignore_validity") is True)

    def _serves(self, zone: str) -> None:
        if self.zones and zone not in self.zones:
            raise NoDataError(f"{self.name}: tariff {self.clock.tariff.id} is not for {zone}")

    def segments(self, start: float, end: float) -> list[tuple[int, int, float, Quality, str]]:
        """(start, length, value, quality, period) from ``start`` to ``end``, cut at every
        change of period or price and at every hour; instants outside the tariff's validity
        (unless ignored) or without a base price are left out."""
        step = self.clock.step
        t = int(start) // step * step
        out: list[tuple[int, int, float, Quality, str]] = []
        valid: dict[dt.date, bool] = {}
        while t < end:
            slot = self.clock.slot(t)
            if slot is not None and not self.ignore_validity:
                if slot.day not in valid:
                    valid[slot.day] = self.clock.valid(slot.day)
                slot = slot if valid[slot.day] else None
            if slot is not None:
                last = out[-1] if out else None
                joins = (
                    last is not None
                    and last[0] + last[1] == t
                    and (last[2], last[3], last[4]) == (slot.value, slot.quality, slot.period)
                    and t % HOUR != 0
                )
                if joins and last is not None:
                    out[-1] = (last[0], last[1] + step, last[2], last[3], last[4])
                else:
                    out.append((t, step, slot.value, slot.quality, slot.period))
            t += step
        return out

    def _series(self, zone: str, start: float, end: float) -> Series:
        self._serves(zone)
        segs = self.segments(start, end)
        if not segs:
            raise NoDataError(
                f"{self.name}: tariff {self.clock.tariff.id} gives no price for {zone} then "
                "(outside its validity, or no base_price for those months)"
            )
        return _build(zone, self.unit, self.name, segs)

    def history(self, zone: str, signal: Signal, start: float, end: float) -> Series:
        self._require(signal)
        return self._series(zone, start, end)

    def latest(self, zone: str, signal: Signal, now: float) -> Series:
        self._require(signal)
        return self._series(zone, now, now + 1)

    def forecast(self, zone: str, signal: Signal, now: float, hours: int) -> Series:
        """A tariff is known ahead: the whole horizon (at least 48 h) from the current hour."""
        self._require(signal)
        start = now // HOUR * HOUR
        return self._series(zone, start, start + max(hours, FORECAST_HOURS) * HOUR)


def _build(
    zone: str, unit: str, source: str, segs: list[tuple[int, int, float, Quality, str]]
) -> Series:
    # built directly: the values come from validated configuration, not from a feed, and a
    # tariff in a small currency unit may exceed the plausibility bound meant for feeds
    starts: npt.NDArray[np.int64] = np.array([s[0] for s in segs], dtype=np.int64)
    return Series(
        zone,
        Signal.PRICE,
        unit,
        source,
        starts,
        np.array([s[1] for s in segs], dtype=np.int32),
        np.array([s[2] for s in segs], dtype=np.float64),
        np.array([int(s[3]) for s in segs], dtype=np.int8),
        None,
        0.0,
    )
