"""Every feed client on the responses the providers really send (../shared/data/feeds).

The files are read where they are, never copied; without them these tests skip. Each file has
one expected outcome (a parsed series, spot-checked, or a named ``SignalError``); a new file
without an entry in ``CASES`` fails, so none is left untried. Every provider is also run on
every file to show that a wrong or unexpected body only ever raises ``SignalError``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gridaware.api.signals import EmissionKind, Quality, Series, Signal
from gridaware.signals.base import Provider
from gridaware.signals.errors import (
    FeedAuthError,
    FeedDataError,
    FeedScopeError,
    NoDataError,
    SignalError,
)
from gridaware.signals.http import HttpClient, RetryPolicy
from gridaware.signals.providers.carbonaware import CarbonAwareSDK
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.entsoe import EntsoE
from gridaware.signals.providers.ukci import UKCarbonIntensity
from gridaware.signals.providers.watttime import WattTime
from tests.conftest import SHARED_DATA
from tests.feedserver import Answer, FeedServer

FEEDS = SHARED_DATA / "feeds"
ONCE = RetryPolicy(attempts=1, total_timeout=5.0, request_timeout=(1.0, 2.0))
DOCS = {"README.md", "SOURCES.txt"}


def t(text: str) -> int:
    return int(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def files() -> list[str]:
    if not FEEDS.is_dir():
        return []
    return sorted(
        str(p.relative_to(FEEDS)) for p in FEEDS.glob("*/*") if p.is_file() and p.name not in DOCS
    )


@dataclass(frozen=True)
class Points:
    """A parsed series: its size, first start, first and last values, interval lengths."""

    n: int
    first: str
    values: tuple[float, float]
    lengths: frozenset[int]
    unit: str = "gCO2e/kWh"
    kind: EmissionKind | None = EmissionKind.AVERAGE


@dataclass(frozen=True)
class Raises:
    error: type[SignalError]
    match: str


Call = Callable[[str], Series]


@dataclass(frozen=True)
class Case:
    route: str
    call: Call
    expect: Points | Raises
    status: int = 200


# --- how each provider is asked ------------------------------------------------------------


def _em(at: str) -> ElectricityMaps:
    return ElectricityMaps("em", "KEY", at, http=HttpClient("em", ONCE))


def em_latest(url: str) -> Series:
    return _em(url).latest("DE", Signal.CARBON, t("2024-01-01T00:00Z"))


def em_price(url: str) -> Series:
    return _em(url).latest("AT", Signal.PRICE, t("2025-10-24T10:30Z"))


def em_forecast(url: str) -> Series:
    return _em(url).forecast("DE", Signal.CARBON, t("2023-05-02T20:00Z"), 48)


def em_past_range(url: str) -> Series:
    return _em(url).history("DE", Signal.CARBON, t("2019-05-21T00:00Z"), t("2019-05-22T00:00Z"))


def em_recent(url: str) -> Series:
    """History inside the last 24 h (the provider's clock at the file's date)."""
    now = t("2024-03-06T19:30Z")
    provider = ElectricityMaps("em", "KEY", url, http=HttpClient("em", ONCE), clock=lambda: now)
    return provider.history("DE", Signal.CARBON, now - 20 * 3600, now)


def _wt(url: str) -> WattTime:
    return WattTime("wt", "user", "pw", url, http=HttpClient("wt", ONCE))


def wt_forecast(url: str) -> Series:
    return _wt(url).forecast("CAISO_NORTH", Signal.CARBON, t("2022-07-15T00:00Z"), 24)


def wt_history(url: str) -> Series:
    start = t("2022-07-15T00:00Z")
    return _wt(url).history("CAISO_NORTH", Signal.CARBON, start, start + 3600)


def uk_latest(url: str) -> Series:
    return UKCarbonIntensity("uk", url, http=HttpClient("uk", ONCE)).latest(
        "GB", Signal.CARBON, t("2018-01-20T12:10Z")
    )


def uk_forecast(url: str) -> Series:
    return UKCarbonIntensity("uk", url, http=HttpClient("uk", ONCE)).forecast(
        "GB", Signal.CARBON, t("2020-05-21T21:00Z"), 24
    )


def uk_regional(url: str) -> Series:
    return UKCarbonIntensity("uk", url, http=HttpClient("uk", ONCE)).forecast(
        "GB-11", Signal.CARBON, t("2025-10-22T23:30Z"), 48
    )


def _gsf(url: str) -> CarbonAwareSDK:
    return CarbonAwareSDK("gsf", url, http=HttpClient("gsf", ONCE))


def gsf_history(url: str) -> Series:
    return _gsf(url).history(
        "westus", Signal.CARBON, t("2022-05-17T00:00Z"), t("2022-08-24T00:00Z")
    )


def gsf_forecast(url: str) -> Series:
    return _gsf(url).forecast("northeurope", Signal.CARBON, t("2022-07-19T14:00Z"), 24)


def _entsoe(url: str) -> EntsoE:
    return EntsoE("entsoe", "TOKEN", url + "/api", http=HttpClient("entsoe", ONCE))


def entsoe_prices(url: str) -> Series:
    return _entsoe(url).history(
        "DE-LU", Signal.PRICE, t("2025-09-28T22:00Z"), t("2025-10-02T22:00Z")
    )


def entsoe_carbon(url: str) -> Series:
    return _entsoe(url).history("FR", Signal.CARBON, t("2023-05-09T00:00Z"), t("2023-05-10T00:00Z"))


EM_CARBON = "/carbon-intensity"
ENTSOE_GEN = "entsoe: expected a GL_MarketDocument, got a Publication_MarketDocument"
H, Q = frozenset({3600}), frozenset({900})

CASES: dict[str, Case] = {
    # Electricity Maps
    "electricitymaps/aioem_latest_carbon_intensity.json": Case(
        f"{EM_CARBON}/latest", em_latest, Points(1, "2024-03-06T19:00Z", (216, 216), H)
    ),
    "electricitymaps/boavizta_latest_AT.json": Case(
        f"{EM_CARBON}/latest", em_latest, Points(1, "2025-10-17T11:00Z", (245, 245), H)
    ),
    "electricitymaps/voltorb_docs_latest.json": Case(
        f"{EM_CARBON}/latest", em_latest, Points(1, "2018-04-25T18:07Z", (302, 302), H)
    ),
    "electricitymaps/boavizta_price_latest_AT.json": Case(
        "/price-day-ahead/latest",
        em_price,
        Points(1, "2025-10-24T10:00Z", (82.4, 82.4), H, "EUR/MWh", None),
    ),
    "electricitymaps/elephpant_forecast_DE_2023-05-02.json": Case(
        f"{EM_CARBON}/forecast", em_forecast, Points(48, "2023-05-02T20:00Z", (557, 590), H)
    ),
    "electricitymaps/voltorb_docs_forecast.json": Case(
        f"{EM_CARBON}/forecast", em_forecast, Points(3, "2018-11-26T17:00Z", (326, 194), H)
    ),
    "electricitymaps/voltorb_docs_past_range.json": Case(
        f"{EM_CARBON}/past-range", em_past_range, Points(3, "2019-05-21T21:00Z", (339, 305), H)
    ),
    "electricitymaps/ifem_past_range_response.json": Case(
        f"{EM_CARBON}/past-range", em_past_range, Points(2, "2024-03-18T02:00Z", (161, 167), H)
    ),
    "electricitymaps/aioem_carbon_intensity_history.json": Case(
        f"{EM_CARBON}/history", em_recent, Points(21, "2024-03-05T23:00Z", (606, 689), H)
    ),
    # WattTime (login answered with wt_login.json by the test)
    "watttime/wt_v3_forecast.json": Case(
        "/v3/forecast",
        wt_forecast,
        Points(
            288,
            "2022-07-15T00:00Z",
            (870 * 0.45359237, 870 * 0.45359237),
            frozenset({300}),
            kind=EmissionKind.MARGINAL,
        ),
    ),
    "watttime/wt_v3_historical.json": Case(
        "/v3/historical",
        wt_history,
        Points(
            2,
            "2022-07-15T00:00Z",
            (870 * 0.45359237, 860 * 0.45359237),
            frozenset({300}),
            kind=EmissionKind.MARGINAL,
        ),
    ),
    "watttime/aiowatttime_historical_emissions_response.json": Case(
        "/v3/historical",
        wt_history,
        Points(
            2,
            "2022-07-15T00:00Z",
            (870 * 0.45359237, 860 * 0.45359237),
            frozenset({300}),
            kind=EmissionKind.MARGINAL,
        ),
    ),
    "watttime/aiowatttime_realtime_emissions_response.json": Case(
        "/v3/forecast", wt_forecast, Raises(FeedDataError, "unexpected units 'percentile'")
    ),
    "watttime/wt_error_response.json": Case(
        "/v3/forecast", wt_forecast, Raises(NoDataError, "invalid parameters"), status=400
    ),
    "watttime/aiowatttime_invalid_scope_response.json": Case(
        "/v3/forecast",
        wt_forecast,
        Raises(FeedScopeError, "outside this WattTime account's plan.*free access to CAISO_ZP26"),
        status=403,
    ),
    "watttime/aiowatttime_403_forbidden_response.html": Case(
        "/v3/forecast", wt_forecast, Raises(FeedAuthError, "credentials refused \\(403\\)"), 403
    ),
    "watttime/wt_login.json": Case(
        "/v3/forecast", wt_forecast, Raises(FeedDataError, "missing 'meta'")
    ),
    # GB Carbon Intensity
    "ukci/apidefs_intensity.json": Case(
        "/intensity", uk_latest, Points(1, "2018-01-20T12:00Z", (263, 263), frozenset({1800}))
    ),
    "ukci/emoncms_intensity_fw24h_2020-05-21.json": Case(
        "/intensity/2020-05-21T21:00Z/fw48h",
        uk_forecast,
        Points(49, "2020-05-21T20:30Z", (190, 68), frozenset({1800})),
    ),
    "ukci/predbat_regional_fw48h_BS16_2025-10-22.json": Case(
        "/regional/intensity/2025-10-22T23:30Z/fw48h/regionid/11",
        uk_regional,
        Points(9, "2025-10-22T23:30Z", (162, 143), frozenset({1800})),
    ),
    # Carbon Aware SDK
    "carbonaware/casdk_bylocation_enablement.json": Case(
        "/emissions/bylocations",
        gsf_history,
        Points(8, "2022-08-23T13:55Z", (445.42770734000004, 439.07741416000005), frozenset({300})),
    ),
    "carbonaware/casdk_bylocation_webapi_md.json": Case(
        "/emissions/bylocations",
        gsf_history,
        Points(1, "2022-05-17T20:45:11Z", (70, 70), frozenset({300})),
    ),
    "carbonaware/casdk_forecasts_current_webapi_md.json": Case(
        "/emissions/forecasts/current",
        gsf_forecast,
        Points(2, "2022-07-19T14:00Z", (532.02293146, 535.7318741001667), frozenset({600})),
    ),
    # ENTSO-E prices
    "entsoe/emaps_ES_day_ahead_price.xml": Case(
        "/api",
        entsoe_prices,
        Points(240, "2025-09-28T22:00Z", (51.6, 103.27), H | Q, "EUR/MWh", None),
    ),
    "entsoe/derived_ES_A44_0930_1001_subset.xml": Case(
        "/api",
        entsoe_prices,
        Points(120, "2025-09-29T22:00Z", (95.46, 101.52), H | Q, "EUR/MWh", None),
    ),
    "entsoe/emaps_FR_prices.xml": Case(
        "/api", entsoe_prices, Points(48, "2023-05-06T22:00Z", (106.78, 104.04), H, "EUR/MWh", None)
    ),
    "entsoe/openhab_DE-LU_A44_PT15M_two_sequences_day1.xml": Case(
        "/api", entsoe_prices, Points(96, "2025-10-30T23:00Z", (102.81, 42.37), Q, "EUR/MWh", None)
    ),
    "entsoe/derived_DE-LU_A44_sequences_swapped_order.xml": Case(
        "/api", entsoe_prices, Points(96, "2025-10-30T23:00Z", (102.81, 42.37), Q, "EUR/MWh", None)
    ),
    "entsoe/hexagon_acknowledgement.invalidrequest.xml": Case(
        "/api", entsoe_prices, Raises(NoDataError, "^entsoe: No matching data found$"), status=400
    ),
    "entsoe/hexagon_publication.a03curvetype.xml": Case(
        "/api", entsoe_prices, Raises(FeedDataError, "price unit per 'EUR', expected MWH")
    ),
    "entsoe/emaps_fake_time_series.xml": Case(
        "/api", entsoe_prices, Raises(FeedDataError, "unexpected document <TimeSeries>")
    ),
    # ENTSO-E generation (estimated carbon intensity)
    "entsoe/emaps_BE_entsoe_production.xml": Case(
        "/api", entsoe_carbon, Points(2, "2024-01-01T00:00Z", (92.62, 88.50), H)
    ),
    "entsoe/emaps_FI_production.xml": Case(
        "/api", entsoe_carbon, Points(288, "2025-10-21T12:00Z", (52.13, 89.14), Q)
    ),
    "entsoe/emaps_LU_production.xml": Case(
        "/api", entsoe_carbon, Points(287, "2024-05-21T10:00Z", (122.55, 150.72), Q)
    ),
    "entsoe/emaps_NO-NO5_production.xml": Case(
        "/api", entsoe_carbon, Points(47, "2023-05-09T09:00Z", (27.0, 24.53), H)
    ),
    "entsoe/emaps_NO-NO5_production-negatives.xml": Case(
        "/api", entsoe_carbon, Points(47, "2023-05-09T09:00Z", (27.0, 24.53), H)
    ),
    "entsoe/emaps_SE-SE4_production.xml": Case(
        "/api", entsoe_carbon, Points(71, "2025-10-20T11:00Z", (80.02, 143.65), H)
    ),
}


def serve(server: FeedServer, rel: str, case: Case) -> None:
    server.route(case.route, Answer(case.status, (FEEDS / rel).read_bytes()))
    if rel.startswith("watttime/"):
        server.route("/login", Answer(200, (FEEDS / "watttime/wt_login.json").read_bytes()))


@pytest.mark.parametrize("rel", files())
def test_provider_on_real_response(feed_server: FeedServer, rel: str) -> None:
    case = CASES.get(rel)
    assert case is not None, f"no expected outcome for {rel}: add it to CASES"
    serve(feed_server, rel, case)
    if isinstance(case.expect, Raises):
        with pytest.raises(case.expect.error, match=case.expect.match):
            case.call(feed_server.url)
        return
    want = case.expect
    series = case.call(feed_server.url)
    first = dt.datetime.fromtimestamp(int(series.start[0]), dt.UTC)
    assert len(series) == want.n
    assert first == dt.datetime.fromisoformat(want.first.replace("Z", "+00:00"))
    assert series.value[[0, -1]] == pytest.approx(want.values, abs=0.01)
    assert set(series.length.tolist()) == want.lengths
    assert (series.unit, series.kind) == (want.unit, want.kind)


def test_every_expectation_names_an_existing_file() -> None:
    if not FEEDS.is_dir():
        pytest.skip(f"{FEEDS} is absent")
    assert sorted(CASES) == files()


# --- behaviours the real documents pin down ------------------------------------------------


@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_entsoe_sequences_do_not_depend_on_document_order(feed_server: FeedServer) -> None:
    got = []
    for name in (
        "openhab_DE-LU_A44_PT15M_two_sequences_day1.xml",
        "derived_DE-LU_A44_sequences_swapped_order.xml",
    ):
        feed_server.route("/api", Answer(200, (FEEDS / "entsoe" / name).read_bytes()))
        got.append(entsoe_prices(feed_server.url))
    assert got[0].start.tolist() == got[1].start.tolist()
    assert got[0].value.tolist() == got[1].value.tolist()
    # sequence 1 (SDAC) rather than the EXAA auction of sequence 2 (91.45 at 23:00)
    assert got[0].value[0] == 102.81


@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_entsoe_sequence_two_on_request(feed_server: FeedServer) -> None:
    doc = FEEDS / "entsoe" / "openhab_DE-LU_A44_PT15M_two_sequences_day1.xml"
    feed_server.route("/api", Answer(200, doc.read_bytes()))
    exaa = EntsoE("e", "T", feed_server.url + "/api", http=HttpClient("e", ONCE), sequence=2)
    series = exaa.history("DE-LU", Signal.PRICE, t("2025-10-30T23:00Z"), t("2025-10-31T23:00Z"))
    # sequence 2 has 94 of 96 quarter hours; the two it lacks come from sequence 1
    assert len(series) == 96 and series.value[0] == 91.45


@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_entsoe_hourly_days_survive_next_to_quarter_hours(feed_server: FeedServer) -> None:
    doc = FEEDS / "entsoe" / "derived_ES_A44_0930_1001_subset.xml"
    feed_server.route("/api", Answer(200, doc.read_bytes()))
    series = entsoe_prices(feed_server.url)
    day1 = series.window(t("2025-09-29T22:00Z"), t("2025-09-30T22:00Z"))
    day2 = series.window(t("2025-09-30T22:00Z"), t("2025-10-01T22:00Z"))
    assert (len(day1), set(day1.length.tolist())) == (24, {3600})
    assert (len(day2), set(day2.length.tolist())) == (96, {900})
    assert series.end - int(series.start[0]) == 2 * 86400  # no hole, no overlap


@pytest.mark.parametrize(
    "status", [pytest.param(200, id="http-200"), pytest.param(400, id="http-400")]
)
@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_entsoe_acknowledgement_is_no_data(feed_server: FeedServer, status: int) -> None:
    doc = FEEDS / "entsoe" / "hexagon_acknowledgement.invalidrequest.xml"
    feed_server.route("/api", Answer(status, doc.read_bytes()))
    with pytest.raises(NoDataError, match="No matching data found") as err:
        entsoe_carbon(feed_server.url)
    assert "<" not in str(err.value)  # the reason, not raw XML


@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_em_history_endpoints(feed_server: FeedServer) -> None:
    """The last 24 h come from /history; an older window from /past-range."""
    feed_server.route(
        f"{EM_CARBON}/history",
        Answer(200, (FEEDS / "electricitymaps/aioem_carbon_intensity_history.json").read_bytes()),
    )
    feed_server.route(
        f"{EM_CARBON}/past-range",
        Answer(200, (FEEDS / "electricitymaps/voltorb_docs_past_range.json").read_bytes()),
    )
    em_recent(feed_server.url)
    em_past_range(feed_server.url)
    assert len(feed_server.hits(f"{EM_CARBON}/history")) == 1
    past = feed_server.hits(f"{EM_CARBON}/past-range")
    assert len(past) == 1 and past[0].query["start"] == ["2019-05-21T00:00:00Z"]


@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_watttime_html_403_logs_in_again_once(feed_server: FeedServer) -> None:
    html = (FEEDS / "watttime/aiowatttime_403_forbidden_response.html").read_bytes()
    forecast = (FEEDS / "watttime/wt_v3_forecast.json").read_bytes()
    feed_server.route("/login", Answer(200, (FEEDS / "watttime/wt_login.json").read_bytes()))
    feed_server.route("/v3/forecast", Answer(403, html), Answer(200, forecast))
    assert len(wt_forecast(feed_server.url)) == 288
    assert len(feed_server.hits("/login")) == 2


@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_watttime_scope_error_does_not_log_in_again(feed_server: FeedServer) -> None:
    scope = (FEEDS / "watttime/aiowatttime_invalid_scope_response.json").read_bytes()
    feed_server.route("/login", Answer(200, (FEEDS / "watttime/wt_login.json").read_bytes()))
    feed_server.route("/v3/forecast", Answer(403, scope))
    with pytest.raises(FeedScopeError, match="region CAISO_NORTH"):
        wt_forecast(feed_server.url)
    assert len(feed_server.hits("/login")) == 1


@pytest.mark.skipif(not FEEDS.is_dir(), reason="shared feed responses absent")
def test_watttime_refused_login_is_an_auth_error(feed_server: FeedServer) -> None:
    html = (FEEDS / "watttime/aiowatttime_403_forbidden_response.html").read_bytes()
    feed_server.route("/login", Answer(403, html))
    with pytest.raises(FeedAuthError, match="credentials refused"):
        wt_forecast(feed_server.url)


@pytest.mark.parametrize(
    ("call", "result"),
    [
        pytest.param(gsf_history, "empty", id="history-is-empty"),
        pytest.param(
            lambda url: _gsf(url).latest("westus", Signal.CARBON, t("2022-08-23T14:40Z")),
            "no recent value",
            id="latest-is-no-data",
        ),
        pytest.param(gsf_forecast, "no forecast", id="forecast-is-no-data"),
    ],
)
def test_carbon_aware_sdk_204_is_no_data(feed_server: FeedServer, call: Call, result: str) -> None:
    feed_server.route("/emissions/bylocations", Answer(204))
    feed_server.route("/emissions/forecasts/current", Answer(204))
    if result == "empty":
        assert len(call(feed_server.url)) == 0
        return
    with pytest.raises(NoDataError, match=result):
        call(feed_server.url)


# --- every provider on every file: only SignalError ----------------------------------------


def _all_providers(url: str) -> list[tuple[Provider, str]]:
    wt = _wt(url)
    return [
        (_em(url), f"{EM_CARBON}/latest"),
        (wt, "/v3/forecast"),
        (UKCarbonIntensity("uk", url, http=HttpClient("uk", ONCE)), "/intensity"),
        (_gsf(url), "/emissions/bylocations"),
        (_entsoe(url), "/api"),
    ]


@pytest.mark.parametrize("rel", files())
def test_every_provider_on_every_file_raises_only_signal_errors(
    feed_server: FeedServer, rel: str
) -> None:
    body = (FEEDS / rel).read_bytes()
    feed_server.route("/login", Answer(200, b'{"token": "T"}'))
    outcomes = []
    for provider, route in _all_providers(feed_server.url):
        feed_server.route(route, Answer(200, body))
        for signal in sorted(provider.signals):
            with contextlib.suppress(SignalError):
                series = provider.latest("DE-LU", signal, t("2025-10-31T12:00Z"))
                outcomes.append(bool(np.all(np.isfinite(series.value))))
                assert all(int(q) in iter(Quality) for q in series.quality.tolist())
    assert all(outcomes)


def test_cases_table_is_not_empty_when_data_is_there() -> None:
    if not FEEDS.is_dir():
        pytest.skip(f"{FEEDS} is absent")
    assert len(files()) >= 30 and isinstance(FEEDS, Path)
