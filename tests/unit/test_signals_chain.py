"""Fallback chains, staleness, caching, the forecaster fallback, replay and configuration."""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from gridaware.api.feeds import FeedsConfig, ProviderConfig, ZoneChain
from gridaware.api.signals import Quality, Signal
from gridaware.signals import factory
from gridaware.signals.chain import Feeds
from gridaware.signals.errors import SignalError, SignalUnavailableError
from gridaware.signals.http import HttpClient, RetryPolicy
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.local import Replay, Static, Synthetic
from tests.conftest import SHARED_DATA
from tests.feedserver import Answer, FeedServer

FAST = RetryPolicy(
    attempts=2, base_delay=0.01, max_delay=0.1, total_timeout=3.0, request_timeout=(0.5, 0.5)
)
NOW = dt.datetime(2023, 6, 1, 12, 30, tzinfo=dt.UTC).timestamp()


def _feeds(server: FeedServer, chain: list[str], **cfg: float) -> Feeds:
    config = FeedsConfig(
        providers={
            "em": ProviderConfig(type="electricitymaps"),
            "static": ProviderConfig(type="static"),
            "synthetic": ProviderConfig(type="synthetic"),
        },
        default=ZoneChain(carbon=chain, price=chain),
        **cfg,
    )
    providers = {
        "em": ElectricityMaps("em", "KEY", server.url, http=HttpClient("em", FAST)),
        "static": Static("static", {"DE": {"carbon": 400, "price": 90}}),
        "synthetic": Synthetic(),
    }
    return Feeds(config, providers, clock=lambda: NOW)


def _latest(value: float, when: str = "2023-06-01T12:00Z") -> dict[str, object]:
    return {"zone": "DE", "carbonIntensity": value, "datetime": when, "isEstimated": False}


def test_first_provider_answers(feed_server: FeedServer) -> None:
    feed_server.route("/carbon-intensity/latest", _latest(300))
    r = _feeds(feed_server, ["em", "static"]).reading("DE", Signal.CARBON)
    assert (r.value, r.source, r.stale, r.age_seconds, r.errors) == (300, "em", False, 0, ())


def test_falls_back_when_the_provider_fails(feed_server: FeedServer) -> None:
    feed_server.route("/carbon-intensity/latest", Answer(503))
    r = _feeds(feed_server, ["em", "static"]).reading("DE", Signal.CARBON)
    assert (r.value, r.source, r.stale) == (400, "static", False)
    assert r.quality is Quality.ESTIMATED
    assert "server error 503" in r.errors[0]


def test_falls_back_when_the_value_is_stale(feed_server: FeedServer) -> None:
    feed_server.route("/carbon-intensity/latest", _latest(300, "2023-06-01T06:00Z"))
    r = _feeds(feed_server, ["em", "static"], stale_after_seconds=3600).reading("DE", Signal.CARBON)
    assert r.source == "static"
    assert "min old" in r.errors[0]


def test_only_stale_values_are_returned_flagged(feed_server: FeedServer) -> None:
    feed_server.route("/carbon-intensity/latest", _latest(300, "2023-06-01T06:00Z"))
    r = _feeds(feed_server, ["em"], stale_after_seconds=3600).reading("DE", Signal.CARBON)
    assert r.stale and r.value == 300
    assert r.age_seconds == pytest.approx(5.5 * 3600)


def test_everything_failing_is_one_signal_error(feed_server: FeedServer) -> None:
    feed_server.route("/carbon-intensity/latest", Answer(500))
    with pytest.raises(SignalError, match="no provider answered.*server error 500"):
        _feeds(feed_server, ["em"]).reading("DE", Signal.CARBON)


def test_cache_serves_repeated_reads_without_requests(feed_server: FeedServer) -> None:
    feed_server.route("/carbon-intensity/latest", _latest(300))
    feeds = _feeds(feed_server, ["em"])
    for _ in range(5):
        feeds.reading("DE", Signal.CARBON)
    assert len(feed_server.hits("/carbon-intensity/latest")) == 1


