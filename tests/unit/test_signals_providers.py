"""Each provider against a local server speaking its documented format, including errors."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridaware.api.signals import EmissionKind, Quality, Signal
from gridaware.signals.errors import FeedAuthError, FeedDataError, NoDataError
from gridaware.signals.http import HttpClient, RetryPolicy
from gridaware.signals.providers.carbonaware import CarbonAwareSDK, parse_duration
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.entsoe import EntsoE, choose_points
from gridaware.signals.providers.ukci import UKCarbonIntensity
from gridaware.signals.providers.watttime import WattTime
from tests.feedserver import Answer, FeedServer

FAST = RetryPolicy(
    attempts=2, base_delay=0.01, max_delay=0.1, total_timeout=3.0, request_timeout=(0.5, 0.5)
)
T0 = int(dt.datetime(2023, 6, 1, 12, tzinfo=dt.UTC).timestamp())


def em(server: FeedServer) -> ElectricityMaps:
    return ElectricityMaps("em", "KEY", server.url, http=HttpClient("em", FAST))


# --- Electricity Maps ------------------------------------------------------------------------


def test_em_latest_sends_token_and_parses(feed_server: FeedServer) -> None:
    feed_server.route(
        "/carbon-intensity/latest",
        {
            "zone": "DE",
            "carbonIntensity": 302,
            "datetime": "2023-06-01T12:00:00.000Z",
            "updatedAt": "2023-06-01T12:21:08.771Z",
            "emissionFactorType": "lifecycle",
            "isEstimated": True,
            "estimationMethod": "TIME_SLICER_AVERAGE",
        },
    )
    s = em(feed_server).latest("DE", Signal.CARBON, T0)
    assert (s.value.tolist(), s.start.tolist(), s.kind) == ([302.0], [T0], EmissionKind.AVERAGE)
    assert s.quality[0] == Quality.ESTIMATED and s.unit == "gCO2e/kWh"
    req = feed_server.hits("/carbon-intensity/latest")[0]
    assert req.headers["auth-token"] == "KEY" and req.query["zone"] == ["DE"]


def test_em_history_forecast_and_duplicates(feed_server: FeedServer) -> None:
    rows = [
        {
            "carbonIntensity": 300 + i,
            "datetime": f"2023-06-01T{10 + i:02d}:00:00Z",
            "isEstimated": False,
        }
        for i in range(3)
    ]
    feed_server.route("/carbon-intensity/past-range", {"data": [*rows, rows[-1]]})
    feed_server.route(
        "/carbon-intensity/forecast",
        {
            "zone": "DE",
            "forecast": [
                {"carbonIntensity": 250, "datetime": "2023-06-01T13:00Z"},
                {"carbonIntensity": 240, "datetime": "2023-06-01T14:00Z"},
            ],
            "updatedAt": "2023-06-01T12:00Z",
        },
    )
    p = em(feed_server)
    h = p.history("DE", Signal.CARBON, T0 - 2 * 3600, T0 + 3600)
    assert h.value.tolist() == [300, 301, 302]
    f = p.forecast("DE", Signal.CARBON, T0, 24)
    assert f.value.tolist() == [250, 240] and set(f.quality.tolist()) == {Quality.FORECAST}


def test_em_price_keeps_currency_and_negative_prices(feed_server: FeedServer) -> None:
    feed_server.route(
        "/price-day-ahead/latest",
        {"zone": "DE", "datetime": "2023-06-01T12:00Z", "value": -12.5, "unit": "EUR/MWh"},
    )
    s = em(feed_server).latest("DE", Signal.PRICE, T0)
    assert s.unit == "EUR/MWh" and s.value.tolist() == [-12.5]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param("<html>oops</html>", "not JSON", id="html"),
        pytest.param('{"carbonIntensity": 30', "not JSON", id="truncated"),
        pytest.param(
            {"zone": "DE", "datetime": "2023-06-01T12:00Z"},
            "missing 'carbonIntensity'",
            id="missing-field",
        ),
        pytest.param(
            {"carbonIntensity": "high", "datetime": "2023-06-01T12:00Z"},
            "expected a number",
            id="string-value",
        ),
        pytest.param(
            {"carbonIntensity": 0, "datetime": "2023-06-01T12:00Z"}, "exactly 0", id="zeros-outage"
        ),
        pytest.param(
            {"carbonIntensity": 9000, "datetime": "2023-06-01T12:00Z"}, "outside", id="impossible"
        ),
        pytest.param(
            {"carbonIntensity": 300, "datetime": "2023-06-01 12:00"},
            "no time zone",
            id="naive-time",
        ),
        pytest.param(
            {
                "carbonIntensity": 300,
                "datetime": "2023-06-01T12:00Z",
                "emissionFactorType": "direct",
            },
            "emissionFactorType",
            id="wrong-factor",
        ),
    ],
)
def test_em_bad_bodies_are_data_errors(feed_server: FeedServer, body: object, message: str) -> None:
    feed_server.route("/carbon-intensity/latest", body)
    with pytest.raises(FeedDataError, match=message):
        em(feed_server).latest("DE", Signal.CARBON, T0)


def test_em_wrong_price_unit(feed_server: FeedServer) -> None:
    feed_server.route(
        "/price-day-ahead/latest", {"datetime": "2023-06-01T12:00Z", "value": 5, "unit": "EUR/kWh"}
    )
    with pytest.raises(FeedDataError, match="not <currency>/MWh"):
        em(feed_server).latest("DE", Signal.PRICE, T0)


# --- WattTime --------------------------------------------------------------------------------


def _moer(values: list[float], start: str = "2023-06-01T12:00:00+00:00") -> dict[str, object]:
    t = dt.datetime.fromisoformat(start)
    return {
        "data": [
            {"point_time": (t + dt.timedelta(minutes=5 * i)).isoformat(), "value": v}
            for i, v in enumerate(values)
        ],
        "meta": {
            "region": "CAISO_NORTH",
            "signal_type": "co2_moer",
            "units": "lbs_co2_per_mwh",
            "data_point_period_seconds": 300,
            "generated_at": start,
        },
    }


def wt(server: FeedServer) -> WattTime:
    return WattTime(
        "wt", "user", "pw", server.url, {"US-CAL-CISO": "CAISO_NORTH"}, http=HttpClient("wt", FAST)
    )


def test_watttime_logs_in_converts_lbs_and_labels_marginal(feed_server: FeedServer) -> None:
    feed_server.route("/login", {"token": "T1"})
    feed_server.route("/v3/forecast", _moer([1000.0, 900.0]))
    s = wt(feed_server).forecast("US-CAL-CISO", Signal.CARBON, T0, 24)
    assert s.kind is EmissionKind.MARGINAL
    assert s.value.tolist() == pytest.approx([453.59237, 408.233133])
    assert s.length.tolist() == [300, 300]
    login = feed_server.hits("/login")[0]
    assert login.headers["Authorization"].startswith("Basic ")
    data = feed_server.hits("/v3/forecast")[0]
    assert data.headers["Authorization"] == "Bearer T1"
    assert data.query["region"] == ["CAISO_NORTH"]


def test_watttime_expired_token_is_refreshed_once(feed_server: FeedServer) -> None:
    feed_server.route("/login", {"token": "T1"}, {"token": "T2"})
    feed_server.route("/v3/forecast", Answer(401, '{"error": "token expired"}'), _moer([500]))
    s = wt(feed_server).latest("US-CAL-CISO", Signal.CARBON, T0)
    assert len(s) == 1
    assert [r.headers["Authorization"] for r in feed_server.hits("/v3/forecast")] == [
        "Bearer T1",
        "Bearer T2",
    ]


def test_watttime_bad_password_is_auth_error(feed_server: FeedServer) -> None:
    feed_server.route("/login", Answer(403, "invalid credentials"))
    with pytest.raises(FeedAuthError):
        wt(feed_server).latest("US-CAL-CISO", Signal.CARBON, T0)


def test_watttime_wrong_units(feed_server: FeedServer) -> None:
    body = _moer([500])
    body["meta"]["units"] = "percentile"  # type: ignore[index]
    feed_server.route("/login", {"token": "T"})
    feed_server.route("/v3/forecast", body)
    with pytest.raises(FeedDataError, match="unexpected units"):
        wt(feed_server).latest("US-CAL-CISO", Signal.CARBON, T0)


# --- GB Carbon Intensity ---------------------------------------------------------------------


def test_ukci_national_prefers_actual_and_falls_back_to_forecast(feed_server: FeedServer) -> None:
    feed_server.route(
        "/intensity",
        {
            "data": [
                {
                    "from": "2023-06-01T11:30Z",
                    "to": "2023-06-01T12:00Z",
                    "intensity": {"forecast": 150, "actual": 148, "index": "moderate"},
                },
                {
                    "from": "2023-06-01T12:00Z",
                    "to": "2023-06-01T12:30Z",
                    "intensity": {"forecast": 152, "actual": None, "index": "moderate"},
                },
            ]
        },
    )
    s = UKCarbonIntensity("uk", feed_server.url, http=HttpClient("uk", FAST)).latest(
        "GB", Signal.CARBON, T0
    )
    assert s.value.tolist() == [148, 152]
    assert s.quality.tolist() == [Quality.MEASURED, Quality.FORECAST]
    assert s.length.tolist() == [1800, 1800]


def test_ukci_regional_forecast_nesting(feed_server: FeedServer) -> None:
    path = "/regional/intensity/2023-06-01T12:00Z/fw48h/regionid/13"
    feed_server.route(
        path,
        {
            "data": {
                "regionid": 13,
                "dnoregion": "UKPN London",
                "shortname": "London",
                "data": [
                    {
                        "from": "2023-06-01T12:00Z",
                        "to": "2023-06-01T12:30Z",
                        "intensity": {"forecast": 120, "index": "low"},
                        "generationmix": [{"fuel": "wind", "perc": 40}],
                    }
                ],
            }
        },
    )
    s = UKCarbonIntensity("uk", feed_server.url, http=HttpClient("uk", FAST)).forecast(
        "GB-13", Signal.CARBON, T0, 48
    )
    assert s.value.tolist() == [120]


def test_ukci_rejects_unknown_zone() -> None:
    with pytest.raises(NoDataError, match="GB-1..GB-17"):
        UKCarbonIntensity("uk").forecast("GB-99", Signal.CARBON, T0, 48)


# --- ENTSO-E ---------------------------------------------------------------------------------


def _a44(
    points: str,
    start: str = "2023-06-01T00:00Z",
    end: str = "2023-06-02T00:00Z",
    res: str = "PT60M",
    curve: str = "A01",
    extra: str = "",
) -> str:
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Publication_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-3:publicationdocument:7:3">
  <mRID>x</mRID><type>A44</type>
  <TimeSeries><mRID>1</mRID><currency_Unit.name>EUR</currency_Unit.name>
    <price_Measure_Unit.name>MWH</price_Measure_Unit.name><curveType>{curve}</curveType>
    <Period><timeInterval><start>{start}</start><end>{end}</end></timeInterval>
      <resolution>{res}</resolution>{points}</Period></TimeSeries>{extra}
</Publication_MarketDocument>"""


