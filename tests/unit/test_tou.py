"""The time-of-use tariff provider: the reference tariffs in ../shared/data/tou-tariffs hour by
hour for a year against an independent lookup, hand-read spot checks, daylight-saving days,
holidays, midnight-crossing periods, base prices, validity, and use in a fallback chain."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import zoneinfo
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gridaware.api.feeds import FeedsConfig
from gridaware.api.signals import Quality, Signal
from gridaware.signals import factory
from gridaware.signals.errors import NoDataError, SignalError
from gridaware.signals.providers.tou import TariffError, TimeOfUse
from tests.conftest import REPO, SHARED_DATA

TARIFFS = SHARED_DATA / "tou-tariffs"
EXAMPLES = REPO / "examples" / "tariffs"
HOUR = 3600
BASE = 0.6  # a flat price for the ratio tariffs (the policies leave it to the monthly price)
PERIODS_ONLY = {"peak": 1.5, "flat": 1.0, "valley": 0.5}  # ratios the test chooses
# a year inside each file's validity (files without dates: any year)
YEARS = {
    "cn-anhui-ci-tou-2025.yaml": "2025-07-01",
    "cn-gansu-ci-tou-periods-2024.yaml": "2024-08-01",
    "cn-guangdong-ci-tou-2021.yaml": "2022-01-01",
    "cn-guizhou-ci-tou-2023.yaml": "2024-01-01",
    "cn-inner-mongolia-mengxi-ci-tou-2023.yaml": "2024-01-01",
    "cn-jiangsu-ci-tou-2025.yaml": "2025-06-01",
    "cn-ningxia-tou-periods-2023.yaml": "2024-01-01",
    "es-3.0td-torres-energia-2024q2.yaml": "2023-07-01",
    "us-pge-b20-2022.yaml": "2022-06-01",
    "us-sce-tou8-option-d-2024.yaml": "2024-10-01",
}
needs_tariffs = pytest.mark.skipif(not TARIFFS.is_dir(), reason="shared tariffs absent")


def shared() -> list[str]:
    return sorted(p.name for p in TARIFFS.glob("*.yaml")) if TARIFFS.is_dir() else []


def options(name: str, **extra: Any) -> dict[str, Any]:
    raw = yaml.safe_load((TARIFFS / name).read_text(encoding="utf-8"))
    opts: dict[str, Any] = {"tariff": str(TARIFFS / name), **extra}
    if raw["price_basis"] != "absolute":
        opts.setdefault("base_price", BASE)
    if raw["price_basis"] == "periods_only":
        opts.setdefault("period_values", PERIODS_ONLY)
    return opts


def at(provider: TimeOfUse, local: str) -> tuple[str, float]:
    """(period, price per kWh) at a local wall-clock time of the tariff's zone."""
    tz = provider.clock.tz
    when = dt.datetime.fromisoformat(local).replace(tzinfo=tz).timestamp()
    (seg,) = provider.segments(when, when + 1)
    return seg[4], round(seg[2] / 1000, 6)


# --- an independent lookup, straight from the YAML ------------------------------------------


def reference(raw: dict[str, Any], local: dt.datetime) -> str:
    """The period name at a local time, read from the file's rows without the provider."""
    season = next(s["id"] for s in raw["seasons"] if local.month in s["months"])
    weekend = local.weekday() >= 5
    day_types = [d["id"] for d in raw["day_types"]]
    if len(day_types) == 1:
        day_type = day_types[0]
    else:
        day_type = next(d for d in day_types if ("weekend" in d) == weekend)
    minute = local.hour * 60 + local.minute
    for p in raw["periods"]:
        lo = int(p["from"][:2]) * 60 + int(p["from"][3:])
        hi = int(p["to"][:2]) * 60 + int(p["to"][3:])
        if (p["season"], p["day_type"]) == (season, day_type) and lo <= minute < hi:
            return str(p["name"])
    raise AssertionError(f"no row for {local}")


