"""Fallback chains, staleness, caching, the forecaster fallback, replay and configuration."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gridaware.api.feeds import FeedsConfig, ProviderConfig, ZoneChain
from gridaware.api.signals import Quality, Signal
from gridaware.signals import factory
from gridaware.signals.chain import Feeds
from gridaware.signals.errors import SignalError
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