def test_forecaster_fills_in_when_no_provider_forecast(feed_server: FeedServer) -> None:
    rows = [
        {
            "carbonIntensity": 200 + 100 * ((h % 24) >= 12),
            "datetime": (
                dt.datetime(2023, 5, 24, tzinfo=dt.UTC) + dt.timedelta(hours=h)
            ).isoformat(),
        }
        for h in range(8 * 24 + 12)
    ]
    feed_server.route("/carbon-intensity/past-range", {"data": rows})
    feed_server.route("/carbon-intensity/forecast", Answer(404))
    fc = _feeds(feed_server, ["em"]).forecast("DE", Signal.CARBON, 24)
    assert fc.source.startswith("gridaware forecaster (from em")
    assert len(fc) == 24 and set(fc.quality.tolist()) == {Quality.FORECAST}
    # first lead is 13:00 (high half of the day), 12 hours later low
    assert fc.value[0] > 280 and fc.value[12] < 220


def test_synthetic_is_deterministic_and_plausible() -> None:
    s = Synthetic().history("DE-LU", Signal.CARBON, NOW, NOW + 48 * 3600)
    again = Synthetic().history("DE-LU", Signal.CARBON, NOW, NOW + 48 * 3600)
    assert np.array_equal(s.value, again.value)
    assert 5 <= s.value.min() < s.value.max() <= 1000
    assert s.value.std() > 10, "the synthetic model must vary over the day"


@pytest.mark.skipif(not (SHARED_DATA / "carbon").is_dir(), reason="needs ../shared/data")
@pytest.mark.parametrize("zone", ["DE-LU", "US-CAL-CISO", "GB"])
def test_replay_reproduces_the_trace_exactly(zone: str) -> None:
    path = SHARED_DATA / "carbon" / f"{zone}_2023_hourly.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    expected = [float(r["Carbon Intensity gCO₂eq/kWh (LCA)"]) for r in rows]
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp()
    s = Replay("replay", SHARED_DATA).history(zone, Signal.CARBON, start, start + 8760 * 3600)
    assert s.value.tolist() == expected
    assert int(s.start[0]) == int(start) and len(s) == 8760


@pytest.mark.skipif(not (SHARED_DATA / "carbon").is_dir(), reason="needs ../shared/data")
def test_replay_offset_shifts_a_recorded_day_to_now() -> None:
    day = dt.datetime(2023, 6, 1, tzinfo=dt.UTC).timestamp()
    today = dt.datetime(2026, 11, 24, tzinfo=dt.UTC).timestamp()
    shifted = Replay("r", SHARED_DATA, offset=today - day)
    plain = Replay("r", SHARED_DATA)
    a = shifted.history("DE-LU", Signal.PRICE, today, today + 24 * 3600)
    b = plain.history("DE-LU", Signal.PRICE, day, day + 24 * 3600)
    assert a.value.tolist() == b.value.tolist() and a.unit == "USD/MWh"
    assert int(a.start[0]) == int(today)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        pytest.param(
            "default: {carbon: [nope]}",
            "provider 'nope', which is not defined",
            id="unknown-provider",
        ),
        pytest.param("providers: {x: {type: magic}}", "providers.x.type", id="unknown-type"),
        pytest.param("refresh_seconds: -1", "refresh_seconds", id="negative"),
        pytest.param(
            "providers: {em: {type: electricitymaps, token: {file: a, env: B}}}",
            "exactly one",
            id="two-credentials",
        ),
        pytest.param("[1, 2", "not valid YAML", id="yaml"),
    ],
)
def test_bad_feed_configs_say_what_is_wrong(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text(yaml_text)
    with pytest.raises(factory.ConfigError, match=message):
        factory.load_config(path)


def test_credentials_come_from_files_and_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "key").write_text("FILE-KEY\n")
    monkeypatch.setenv("WT_PASS", "ENV-PASS")
    path = tmp_path / "feeds.yaml"
    path.write_text(f"""
providers:
  em: {{type: electricitymaps, token: {{file: {tmp_path / "key"}}}}}
  wt: {{type: watttime, username: {{env: WT_PASS}}, password: {{env: WT_PASS}}}}
default: {{carbon: [em, wt], price: [em]}}
""")
    feeds = factory.build(factory.load_config(path))
    assert feeds.providers["em"]._headers["auth-token"] == "FILE-KEY"  # type: ignore[attr-defined]
    assert feeds.providers["wt"]._auth == ("ENV-PASS", "ENV-PASS")  # type: ignore[attr-defined]
    monkeypatch.delenv("WT_PASS")
    with pytest.raises(SignalError, match="WT_PASS is empty"):
        factory.build(factory.load_config(path))