@needs_tariffs
@pytest.mark.parametrize("name", shared())
def test_every_hour_of_a_year_has_the_right_period(name: str) -> None:
    raw = yaml.safe_load((TARIFFS / name).read_text(encoding="utf-8"))
    provider = TimeOfUse.from_options("tou", options(name))
    tz = zoneinfo.ZoneInfo(raw["zone"])
    first = dt.datetime.fromisoformat(YEARS[name]).replace(tzinfo=tz)
    start = int(first.timestamp())
    end = int(first.replace(year=first.year + 1).timestamp())
    segs = provider.segments(start, end)
    assert segs[0][0] == start and segs[-1][0] + segs[-1][1] == end
    assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(segs)), "a gap"
    assert max(s[1] for s in segs) <= HOUR
    hours = 0
    for s0, _length, value, _quality, period in segs:
        assert period == reference(raw, dt.datetime.fromtimestamp(s0, tz)), s0
        assert value > 0
        hours += s0 % HOUR == 0
    assert hours in (8760, 8784)


SPOT = [
    # file, local time, period, price per kWh (ratio x 0.6 for the ratio tariffs)
    ("cn-anhui-ci-tou-2025.yaml", "2025-08-10T17:00", "peak", 1.843 * BASE),
    ("cn-anhui-ci-tou-2025.yaml", "2025-12-20T23:30", "valley", 0.382 * BASE),
    ("cn-anhui-ci-tou-2025.yaml", "2026-03-03T07:00", "peak", 1.74 * BASE),
    ("cn-anhui-ci-tou-2025.yaml", "2026-03-03T22:30", "flat", BASE),
    ("cn-gansu-ci-tou-periods-2024.yaml", "2024-09-02T12:00", "valley", 0.5 * BASE),
    ("cn-gansu-ci-tou-periods-2024.yaml", "2024-09-02T07:00", "peak", 1.5 * BASE),
    ("cn-gansu-ci-tou-periods-2024.yaml", "2024-09-02T23:30", "flat", BASE),
    ("cn-guangdong-ci-tou-2021.yaml", "2022-08-01T11:30", "critical_peak", 2.125 * BASE),
    ("cn-guangdong-ci-tou-2021.yaml", "2022-01-10T11:30", "peak", 1.7 * BASE),
    ("cn-guangdong-ci-tou-2021.yaml", "2022-01-10T03:00", "valley", 0.38 * BASE),
    ("cn-guizhou-ci-tou-2023.yaml", "2024-05-05T12:00", "peak", 1.6 * BASE),
    ("cn-guizhou-ci-tou-2023.yaml", "2024-05-05T07:59", "valley", 0.4 * BASE),
    ("cn-guizhou-ci-tou-2023.yaml", "2024-05-05T23:00", "flat", BASE),
    ("cn-inner-mongolia-mengxi-ci-tou-2023.yaml", "2024-07-01T14:00", "deep_valley", 0.352 * BASE),
    (
        "cn-inner-mongolia-mengxi-ci-tou-2023.yaml",
        "2024-07-01T20:00",
        "critical_peak",
        1.848 * BASE,
    ),
    ("cn-inner-mongolia-mengxi-ci-tou-2023.yaml", "2024-02-01T02:00", "valley", 0.48 * BASE),
    ("cn-inner-mongolia-mengxi-ci-tou-2023.yaml", "2024-02-01T19:00", "peak", 1.68 * BASE),
    ("cn-jiangsu-ci-tou-2025.yaml", "2025-07-01T12:00", "valley", 0.35 * BASE),
    ("cn-jiangsu-ci-tou-2025.yaml", "2025-07-01T15:00", "peak", 1.8 * BASE),
    ("cn-jiangsu-ci-tou-2025.yaml", "2025-10-01T14:30", "flat", BASE),
    ("cn-jiangsu-ci-tou-2025.yaml", "2025-10-01T03:00", "valley", 0.35 * BASE),
    ("cn-ningxia-tou-periods-2023.yaml", "2024-06-01T10:00", "valley", 0.5 * BASE),
    ("cn-ningxia-tou-periods-2023.yaml", "2024-06-01T08:00", "peak", 1.5 * BASE),
    ("es-3.0td-torres-energia-2024q2.yaml", "2024-01-15T10:00", "P1", 0.124877),
    ("es-3.0td-torres-energia-2024q2.yaml", "2024-01-13T10:00", "P6", 0.076503),  # Saturday
    ("es-3.0td-torres-energia-2024q2.yaml", "2024-04-15T10:00", "P4", 0.092736),
    ("es-3.0td-torres-energia-2024q2.yaml", "2024-06-03T08:30", "P4", 0.092736),
    ("es-3.0td-torres-energia-2024q2.yaml", "2024-03-05T19:00", "P2", 0.118341),
    ("us-pge-b20-2022.yaml", "2022-07-12T17:00", "peak", 0.18675),
    ("us-pge-b20-2022.yaml", "2022-07-12T15:00", "part_peak", 0.15333),
    ("us-pge-b20-2022.yaml", "2023-04-10T10:00", "super_off_peak", 0.07297),
    ("us-pge-b20-2022.yaml", "2022-12-25T18:00", "peak", 0.16684),  # every day, holidays too
    ("us-sce-tou8-option-d-2024.yaml", "2025-07-14T17:00", "on_peak", 0.15186),  # Monday
    ("us-sce-tou8-option-d-2024.yaml", "2025-07-12T17:00", "mid_peak", 0.14199),  # Saturday
    ("us-sce-tou8-option-d-2024.yaml", "2025-01-15T10:00", "super_off_peak", 0.08973),
    ("us-sce-tou8-option-d-2024.yaml", "2025-01-15T22:00", "off_peak", 0.12331),
]


