"""The shared HTTP policy against a local server: retries, Retry-After, auth, timeouts."""

from __future__ import annotations

import time

import pytest

from gridaware.signals.errors import FeedAuthError, FeedUnavailableError, NoDataError
from gridaware.signals.http import HttpClient, RetryPolicy, parse_retry_after
from tests.feedserver import Answer, FeedServer

FAST = RetryPolicy(
    attempts=4, base_delay=0.01, max_delay=2.0, total_timeout=5.0, request_timeout=(0.5, 0.5)
)


def test_429_with_retry_after_is_honoured(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(429, "slow down", {"Retry-After": "1"}), Answer(200, "ok"))
    started = time.monotonic()
    resp = HttpClient("t", FAST).get(feed_server.url + "/x")
    assert resp.text == "ok"
    assert time.monotonic() - started >= 0.9
    assert len(feed_server.hits("/x")) == 2


def test_5xx_burst_is_retried_then_succeeds(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(503), Answer(502), Answer(500), Answer(200, "ok"))
    assert HttpClient("t", FAST).get(feed_server.url + "/x").text == "ok"
    assert len(feed_server.hits("/x")) == 4


def test_persistent_5xx_gives_up_after_bounded_attempts(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(503))
    with pytest.raises(FeedUnavailableError, match="server error 503"):
        HttpClient("t", FAST).get(feed_server.url + "/x")
    assert len(feed_server.hits("/x")) == FAST.attempts


@pytest.mark.parametrize("status", [401, 403])
def test_auth_errors_are_not_retried_and_do_not_leak_the_key(
    feed_server: FeedServer, status: int
) -> None:
    feed_server.route("/x", Answer(status, "bad token"))
    with pytest.raises(FeedAuthError) as err:
        HttpClient("em", FAST).get(
            feed_server.url + "/x",
            headers={"auth-token": "SECRET-KEY"},
            params={"token": "SECRET-KEY"},
        )
    assert "SECRET-KEY" not in str(err.value)
    assert len(feed_server.hits("/x")) == 1


def test_other_4xx_is_no_data_without_retry(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(400, "zone unknown"))
    with pytest.raises(NoDataError, match="zone unknown"):
        HttpClient("t", FAST).get(feed_server.url + "/x")
    assert len(feed_server.hits("/x")) == 1


def test_timeouts_are_retried_within_the_total_time(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(200, "late", delay=1.0))
    started = time.monotonic()
    with pytest.raises(FeedUnavailableError, match="timed out"):
        HttpClient("t", FAST).get(feed_server.url + "/x")
    assert time.monotonic() - started < FAST.total_timeout + 1.5


def test_connection_refused_is_unavailable() -> None:
    with pytest.raises(FeedUnavailableError, match="connection failed"):
        HttpClient("t", FAST).get("http://127.0.0.1:1/x")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("7", 7.0, id="seconds"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 10.0, id="http-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    now = 1445412470.0  # 10 s before the date above
    assert parse_retry_after(header, now=now) == expected
