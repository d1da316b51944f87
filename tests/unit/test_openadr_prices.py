"""PRICE events feed the price signal: inside the VTN's intervals the reading and the forecast of
the event's zones are the utility's price, outside them (and in every other zone) the configured
providers answer as before; currencies are converted like other price providers'; a withdrawn
event's prices are gone at the next poll, a failed poll keeps them.

The chain is the real ``Feeds`` with a ``Static`` provider as the configured one and the real
``VtnPrices`` overlay; the service test polls a ``FakeVen`` (the real mapping) as in
tests/unit/test_openadr_service.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridaware.api.feeds import FeedsConfig, ProviderConfig, ZoneChain
from gridaware.api.signals import Quality, Series, Signal
from gridaware.services.openadr import OpenAdrOptions, OpenAdrService
from gridaware.signals.chain import Feeds, overlaid
from gridaware.signals.openadr import PricePoint, VenConfig
from gridaware.signals.providers.local import Replay, Static
from gridaware.signals.providers.openadr import VtnPrices
from tests.fakes import T0, FakeEvents
from tests.unit.test_openadr_service import VTN, FakeStore, FakeVen, Rig, wire

HOUR = 3600.0
STATIC = {
    "DE-LU": {"carbon": 300, "price": 100, "currency": "EUR"},
    "GB": {"price": 80, "currency": "GBP"},
}


class Clock:
    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def price(
    start_h: float,
    hours: float,
    value: float,
    zones: tuple[str, ...] = ("DE-LU",),
    currency: str | None = "EUR",
    units: str | None = "KWH",
    clusters: tuple[str, ...] = (),
) -> PricePoint:
    return PricePoint(
        "p1",
        f"e{start_h}",
        T0 + start_h * HOUR,
        T0 + (start_h + hours) * HOUR,
        value,
        currency,
        units,
        zones,
        clusters,
    )


# 0.25 EUR/kWh from +1 h for 2 h, and a critical-peak 0.50 EUR/kWh for 15 minutes at +4 h
TARIFF = [price(1, 2, 0.25), price(4, 0.25, 0.5)]


def feeds(points: list[PricePoint], clock: Clock) -> tuple[Feeds, VtnPrices]:
    config = FeedsConfig(
        providers={"static": ProviderConfig(type="static")},
        default=ZoneChain(carbon=["static"], price=["static"]),
    )
    vtn = VtnPrices()
    assert vtn.update(points, clock()) == []
    return Feeds(config, {"static": Static("static", STATIC)}, clock, overlays=[vtn]), vtn


@pytest.mark.parametrize(
    ("zone", "at_h", "value", "unit", "source"),
    [
        pytest.param("DE-LU", 0.5, 100.0, "EUR/MWh", "static", id="before-the-event-configured"),
        pytest.param("DE-LU", 1.0, 250.0, "EUR/MWh", "openadr", id="interval-start-is-vtn"),
        pytest.param("DE-LU", 2.5, 250.0, "EUR/MWh", "openadr", id="inside-is-vtn-per-mwh"),
        pytest.param("DE-LU", 3.0, 100.0, "EUR/MWh", "static", id="interval-end-configured"),
        pytest.param("DE-LU", 4.1, 500.0, "EUR/MWh", "openadr", id="short-peak-is-vtn"),
        pytest.param("DE-LU", 4.25, 100.0, "EUR/MWh", "static", id="after-the-peak-configured"),
        pytest.param("GB", 1.5, 80.0, "GBP/MWh", "static", id="other-zone-untouched"),
    ],
)
def test_reading_is_the_vtns_price_inside_its_intervals_only(
    zone: str, at_h: float, value: float, unit: str, source: str
) -> None:
    chain, _ = feeds(TARIFF, Clock(T0 + at_h * HOUR))
    r = chain.reading(zone, Signal.PRICE)
    assert (r.value, r.unit, r.source, r.stale, r.errors) == (value, unit, source, False, ())
    if source == "openadr":
        assert (r.quality, r.age_seconds) == (Quality.MEASURED, 0.0)


def test_carbon_is_never_the_vtns() -> None:
    chain, _ = feeds(TARIFF, Clock(T0 + 1.5 * HOUR))
    r = chain.reading("DE-LU", Signal.CARBON)
    assert (r.value, r.source) == (300.0, "static")
    assert chain.forecast("DE-LU", Signal.CARBON, 3).source == "static"


@pytest.mark.parametrize(
    ("zone", "at_h", "hourly"),
    [
        pytest.param(
            "DE-LU", 0.0, [100, 250, 250, 100, 200, 100], id="announced-intervals-are-forecast"
        ),
        pytest.param(
            "DE-LU", 1.5, [250, 250, 100, 200, 100, 100], id="current-interval-in-this-hour"
        ),
        pytest.param("DE-LU", 5.0, [100] * 6, id="after-every-interval-configured"),
        pytest.param("GB", 0.0, [80] * 6, id="other-zone-untouched"),
    ],
)
def test_forecast_lays_the_vtns_intervals_over_the_configured_one(
    zone: str, at_h: float, hourly: list[float]
) -> None:
    clock = Clock(T0 + at_h * HOUR)
    chain, _ = feeds(TARIFF, clock)
    fc = chain.forecast(zone, Signal.PRICE, 6)
    hour0 = int(clock() // HOUR * HOUR)
    assert fc.hourly(hour0, 6).tolist() == pytest.approx(hourly)  # the peak hour: 1/4 at 500
    assert ("openadr" in fc.source) == (hourly != [hourly[0]] * 6)


def test_forecast_quality_says_which_vtn_intervals_have_begun() -> None:
    chain, _ = feeds(TARIFF, Clock(T0 + 1.5 * HOUR))
    fc = chain.forecast("DE-LU", Signal.PRICE, 6)
    vtn = {int(s - T0): Quality(int(q)) for s, q in zip(fc.start, fc.quality, strict=True)}
    assert vtn[int(HOUR)] is Quality.MEASURED and vtn[int(4 * HOUR)] is Quality.FORECAST


@pytest.mark.parametrize(
    ("points", "reading", "forecast"),
    [
        pytest.param(
            [price(1, 2, 0.3, currency="USD")],
            (300.0, "USD/MWh"),
            300.0 / 1.08,
            id="usd-reading-as-set-forecast-in-eur",
        ),
        pytest.param(
            [price(1, 2, 120.0, units="MWH")], (120.0, "EUR/MWh"), 120.0, id="per-mwh-as-is"
        ),
        pytest.param(
            [price(1, 2, 0.00025, units="WH")], (250.0, "EUR/MWh"), 250.0, id="per-wh-to-mwh"
        ),
        pytest.param(
            [price(0, 1, 0.2), price(1, 2, 0.1, currency="GBP")],
            (100.0 * 1.24 / 1.08, "EUR/MWh"),
            100.0 * 1.24 / 1.08,
            id="mixed-currencies-in-the-earliest",
        ),
    ],
)
def test_currencies_and_units_are_converted_like_other_price_providers(
    points: list[PricePoint], reading: tuple[float, str], forecast: float
) -> None:
    chain, _ = feeds(points, Clock(T0 + 1.5 * HOUR))
    r = chain.reading("DE-LU", Signal.PRICE)
    assert r.value == pytest.approx(reading[0]) and r.unit == reading[1]
    fc = chain.forecast("DE-LU", Signal.PRICE, 3)
    assert fc.unit == "EUR/MWh"  # the configured provider's currency
    assert fc.hourly(int(T0 + HOUR), 2).tolist() == pytest.approx([forecast] * 2)


@pytest.mark.parametrize(
    ("zone", "hourly"),
    [
        pytest.param("DE-LU", [100, 250, 250, 100, 200, 100], id="past-intervals-as-charged"),
        pytest.param("GB", [80] * 6, id="other-zone-untouched"),
    ],
)
def test_history_has_the_vtns_past_intervals_for_cost_accounts(
    zone: str, hourly: list[float]
) -> None:
    chain, _ = feeds(TARIFF, Clock(T0 + 6 * HOUR))
    assert chain.reading(zone, Signal.PRICE).source == "static"
    assert chain.history(zone, Signal.PRICE, 24).hourly(int(T0), 6).tolist() == hourly


def test_the_builtin_forecaster_learns_from_the_market_not_the_vtns_tariffs(
    tmp_path: Path,
) -> None:
    trace = tmp_path / "prices" / "DE-LU_electricity_prices.csv"
    trace.parent.mkdir()
    hours = [T0 + h * HOUR for h in range(-40 * 24, 48)]
    rows = [f"{dt.datetime.fromtimestamp(t, dt.UTC):%Y-%m-%d %H:%M:%S},100" for t in hours]
    trace.write_text("\n".join(["Datetime (UTC),Price (EUR/MWh)", *rows]) + "\n")
    config = FeedsConfig(
        providers={"replay": ProviderConfig(type="replay")},
        default=ZoneChain(carbon=[], price=["replay"]),
    )
    replay = Replay("replay", tmp_path, perfect_forecast=False)  # no forecast of its own
    vtn = VtnPrices()
    assert vtn.update([price(-3, 2, 1.0)], T0) == []  # a critical-peak tariff, now over
    chain = Feeds(config, {"replay": replay}, lambda: T0, overlays=[vtn])
    assert chain.history("DE-LU", Signal.PRICE, 4).hourly(int(T0 - 4 * HOUR), 4).tolist() == [
        100,
        1000,
        1000,
        100,
    ]
    fc = chain.forecast("DE-LU", Signal.PRICE, 6)
    assert "gridaware forecaster" in fc.source
    assert fc.hourly(int(T0), 6).tolist() == pytest.approx([100] * 6)


def test_a_withdrawn_event_takes_its_prices_with_it() -> None:
    clock = Clock(T0 + 1.5 * HOUR)
    chain, vtn = feeds(TARIFF, clock)
    assert chain.reading("DE-LU", Signal.PRICE).source == "openadr" and vtn.zones() == ["DE-LU"]
    assert vtn.update([], clock()) == []  # the next poll lists no PRICE event
    assert chain.reading("DE-LU", Signal.PRICE).source == "static" and vtn.zones() == []
    assert chain.forecast("DE-LU", Signal.PRICE, 6).hourly(int(T0 + HOUR), 6).tolist() == [100] * 6


@pytest.mark.parametrize(
    ("point", "reason"),
    [
        pytest.param(price(1, 1, 0.2, zones=(), clusters=("eu-1",)), "per zone", id="clusters"),
        pytest.param(price(1, 1, 0.2, zones=()), "no zone_ target", id="no-zone"),
        pytest.param(price(1, 1, 0.2, currency=None), "without a currency", id="no-currency"),
        pytest.param(price(1, 1, 0.2, currency="XTS"), "cannot convert", id="unknown-currency"),
        pytest.param(price(1, 1, 0.2, units="KW"), "expected KWH", id="not-per-energy"),
        pytest.param(price(1, 1, 30.0), "beyond", id="implausible"),
    ],
)
def test_prices_that_cannot_feed_the_signal_are_skipped_with_a_reason(
    point: PricePoint, reason: str
) -> None:
    vtn = VtnPrices()
    skipped = vtn.update([point], T0)
    assert [s.event_id for s in skipped] == [point.event_id] and reason in skipped[0].reason
    assert vtn.zones() == []


# --- the VEN service feeds the store ----------------------------------------------------------


def vtn_price(event_id: str, value: float, **over: Any) -> dict[str, Any]:
    doc = wire(event_id, "PRICE", value, **over)
    doc["payloadDescriptors"] = [{"payloadType": "PRICE", "currency": "EUR", "units": "KWH"}]
    return doc


def test_the_ven_service_feeds_each_poll_into_the_price_signal() -> None:
    rig = Rig(FakeVen([vtn_price("e1", 0.25)]), FakeStore(), FakeEvents())  # +1 h for 3 h
    vtn = VtnPrices()
    options = OpenAdrOptions(VenConfig(VTN, "ven", "secret"))
    service = OpenAdrService(rig.ven, rig.store, rig.events, rig.clock, options, vtn)
    config = FeedsConfig(
        providers={"static": ProviderConfig(type="static")},
        default=ZoneChain(carbon=["static"], price=["static"]),
    )
    chain = Feeds(config, {"static": Static("static", STATIC)}, rig.clock.grid_now, [vtn])
    service.tick()
    assert rig.store.bodies == {}, "a PRICE event is no GridEvent"
    assert chain.reading("DE-LU", Signal.PRICE).source == "static"  # not begun yet
    rig.clock.advance(HOUR)
    service.tick()
    assert chain.reading("DE-LU", Signal.PRICE).value == 250.0
    rig.ven.down = True
    rig.clock.advance(HOUR)
    service.tick()
    assert chain.reading("DE-LU", Signal.PRICE).value == 250.0, "a failed poll keeps the prices"
    rig.ven.down = False
    rig.clock.advance(2 * HOUR)  # the event is over; the VTN still lists it
    service.tick()
    assert chain.reading("DE-LU", Signal.PRICE).source == "static"
    paid = chain.history("DE-LU", Signal.PRICE, 12).hourly(int(T0), 4).tolist()
    assert paid == [100, 250, 250, 250], "what was paid stays for cost accounts"
    rig.ven.events = []
    service.tick()
    gone = chain.history("DE-LU", Signal.PRICE, 12).hourly(int(T0), 4).tolist()
    assert gone == [100] * 4, "deleted on the VTN"


# --- the overlay as a whole --------------------------------------------------------------------


def _value_at(series: Series, t: float) -> float | None:
    inside = np.nonzero((series.start <= t) & (t < series.start + series.length))[0]
    assert len(inside) <= 1
    return float(series.value[inside[0]]) if len(inside) else None


def _hourly_base(values: list[float]) -> Series:
    points = [(int(T0 + i * HOUR), int(HOUR), v, Quality.FORECAST) for i, v in enumerate(values)]
    return Series.build("DE-LU", Signal.PRICE, "EUR/MWh", "static", points)


@settings(max_examples=200, deadline=None)
@given(
    base=st.lists(st.floats(-500, 500), min_size=1, max_size=12),
    cuts=st.lists(st.integers(-120, 14 * 60), min_size=0, max_size=10, unique=True),
    values=st.lists(st.floats(-500, 500), min_size=5, max_size=5),
    window=st.tuples(st.integers(0, 6), st.integers(1, 12)),
    probes=st.lists(st.integers(-180, 15 * 60), min_size=1, max_size=20),
)
def test_overlay_replaces_exactly_what_the_vtn_covers_inside_the_window(
    base: list[float],
    cuts: list[int],
    values: list[float],
    window: tuple[int, int],
    probes: list[int],
) -> None:
    edges = sorted(cuts)[: len(cuts) // 2 * 2]
    spans = list(zip(edges[::2], edges[1::2], strict=True))  # disjoint, sorted (minutes)
    top = Series.build(
        "DE-LU",
        Signal.PRICE,
        "EUR/MWh",
        "openadr",
        [
            (int(T0 + a * 60), (b - a) * 60, values[i % 5], Quality.FORECAST)
            for i, (a, b) in enumerate(spans)
        ],
    )
    lo, hi = T0 + window[0] * HOUR, T0 + (window[0] + window[1]) * HOUR
    b = _hourly_base(base)
    out = overlaid(b, top, lo, hi)  # Series itself refuses overlapping or unsorted intervals
    for minute in probes:
        t = T0 + minute * 60
        from_top = _value_at(top, t) if lo <= t < hi else None
        expect = from_top if from_top is not None else _value_at(b, t)
        if from_top is None and expect is None:
            assert _value_at(out, t) is None
        else:
            assert _value_at(out, t) == pytest.approx(expect)