@needs_tariffs
@pytest.mark.parametrize(
    ("name", "local", "period", "price"),
    [pytest.param(*row, id=f"{row[0][:12]}-{row[1]}") for row in SPOT],
)
def test_hand_read_spot_checks(name: str, local: str, period: str, price: float) -> None:
    provider = TimeOfUse.from_options("tou", options(name))
    assert at(provider, local) == (period, pytest.approx(price, abs=1e-6))


@needs_tariffs
def test_customer_class_and_voltage_values_override_the_default_column() -> None:
    jiangsu = TimeOfUse.from_options(
        "tou", options("cn-jiangsu-ci-tou-2025.yaml", period_values={"peak": 1.6})
    )
    assert at(jiangsu, "2025-07-01T15:00") == ("peak", pytest.approx(1.6 * BASE))
    pge = TimeOfUse.from_options(
        "tou", options("us-pge-b20-2022.yaml", period_values={"summer.peak": 0.16096})
    )
    assert at(pge, "2022-07-12T17:00") == ("peak", 0.16096)  # transmission voltage
    assert at(pge, "2022-12-12T17:00") == ("peak", 0.16684)  # winter keeps secondary


# --- holidays ---------------------------------------------------------------------------------


@needs_tariffs
def test_spain_national_holiday_is_p6_all_day() -> None:
    provider = TimeOfUse.from_options(
        "tou", options("es-3.0td-torres-energia-2024q2.yaml", holidays=["2024-01-01"])
    )
    assert at(provider, "2024-01-01T10:00") == ("P6", 0.076503)  # a Monday
    assert at(provider, "2024-01-08T10:00") == ("P1", 0.124877)  # the Monday after


@needs_tariffs
def test_anhui_holiday_deep_valley_when_bound_to_holidays() -> None:
    bound = options(
        "cn-anhui-ci-tou-2025.yaml",
        holidays=["2025-10-01", "2025-10-02"],
        apply_overrides=[{"index": 0, "on_holidays": True}],
    )
    provider = TimeOfUse.from_options("tou", bound)
    assert at(provider, "2025-10-01T12:00") == ("deep_valley", pytest.approx(0.3056 * BASE))
    assert at(provider, "2025-10-01T14:30") == ("deep_valley", pytest.approx(0.3056 * BASE))
    assert at(provider, "2025-10-01T15:00") == ("flat", pytest.approx(BASE))
    assert at(provider, "2025-10-08T12:00") == ("valley", pytest.approx(0.382 * BASE))
    unbound = TimeOfUse.from_options("tou", options("cn-anhui-ci-tou-2025.yaml"))
    assert at(unbound, "2025-10-01T12:00")[0] == "valley"