def _pts(values: dict[int, float], tag: str = "price.amount") -> str:
    return "".join(
        f"<Point><position>{p}</position><{tag}>{v}</{tag}></Point>" for p, v in values.items()
    )


def entsoe(server: FeedServer) -> EntsoE:
    return EntsoE("entsoe", "TOKEN", server.url + "/api", http=HttpClient("entsoe", FAST))


def test_entsoe_a44_hourly_prices(feed_server: FeedServer) -> None:
    feed_server.route("/api", _a44(_pts({i: 50 + i for i in range(1, 25)})))
    s = entsoe(feed_server).history("DE-LU", Signal.PRICE, T0 - 12 * 3600, T0 + 12 * 3600)
    assert len(s) == 24 and s.unit == "EUR/MWh" and s.value[0] == 51
    q = feed_server.requests[0].query
    assert q["documentType"] == ["A44"] and q["in_Domain"] == ["10Y1001A1001A82H"]
    assert q["periodStart"] == ["202306010000"]


def test_entsoe_a03_gaps_repeat_previous_value_at_15_minutes(feed_server: FeedServer) -> None:
    feed_server.route(
        "/api", _a44(_pts({1: 10, 2: 20, 5: 50}), end="2023-06-01T01:30Z", res="PT15M", curve="A03")
    )
    s = entsoe(feed_server).history("DE-LU", Signal.PRICE, T0 - 12 * 3600, T0)
    assert s.value.tolist() == [10, 20, 20, 20, 50, 50]
    assert set(s.length.tolist()) == {900}