# --- feed outages (issue 10 item 8): keep fresh values, one refresh in flight, back off ----

ONE = RetryPolicy(attempts=1, total_timeout=3.0, request_timeout=(0.5, 0.5))
LATEST = "/carbon-intensity/latest"


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def _outage_feeds(server: FeedServer, clock: Clock, chain: list[str], **cfg: float) -> Feeds:
    config = FeedsConfig(
        providers={
            "em": ProviderConfig(type="electricitymaps"),
            "static": ProviderConfig(type="static"),
        },
        default=ZoneChain(carbon=chain, price=chain),
        **cfg,
    )
    providers = {
        "em": ElectricityMaps("em", "KEY", server.url, http=HttpClient("em", ONE)),
        "static": Static("static", {"DE": {"carbon": 400, "price": 90}}),
    }
    return Feeds(config, providers, clock=clock)


@dataclass(frozen=True)
class Step:
    """At ``at`` seconds after NOW, with the server answering ``answer`` (when asked), the
    reading is ``value`` from ``source`` (``None``: unavailable) after ``hits`` requests."""

    at: float
    answer: int | float  # an HTTP error status, or a carbon value served with 200
    value: float | None
    source: str
    stale: bool
    hits: int
    note: str = ""


OUTAGE = 3600.0  # a value for 12:00-13:00 read from 12:30: it ends 1800 s after NOW
SCENARIOS = [
    pytest.param(
        ["em"],
        {},
        [
            Step(0, 300, 300, "em", False, 1),
            Step(
                310,
                503,
                300,
                "em",
                False,
                2,
                "server error 503 (gave up after 1 attempt); serving the answer fetched 5 min ago",
            ),
            Step(320, 503, 300, "em", False, 2, "next attempt in 20 s"),  # backing off: no request
            Step(340, 503, 300, "em", False, 3, "next attempt in 60 s"),  # second failure: 60 s
            Step(399, 503, 300, "em", False, 3),
            Step(400, 280, 280, "em", False, 4),  # recovered
            Step(410, 503, 280, "em", False, 4),  # fresh again: no request
        ],
        id="five-minute-outage-serves-the-cached-value",
    ),
    pytest.param(
        ["em", "static"],
        {"stale_after_seconds": 600},
        [
            Step(0, 300, 300, "em", False, 1),
            Step(1900, 503, 300, "em", False, 2, "serving the answer fetched 32 min ago"),
            Step(2410, 503, 400, "static", False, 3, "value is 10 min old"),  # stale: fall back
            Step(2460, 500, 400, "static", False, 3),  # backing off until 60 s after 2410
        ],
        id="cached-value-served-until-stale-then-the-next-provider",
    ),
    pytest.param(
        ["em"],
        {"stale_after_seconds": 600},
        [
            Step(0, 300, 300, "em", False, 1),
            Step(2500, 503, 300, "em", True, 2, "server error 503"),  # only a stale one: flagged
        ],
        id="stale-cached-value-is-flagged-when-nothing-else-answers",
    ),
    pytest.param(
        ["em"],
        {"retry_backoff_seconds": 100, "refresh_seconds": 250},
        [
            Step(0, 503, None, "", False, 1, "next attempt in 100 s"),
            Step(50, 503, None, "", False, 1, "next attempt in 50 s"),
            Step(100, 503, None, "", False, 2, "next attempt in 200 s"),
            Step(300, 503, None, "", False, 3, "next attempt in 250 s"),  # capped at refresh
            Step(550, 300, 300, "em", False, 4),
        ],
        id="never-fetched-is-unavailable-with-the-next-attempt-time",
    ),
]