def compact(**extra: Any) -> dict[str, Any]:
    """A small absolute tariff in the compact form (EUR per kWh, Europe/Berlin)."""
    return {
        "zone": "Europe/Berlin",
        "currency": "EUR",
        "basis": "absolute",
        "days": {"work": ["mon", "tue", "wed", "thu", "fri"], "off": ["sat", "sun", "holiday"]},
        "schedule": {
            "work": ["00:00 night 0.10", "02:00 early 0.12", "03:00 day 0.30", "22:00 late 0.20"],
            "off": ["22:00 valley 0.08", "06:00 flat 0.15"],  # the valley crosses midnight
        },
        **extra,
    }


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        pytest.param("2024-12-24T12:00", ("day", 0.30), id="tuesday"),
        pytest.param("2024-12-25T12:00", ("flat", 0.15), id="holiday-wednesday"),
        pytest.param("2024-12-25T23:00", ("valley", 0.08), id="holiday-evening-valley"),
        pytest.param("2024-12-26T01:59", ("night", 0.10), id="workday-after-holiday"),
        pytest.param("2024-12-28T05:59", ("valley", 0.08), id="saturday-early-valley"),
        pytest.param("2024-12-28T06:00", ("flat", 0.15), id="saturday-valley-ends"),
        pytest.param("2024-12-28T22:00", ("valley", 0.08), id="saturday-valley-starts"),
    ],
)
def test_compact_holidays_and_midnight_crossing(local: str, expected: tuple[str, float]) -> None:
    provider = TimeOfUse.from_options("tou", {"tariff": compact(holidays=["2024-12-25"])})
    assert at(provider, local) == expected


def test_full_form_period_crossing_midnight() -> None:
    full = {
        "zone": "Asia/Shanghai",
        "currency": "CNY",
        "price_basis": "ratio_to_flat",
        "seasons": [{"id": "all", "months": list(range(1, 13))}],
        "day_types": [{"id": "all_days"}],
        "periods": [
            {
                "season": "all",
                "day_type": "all_days",
                "name": "valley",
                "from": "23:00",
                "to": "07:00",
                "ratio": 0.4,
            },
            {
                "season": "all",
                "day_type": "all_days",
                "name": "flat",
                "from": "07:00",
                "to": "23:00",
                "ratio": 1.0,
            },
        ],
    }
    provider = TimeOfUse.from_options("tou", {"tariff": full, "base_price": 0.5})
    assert at(provider, "2024-03-01T23:30") == ("valley", 0.2)
    assert at(provider, "2024-03-01T06:59") == ("valley", 0.2)
    assert at(provider, "2024-03-01T07:00") == ("flat", 0.5)


# --- daylight saving --------------------------------------------------------------------------


def day_segments(provider: TimeOfUse, day: str) -> list[tuple[str, float]]:
    """(period, hours) of one local day, in order, merged across hour cuts."""
    tz = provider.clock.tz
    d = dt.date.fromisoformat(day)
    start = dt.datetime.combine(d, dt.time(), tz).timestamp()
    end = dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), tz).timestamp()
    out: list[tuple[str, float]] = []
    for _s, length, _v, _q, period in provider.segments(start, end):
        if out and out[-1][0] == period:
            out[-1] = (period, out[-1][1] + length / HOUR)
        else:
            out.append((period, length / HOUR))
    return out


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        pytest.param(
            "2024-03-28",
            [("night", 2), ("early", 1), ("day", 19), ("late", 2)],
            id="ordinary-thursday",
        ),
        pytest.param(
            "2024-03-29",  # Good Friday is a workday in this tariff: no holidays listed
            [("night", 2), ("early", 1), ("day", 19), ("late", 2)],
            id="friday-before-spring-forward",
        ),
        pytest.param(
            "2024-10-28",
            [("night", 2), ("early", 1), ("day", 19), ("late", 2)],
            id="monday-after-fall-back",
        ),
    ],
)
def test_ordinary_days_have_24_hours(day: str, expected: list[tuple[str, float]]) -> None:
    provider = TimeOfUse.from_options("tou", {"tariff": compact()})
    assert day_segments(provider, day) == expected


def test_spring_forward_day_skips_the_missing_hour() -> None:
    # Europe/Berlin 2024-03-31: 02:00 -> 03:00; a Sunday, so make every day a workday
    every = compact(days={"work": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})
    every["schedule"] = {"work": every["schedule"]["work"]}
    provider = TimeOfUse.from_options("tou", {"tariff": every})
    assert day_segments(provider, "2024-03-31") == [("night", 2), ("day", 19), ("late", 2)]
    assert day_segments(provider, "2024-10-27") == [
        ("night", 2),
        ("early", 2),  # 02:00-03:00 happens twice
        ("day", 19),
        ("late", 2),
    ]