def test_entsoe_finest_resolution_wins_when_both_are_published(feed_server: FeedServer) -> None:
    quarter = _a44(_pts({i: i for i in range(1, 5)}), end="2023-06-01T01:00Z", res="PT15M")
    hourly_ts = (
        quarter.split("<TimeSeries>")[1]
        .split("</TimeSeries>")[0]
        .replace("PT15M", "PT60M")
        .replace(_pts({i: i for i in range(1, 5)}), _pts({1: 99}))
    )
    doc = quarter.replace(
        "</Publication_MarketDocument>",
        f"<TimeSeries>{hourly_ts}</TimeSeries></Publication_MarketDocument>",
    )
    feed_server.route("/api", doc)
    s = entsoe(feed_server).history("DE-LU", Signal.PRICE, T0 - 12 * 3600, T0)
    assert s.value.tolist() == [1, 2, 3, 4]


def test_entsoe_daylight_saving_day_has_23_hours(feed_server: FeedServer) -> None:
    # 26 March 2023 in CET/CEST: the market day runs 25 Mar 23:00Z .. 26 Mar 22:00Z
    feed_server.route(
        "/api",
        _a44(
            _pts({i: i for i in range(1, 24)}), start="2023-03-25T23:00Z", end="2023-03-26T22:00Z"
        ),
    )
    t = dt.datetime(2023, 3, 26, tzinfo=dt.UTC).timestamp()
    s = entsoe(feed_server).history("DE-LU", Signal.PRICE, t, t + 86400)
    assert len(s) == 23
    assert s.end - s.start[0] == 23 * 3600