@pytest.mark.parametrize(("chain", "cfg", "steps"), SCENARIOS)
def test_feed_outage_timeline(
    feed_server: FeedServer, chain: list[str], cfg: dict[str, float], steps: list[Step]
) -> None:
    clock = Clock(NOW)
    feeds = _outage_feeds(feed_server, clock, chain, **cfg)
    for step in steps:
        clock.now = NOW + step.at
        if isinstance(step.answer, int) and step.answer >= 400:
            feed_server.route(LATEST, Answer(step.answer))
        else:
            feed_server.route(LATEST, _latest(step.answer))
        if step.value is None:
            with pytest.raises(SignalUnavailableError, match=step.note) as err:
                feeds.reading("DE", Signal.CARBON)
            assert err.value.retry_at > clock.now and err.value.zone == "DE"
        else:
            r = feeds.reading("DE", Signal.CARBON)
            assert (r.value, r.source, r.stale) == (step.value, step.source, step.stale), step
            assert step.note in " | ".join(r.errors), (step, r.errors)
        assert len(feed_server.hits(LATEST)) == step.hits, step


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        pytest.param(Answer(200, _latest(300), delay=0.3), "value", id="success-is-shared"),
        pytest.param(Answer(503, delay=0.3), "error", id="failure-is-shared"),
    ],
)
def test_concurrent_callers_share_one_refresh(
    feed_server: FeedServer, answer: Answer, outcome: str
) -> None:
    feed_server.route(LATEST, answer)
    feeds = _outage_feeds(feed_server, Clock(NOW), ["em"])
    results: list[object] = []

    def call() -> None:
        try:
            results.append(feeds.reading("DE", Signal.CARBON).value)
        except SignalError as exc:
            results.append(type(exc))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert len(feed_server.hits(LATEST)) == 1
    assert results == [300.0] * 8 if outcome == "value" else [SignalUnavailableError] * 8


def test_health_reports_failing_queries(feed_server: FeedServer) -> None:
    feed_server.route(LATEST, Answer(503))
    clock = Clock(NOW)
    feeds = _outage_feeds(feed_server, clock, ["em", "static"])
    feeds.reading("DE", Signal.CARBON)
    failing, ok = feeds.health()
    assert (failing.provider, failing.failures, failing.fetched_at) == ("em", 1, None)
    assert "503" in failing.last_error and failing.retry_at == NOW + 30
    assert (ok.provider, ok.failures, ok.fetched_at, ok.last_error) == ("static", 0, NOW, "")


@pytest.mark.parametrize(
    ("status", "requests"),
    [
        pytest.param(503, 1, id="unreachable-provider-is-left-alone-for-all-zones"),
        pytest.param(404, 3, id="no-data-for-one-zone-does-not-stop-the-others"),
    ],
)
def test_outage_costs_one_retry_budget_not_one_per_zone(
    feed_server: FeedServer, status: int, requests: int
) -> None:
    feed_server.route(LATEST, Answer(status))
    clock = Clock(NOW)
    feeds = _outage_feeds(feed_server, clock, ["em", "static"])
    for zone in ("DE", "FR", "NL"):
        with contextlib.suppress(SignalError):
            feeds.reading(zone, Signal.CARBON)
    assert len(feed_server.hits(LATEST)) == requests
    clock.now += 31  # backoff over: the provider is asked again
    feed_server.route(LATEST, _latest(300))
    assert feeds.reading("FR", Signal.CARBON).source == "em"