@needs_tariffs
@pytest.mark.parametrize(
    ("day", "peak_start_utc", "hours"),
    [
        pytest.param("2023-03-11", "2023-03-12T00:00Z", 24, id="day-before-spring-forward"),
        pytest.param("2023-03-12", "2023-03-12T23:00Z", 23, id="spring-forward-pdt"),
        pytest.param("2022-11-06", "2022-11-07T00:00Z", 25, id="fall-back-pst"),
    ],
)
def test_pge_peak_follows_local_time_across_dst(day: str, peak_start_utc: str, hours: int) -> None:
    provider = TimeOfUse.from_options("tou", options("us-pge-b20-2022.yaml"))
    segments = day_segments(provider, day)
    assert sum(h for _p, h in segments) == hours
    tz = provider.clock.tz
    d = dt.date.fromisoformat(day)
    start = dt.datetime.combine(d, dt.time(), tz).timestamp()
    peak = [s for s in provider.segments(start, start + hours * HOUR) if s[4] == "peak"]
    first = dt.datetime.fromtimestamp(peak[0][0], dt.UTC)
    assert first == dt.datetime.fromisoformat(peak_start_utc.replace("Z", "+00:00"))
    assert sum(s[1] for s in peak) == 5 * HOUR  # 16:00-21:00 local, whatever the offset


# --- base prices, validity, errors ---------------------------------------------------------


@needs_tariffs
def test_monthly_base_price() -> None:
    provider = TimeOfUse.from_options(
        "tou",
        options("cn-guizhou-ci-tou-2023.yaml", base_price={7: 0.7, "2024-08": 0.8, "default": 0.6}),
    )
    tz = provider.clock.tz

    def slot(local: str) -> tuple[float, Quality]:
        t = dt.datetime.fromisoformat(local).replace(tzinfo=tz).timestamp()
        s = provider.segments(t, t + 1)[0]
        return round(s[2] / 1000, 6), s[3]

    assert slot("2024-07-10T12:00") == (pytest.approx(1.6 * 0.7), Quality.MEASURED)
    assert slot("2024-08-10T12:00") == (pytest.approx(1.6 * 0.8), Quality.MEASURED)
    assert slot("2025-08-10T12:00") == (pytest.approx(1.6 * 0.6), Quality.ESTIMATED)


@needs_tariffs
def test_validity_is_enforced_unless_ignored() -> None:
    name = "es-3.0td-torres-energia-2024q2.yaml"
    after = dt.datetime(2024, 7, 2, 10, tzinfo=dt.UTC).timestamp()
    with pytest.raises(NoDataError, match="outside its validity"):
        TimeOfUse.from_options("tou", options(name)).latest("ES", Signal.PRICE, after)
    lenient = TimeOfUse.from_options("tou", options(name, ignore_validity=True))
    assert lenient.latest("ES", Signal.PRICE, after).unit == "EUR/MWh"


def gap(tariff: dict[str, Any]) -> dict[str, Any]:
    tariff["schedule"]["work"] = [["00:00", "night", 0.1]]
    tariff["schedule"]["off"] = "nope"
    return tariff


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        pytest.param({}, "needs options.tariff", id="no-tariff"),
        pytest.param({"tariff": "/nonexistent/t.yaml"}, "cannot read tariff", id="missing-file"),
        pytest.param(
            {"tariff": {**compact(), "basis": "ratio"}}, "set options.base_price", id="no-base"
        ),
        pytest.param({"tariff": gap(compact())}, "no schedule for season", id="bad-schedule"),
        pytest.param(
            {"tariff": {**compact(), "zone": "Mars/Olympus"}}, "unknown IANA", id="bad-zone"
        ),
        pytest.param(
            {"tariff": {**compact(), "days": {"work": ["mon"], "off": ["sat", "sun"]}}},
            "each of mon..sun exactly once",
            id="uncovered-weekdays",
        ),
        pytest.param(
            {"tariff": {**compact(), "seasons": {"s": [1, 2, 3]}}},
            "cover 1..12 exactly once",
            id="seasons-not-a-year",
        ),
    ],
)
def test_bad_tariffs_say_what_is_wrong(opts: dict[str, Any], message: str) -> None:
    with pytest.raises(TariffError, match=message):
        TimeOfUse.from_options("tou", opts)


