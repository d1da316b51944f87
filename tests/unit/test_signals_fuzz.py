"""Parsers fed arbitrary bodies raise nothing but the signals layer's own error type."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridaware.api.signals import Signal
from gridaware.signals.base import Provider
from gridaware.signals.errors import SignalError
from gridaware.signals.http import HttpClient, RetryPolicy
from gridaware.signals.providers.carbonaware import CarbonAwareSDK
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.entsoe import EntsoE
from gridaware.signals.providers.ukci import UKCarbonIntensity
from gridaware.signals.providers.watttime import WattTime
from tests.feedserver import Answer, FeedServer

ONCE = RetryPolicy(
    attempts=1, base_delay=0, max_delay=0, total_timeout=2, request_timeout=(0.5, 0.5)
)
T0 = dt.datetime(2023, 6, 1, 12, tzinfo=dt.UTC).timestamp()

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        ["2023-06-01T12:00Z", "2023-06-01T12:00:00+00:00", "lbs_co2_per_mwh", "EUR/MWh", "01:00:00"]
    ),
)
keys = st.sampled_from(
    [
        "data",
        "meta",
        "forecast",
        "history",
        "carbonIntensity",
        "datetime",
        "value",
        "unit",
        "point_time",
        "units",
        "from",
        "to",
        "intensity",
        "actual",
        "forecastData",
        "timestamp",
        "duration",
        "rating",
        "time",
        "token",
        "data_point_period_seconds",
        "isEstimated",
        "regions",
    ]
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def server() -> Iterator[FeedServer]:
    s = FeedServer()
    yield s
    s.close()


def _providers(url: str) -> list[tuple[Provider, str]]:
    http = HttpClient("fuzz", ONCE)
    wt = WattTime("wt", "u", "p", url, http=http)
    wt._token, wt._token_at = "T", 1e18  # logged in: fuzz the data parser, not the login
    return [
        (ElectricityMaps("em", "k", url, http=http), "/carbon-intensity/latest"),
        (wt, "/v3/forecast"),
        (UKCarbonIntensity("uk", url, http=http), "/intensity"),
        (CarbonAwareSDK("gsf", url, http=http), "/emissions/bylocations"),
    ]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=json_values,
    raw=st.booleans(),
    text=st.text(max_size=60),
    status=st.sampled_from([200, 200, 400, 403]),
)
def test_json_parsers_raise_only_signal_errors(
    server: FeedServer, body: Any, raw: bool, text: str, status: int
) -> None:
    server.route("/login", Answer(200, '{"token": "T"}'))
    for provider, path in _providers(server.url):
        server.route(path, Answer(status, text if raw else json.dumps(body)))
        with contextlib.suppress(SignalError):
            provider.latest("GB", Signal.CARBON, T0)


xml_bits = st.sampled_from(
    [
        "<Publication_MarketDocument>",
        "</Publication_MarketDocument>",
        "<TimeSeries>",
        "</TimeSeries>",
        "<Period>",
        "</Period>",
        "<timeInterval><start>2023-06-01T00:00Z</start><end>2023-06-01T02:00Z</end></timeInterval>",
        "<resolution>PT60M</resolution>",
        "<resolution>PT0M</resolution>",
        "<curveType>A03</curveType>",
        "<Point>",
        "</Point>",
        "<position>1</position>",
        "<position>-4</position>",
        "<price.amount>12.5</price.amount>",
        "<price.amount>x</price.amount>",
        "<currency_Unit.name>EUR</currency_Unit.name>",
        "<currency_Unit.name>PLN</currency_Unit.name>",
        "<classificationSequence_AttributeInstanceComponent.position>2"
        "</classificationSequence_AttributeInstanceComponent.position>",
        "<classificationSequence_AttributeInstanceComponent.position>x"
        "</classificationSequence_AttributeInstanceComponent.position>",
        "<resolution>PT15M</resolution>",
        "<GL_MarketDocument>",
        "<inBiddingZone_Domain.mRID>10Y</inBiddingZone_Domain.mRID>",
        "<MktPSRType><psrType>B16</psrType></MktPSRType>",
        "<quantity>5</quantity>",
        "<Acknowledgement_MarketDocument><Reason><text>none</text></Reason>"
        "</Acknowledgement_MarketDocument>",
        "<!-- c -->",
        "&amp;",
        "<",
        "garbage",
    ]
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    parts=st.lists(xml_bits, max_size=25),
    status=st.sampled_from([200, 400]),
    signal=st.sampled_from([Signal.PRICE, Signal.CARBON]),
)
def test_entsoe_parser_raises_only_signal_errors(
    server: FeedServer, parts: list[str], status: int, signal: Signal
) -> None:
    server.route("/api", Answer(status, "".join(parts)))
    provider = EntsoE("e", "t", server.url + "/api", http=HttpClient("e", ONCE))
    with contextlib.suppress(SignalError):
        provider.history("DE-LU", signal, T0, T0 + 3600)