def test_entsoe_no_matching_data_is_no_data(feed_server: FeedServer) -> None:
    feed_server.route(
        "/api",
        """<Acknowledgement_MarketDocument
        xmlns="urn:iec62325.351:tc57wg16:451-1:acknowledgementdocument:7:0">
        <mRID>a</mRID><Reason><code>999</code>
        <text>No matching data found for Data item Day-ahead Prices</text></Reason>
        </Acknowledgement_MarketDocument>""",
    )
    with pytest.raises(NoDataError, match="No matching data found"):
        entsoe(feed_server).history("DE-LU", Signal.PRICE, T0, T0 + 3600)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param("<Publication_MarketDocument><TimeSeries>", "malformed XML", id="truncated"),
        pytest.param("<Other/>", "unexpected document", id="wrong-root"),
        pytest.param(_a44(_pts({30: 1})), "position 30 outside", id="bad-position"),
        pytest.param(_a44(_pts({1: 1}), res="P1Y"), "unsupported resolution", id="resolution"),
    ],
)
def test_entsoe_bad_documents(feed_server: FeedServer, doc: str, message: str) -> None:
    feed_server.route("/api", doc)
    with pytest.raises(FeedDataError, match=message):
        entsoe(feed_server).history("DE-LU", Signal.PRICE, T0, T0 + 3600)


def test_entsoe_generation_mix_gives_carbon_and_renewable_share(feed_server: FeedServer) -> None:
    def ts(psr: str, qty: float, direction: str = "inBiddingZone_Domain.mRID") -> str:
        return (
            f"<TimeSeries><{direction}>10Y1001A1001A82H</{direction}>"
            f"<MktPSRType><psrType>{psr}</psrType></MktPSRType><curveType>A01</curveType>"
            "<Period><timeInterval><start>2023-06-01T12:00Z</start>"
            "<end>2023-06-01T13:00Z</end></timeInterval><resolution>PT60M</resolution>"
            f"<Point><position>1</position><quantity>{qty}</quantity></Point>"
            "</Period></TimeSeries>"
        )

    doc = (
        '<GL_MarketDocument xmlns="urn:iec62325.351:tc57wg16:451-6:generationloaddocument:3:0">'
        + ts("B19", 600)
        + ts("B02", 300)
        + ts("B04", 100)
        + ts("B10", 500, "outBiddingZone_Domain.mRID")
        + "</GL_MarketDocument>"
    )
    feed_server.route("/api", doc)
    p = entsoe(feed_server)
    carbon = p.history("DE-LU", Signal.CARBON, T0, T0 + 3600)
    # by hand: (600*11 + 300*1100 + 100*490) / 1000
    assert carbon.value.tolist() == pytest.approx([(6600 + 330000 + 49000) / 1000])
    assert carbon.quality[0] == Quality.ESTIMATED and carbon.kind is EmissionKind.AVERAGE
    share = p.history("DE-LU", Signal.RENEWABLE_SHARE, T0, T0 + 3600)
    assert share.value.tolist() == [60.0]


def test_entsoe_unknown_zone_needs_a_mapping() -> None:
    with pytest.raises(NoDataError, match="zone_map"):
        EntsoE("e", "t").history("XX", Signal.PRICE, T0, T0 + 3600)