def test_overlapping_or_missing_minutes_are_rejected() -> None:
    full = {
        "zone": "UTC",
        "currency": "EUR",
        "price_basis": "absolute",
        "seasons": [{"id": "all", "months": list(range(1, 13))}],
        "day_types": [{"id": "all_days"}],
        "periods": [
            {
                "season": "all",
                "day_type": "all_days",
                "name": "a",
                "from": "00:00",
                "to": "12:00",
                "price": 1,
            },
            {
                "season": "all",
                "day_type": "all_days",
                "name": "b",
                "from": "11:00",
                "to": "23:00",
                "price": 2,
            },
        ],
    }
    with pytest.raises(TariffError, match="overlap at 11:00"):
        TimeOfUse.from_options("tou", {"tariff": full})
    full["periods"][1]["from"] = "12:00"
    with pytest.raises(TariffError, match="no period covers 23:00"):
        TimeOfUse.from_options("tou", {"tariff": full})


@needs_tariffs
def test_periods_only_needs_values() -> None:
    with pytest.raises(TariffError, match="no price for period"):
        TimeOfUse.from_options("tou", {"tariff": str(TARIFFS / "cn-ningxia-tou-periods-2023.yaml")})
    absolute = TimeOfUse.from_options(
        "tou",
        {
            "tariff": str(TARIFFS / "cn-ningxia-tou-periods-2023.yaml"),
            "period_values": {"peak": 0.9, "flat": 0.6, "valley": 0.3},
        },
    )
    assert at(absolute, "2024-06-01T10:00") == ("valley", 0.3)


# --- in a fallback chain -------------------------------------------------------------------


def test_tou_in_a_chain_gives_a_48h_forecast(tmp_path: Path) -> None:
    config_file = tmp_path / "feeds.yaml"
    config_file.write_text(
        yaml.safe_dump(
            {
                "providers": {
                    "tariff": {"type": "tou", "options": {"tariff": compact(), "zones": ["DE-LU"]}},
                    "fallback": {"type": "static", "options": {"values": {"FR": {"price": 70}}}},
                },
                "default": {"carbon": ["fallback"], "price": ["tariff", "fallback"]},
            }
        )
    )
    config: FeedsConfig = factory.load_config(config_file)
    now = dt.datetime(2024, 12, 24, 11, 20, tzinfo=dt.UTC).timestamp()  # 12:20 in Berlin
    feeds = factory.build(config, clock=lambda: now)
    reading = feeds.reading("DE-LU", Signal.PRICE)
    assert (reading.source, reading.value, reading.unit) == ("tariff", 300.0, "EUR/MWh")
    fc = feeds.forecast("DE-LU", Signal.PRICE, 24)
    assert fc.source == "tariff" and fc.end - int(fc.start[0]) == 48 * HOUR
    assert int(fc.start[0]) == now // HOUR * HOUR
    other = feeds.reading("FR", Signal.PRICE)  # not the tariff's zone: the next provider
    assert other.source == "fallback" and "not for FR" in other.errors[0]


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.glob("*.yaml")) if EXAMPLES.is_dir() else [], ids=lambda p: p.name
)
def test_shipped_examples_load(path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert "EXAMPLE" in path.read_text(encoding="utf-8").upper()
    opts: dict[str, Any] = {"tariff": str(path)}
    if raw.get("price_basis") != "absolute":
        opts["base_price"] = BASE
    provider = TimeOfUse.from_options("tou", opts)
    t = dt.datetime(2025, 1, 15, 12, tzinfo=dt.UTC).timestamp()
    assert len(provider.forecast("X", Signal.PRICE, t, 24)) >= 48


@needs_tariffs
@pytest.mark.parametrize(
    ("example", "reference_file", "year"),
    [
        pytest.param("us-pge-b20-example.yaml", "us-pge-b20-2022.yaml", "2022-06-01", id="pge"),
        pytest.param(
            "cn-guangdong-ci-example.yaml", "cn-guangdong-ci-tou-2021.yaml", "2022-01-01", id="gd"
        ),
    ],
)
def test_examples_match_the_reference_tariffs_hour_by_hour(
    example: str, reference_file: str, year: str
) -> None:
    """The examples' midnight-crossing periods and compact form give the reference prices."""
    ours = TimeOfUse.from_options("tou", {"tariff": str(EXAMPLES / example), "base_price": BASE})
    theirs = TimeOfUse.from_options("tou", options(reference_file))
    first = dt.datetime.fromisoformat(year).replace(tzinfo=ours.clock.tz).timestamp()
    a = ours.segments(first, first + 366 * 86400)
    b = theirs.segments(first, first + 366 * 86400)
    assert [(s[0], s[1], s[2], s[4]) for s in a] == [(s[0], s[1], s[2], s[4]) for s in b]


# --- properties ------------------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/Los_Angeles", "Asia/Kolkata", "Australia/Lord_Howe"]


@settings(max_examples=60, deadline=None)
@given(
    starts=st.lists(st.integers(0, 95), min_size=1, max_size=6, unique=True),
    zone=st.sampled_from(ZONES),
    day=st.dates(dt.date(2023, 1, 1), dt.date(2026, 12, 31)),
)
def test_any_compact_schedule_tiles_time_with_the_scheduled_period(
    starts: list[int], zone: str, day: dt.date
) -> None:
    minutes = sorted(15 * s for s in starts)
    entries = [f"{m // 60:02d}:{m % 60:02d} p{i} {i + 1}" for i, m in enumerate(minutes)]
    tariff = {"zone": zone, "currency": "EUR", "basis": "absolute", "schedule": entries}
    provider = TimeOfUse.from_options("tou", {"tariff": tariff})
    tz = zoneinfo.ZoneInfo(zone)
    start = dt.datetime.combine(day, dt.time(), tz).timestamp()
    segs = provider.segments(start, start + 3 * 86400)
    assert all(a[0] + a[1] == b[0] for a, b in itertools.pairwise(segs))
    for s0, length, value, _q, period in segs:
        for t in (s0, s0 + length - 1):
            local = dt.datetime.fromtimestamp(t, tz)
            minute = local.hour * 60 + local.minute
            due = [i for i, m in enumerate(minutes) if m <= minute]
            expected = due[-1] if due else len(minutes) - 1  # before the first: the last wraps
            assert (period, value) == (f"p{expected}", (expected + 1) * 1000.0)


junk = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 30) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(
            [
                "zone",
                "currency",
                "basis",
                "price_basis",
                "seasons",
                "days",
                "day_types",
                "schedule",
                "periods",
                "holidays",
                "unit",
                "valid_from",
                "conditional_overrides",
            ]
        ),
        junk,
    ),
    extra=st.dictionaries(
        st.sampled_from(["base_price", "period_values", "holidays", "apply_overrides"]), junk
    ),
)
def test_bad_tariff_input_raises_only_tariff_errors(
    fields: dict[str, Any], extra: dict[str, Any]
) -> None:
    with contextlib.suppress(SignalError):
        TimeOfUse.from_options("tou", {"tariff": fields, **extra})


