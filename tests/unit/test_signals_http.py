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


class FakeClock:
    """A monotonic clock that only moves when the client sleeps (requests take no time)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


BUDGET = RetryPolicy(
    attempts=5, base_delay=0.01, max_delay=0.05, total_timeout=60.0, request_timeout=(0.5, 0.5)
)


@pytest.mark.parametrize(
    ("retry_after", "answers", "sleeps", "outcome"),
    [
        pytest.param("45", 1, [45.0], "ok", id="retry-after-45s-beyond-the-old-20s-cap-is-obeyed"),
        pytest.param("59", 1, [59.0], "ok", id="retry-after-just-inside-the-budget"),
        pytest.param(
            "120", 1, [], "beyond the 60 s left", id="retry-after-beyond-budget-fails-fast"
        ),
        pytest.param("30", 2, [30.0], "beyond the 30 s left", id="second-wait-would-overrun"),
        pytest.param(
            "60", 1, [], "beyond the 60 s left", id="retry-after-leaving-no-time-to-ask-fails-fast"
        ),
    ],
)
def test_retry_after_is_obeyed_within_the_total_budget(
    feed_server: FeedServer, retry_after: str, answers: int, sleeps: list[float], outcome: str
) -> None:
    limited = Answer(429, "slow down", {"Retry-After": retry_after})
    feed_server.route("/x", *([limited] * answers), Answer(200, "ok"))
    clock = FakeClock()
    client = HttpClient("t", BUDGET, monotonic=clock.monotonic, sleep=clock.sleep)
    if outcome == "ok":
        assert client.get(feed_server.url + "/x").text == "ok"
    else:
        with pytest.raises(FeedUnavailableError, match=outcome):
            client.get(feed_server.url + "/x")
    assert clock.sleeps == sleeps
    assert clock.now <= BUDGET.total_timeout


def test_backoff_never_sleeps_past_the_budget(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(503))
    clock = FakeClock()
    policy = RetryPolicy(attempts=50, base_delay=4.0, max_delay=8.0, total_timeout=20.0)
    with pytest.raises(FeedUnavailableError, match="server error 503"):
        HttpClient("t", policy, monotonic=clock.monotonic, sleep=clock.sleep).get(
            feed_server.url + "/x"
        )
    assert clock.now <= policy.total_timeout
    assert len(feed_server.hits("/x")) == len(clock.sleeps) + 1


def test_requests_are_not_given_more_time_than_is_left(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(200, "late", delay=1.5))
    policy = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.01, total_timeout=1.0)
    # the default 15 s read timeout would let this 1.5 s answer through: the budget cuts it
    with pytest.raises(FeedUnavailableError, match="timed out"):
        HttpClient("t", policy).get(feed_server.url + "/x")
    assert len(feed_server.hits("/x")) == 1  # no time was left for a second attempt


def test_accepted_error_status_is_returned(feed_server: FeedServer) -> None:
    feed_server.route("/x", Answer(400, "<ack/>"))
    resp = HttpClient("t", FAST).get(feed_server.url + "/x", accept=(400,))
    assert (resp.status_code, resp.text) == (400, "<ack/>")