# --- Carbon Aware SDK ------------------------------------------------------------------------


def test_carbon_aware_sdk_bylocations_and_forecast(feed_server: FeedServer) -> None:
    feed_server.route(
        "/emissions/bylocations",
        [
            {
                "location": "eastus",
                "time": "2023-06-01T11:00:00+00:00",
                "rating": 420.5,
                "duration": "01:00:00",
            },
            {
                "location": "eastus",
                "time": "2023-06-01T12:00:00+00:00",
                "rating": 410.0,
                "duration": "01:00:00",
            },
        ],
    )
    feed_server.route(
        "/emissions/forecasts/current",
        [
            {
                "generatedAt": "2023-06-01T12:00:00Z",
                "location": "eastus",
                "optimalDataPoints": [],
                "forecastData": [
                    {
                        "location": "eastus",
                        "timestamp": "2023-06-01T12:00:00Z",
                        "duration": 5,
                        "value": 400.0,
                    }
                ],
            }
        ],
    )
    p = CarbonAwareSDK(
        "gsf", feed_server.url, {"US-MIDA-PJM": "eastus"}, http=HttpClient("gsf", FAST)
    )
    assert p.latest("US-MIDA-PJM", Signal.CARBON, T0).value.tolist() == [410.0]
    f = p.forecast("US-MIDA-PJM", Signal.CARBON, T0, 24)
    assert f.length.tolist() == [300]
    assert feed_server.hits("/emissions/bylocations")[0].query["location"] == ["eastus"]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("01:00:00", 3600),
        ("00:05:00", 300),
        ("1.00:00:00", 86400),
        ("PT1H", 3600),
        ("PT30M", 1800),
        (60, 3600),
    ],
)
def test_parse_duration(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "00:00:00", "an hour", -5, None, True])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(FeedDataError):
        parse_duration(bad)


def test_entsoe_generation_at_mixed_resolutions_sums_every_type_per_hour(
    feed_server: FeedServer,
) -> None:
    """Wind every 15 minutes, coal hourly: each hour mixes both (wind averaged over it)."""

    def ts(psr: str, res: str, quantities: list[float]) -> str:
        points = "".join(
            f"<Point><position>{i}</position><quantity>{q}</quantity></Point>"
            for i, q in enumerate(quantities, 1)
        )
        return (
            "<TimeSeries><inBiddingZone_Domain.mRID>10Y1001A1001A82H</inBiddingZone_Domain.mRID>"
            f"<MktPSRType><psrType>{psr}</psrType></MktPSRType><curveType>A01</curveType>"
            "<Period><timeInterval><start>2023-06-01T12:00Z</start>"
            f"<end>2023-06-01T13:00Z</end></timeInterval><resolution>{res}</resolution>"
            f"{points}</Period></TimeSeries>"
        )

    doc = (
        "<GL_MarketDocument>"
        + ts("B19", "PT15M", [100, 200, 300, 400])
        + ts("B02", "PT60M", [750])
        + "</GL_MarketDocument>"
    )
    feed_server.route("/api", doc)
    share = entsoe(feed_server).history("DE-LU", Signal.RENEWABLE_SHARE, T0, T0 + 3600)
    assert (share.value.tolist(), share.length.tolist()) == ([25.0], [3600])  # 250 of 1000


ranked_products = st.lists(
    st.tuples(
        st.tuples(st.integers(0, 2), st.sampled_from([900, 3600])),
        st.lists(st.tuples(st.integers(0, 12), st.integers(-50, 300)), max_size=6),
    ),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(products=ranked_products, order=st.randoms(use_true_random=False))
def test_entsoe_product_choice_is_order_free_and_never_overlaps(
    products: list[tuple[tuple[int, int], list[tuple[int, int]]]], order: random.Random
) -> None:
    ranked = [
        (rank, [(T0 + slot * rank[1], rank[1], float(v)) for slot, v in pts])
        for rank, pts in products
    ]
    shuffled = list(ranked)
    order.shuffle(shuffled)
    chosen = choose_points(ranked)
    assert chosen == choose_points(shuffled)
    assert all(a[0] + a[1] <= b[0] for a, b in itertools.pairwise(chosen))
    if ranked:  # the best product's points are all kept (its first value per start)
        best = min(r for r, _ in ranked)
        starts = {p[0] for r, pts in ranked if r == best for p in pts}
        assert starts <= {p[0] for p in chosen}