@settings(max_examples=200, deadline=None)
@given(
    extra=st.dictionaries(
        st.sampled_from(
            [
                "base_price",
                "period_values",
                "holidays",
                "apply_overrides",
                "zones",
                "ignore_validity",
            ]
        ),
        junk,
    ),
    basis=st.sampled_from(["ratio", "absolute", "periods"]),
)
def test_bad_provider_options_raise_only_tariff_errors(extra: dict[str, Any], basis: str) -> None:
    tariff = {**compact(), "basis": basis}
    with contextlib.suppress(SignalError):
        provider = TimeOfUse.from_options("tou", {"tariff": tariff, **extra})
        provider.forecast("DE-LU", Signal.PRICE, 1.7e9, 48)


def test_yaml_quirks_of_a_hand_written_tariff(tmp_path: Path) -> None:
    """YAML 1.1 reads keys like ``off`` as booleans and unquoted dates as dates."""
    path = tmp_path / "tariff.yaml"
    path.write_text(
        """
zone: Europe/Madrid
currency: EUR
basis: absolute
days: {on: [mon, tue, wed, thu, fri], off: [sat, sun, holiday]}
schedule:
  on: ["08:00 day 0.2", "20:00 night 0.1"]
  off: ["00:00 flat 0.12"]
holidays: [2025-05-01]
conditional_overrides:
  - on_holidays: true
    periods: [{name: deep, from: "13:00", to: "15:00", price: 0.05}]
"""
    )
    provider = TimeOfUse.from_options("tou", {"tariff": str(path)})
    assert at(provider, "2025-05-01T12:00") == ("flat", 0.12)  # a Thursday, but a holiday
    assert at(provider, "2025-05-01T14:00") == ("deep", 0.05)
    assert at(provider, "2025-05-02T14:00") == ("day", 0.2)
