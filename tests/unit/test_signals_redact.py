"""Feed errors never carry the credentials the request was sent with, even when the provider
echoes them back (in an error body, an acknowledgement's reason, a 401's excerpt), against a
local server playing the provider."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest

from gridaware.api.signals import Signal
from gridaware.signals.base import Provider
from gridaware.signals.errors import SignalError
from gridaware.signals.http import HttpClient, RetryPolicy, sent_credentials
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.entsoe import EntsoE
from gridaware.signals.providers.watttime import WattTime
from tests.feedserver import Answer, FeedServer

ONCE = RetryPolicy(attempts=1, total_timeout=5.0, request_timeout=(0.5, 0.5))
KEY = "em-key-7f3c9a1d5e2b8c4f"
TOKEN = "entsoe-0b1e6c2a-77d4-4f0e-9a51-3c8d2e9f6a10"
PASSWORD = "wt-pass-Q9v!x2Lr#8mZ"
BEARER = "wt-bearer-eyJhbGciOiJIUzI1NiJ9.c2VjcmV0"
SECRETS = (KEY, TOKEN, PASSWORD, BEARER)
BASIC = base64.b64encode(f"gw:{PASSWORD}".encode()).decode()
ACK = (
    "<Acknowledgement_MarketDocument><Reason><code>999</code>"
    f"<text>No matching data for securityToken={TOKEN}</text></Reason>"
    "</Acknowledgement_MarketDocument>"
)


def emaps(url: str) -> Provider:
    return ElectricityMaps("em", KEY, url + "/em", http=HttpClient("em", ONCE))


def entsoe(url: str) -> Provider:
    return EntsoE("entsoe", TOKEN, url + "/api", http=HttpClient("entsoe", ONCE))


def watttime(url: str) -> Provider:
    return WattTime("wt", "gw", PASSWORD, url + "/wt", http=HttpClient("wt", ONCE))


# (provider, routes it is answered on, words the error must still have)
CASES = [
    pytest.param(
        emaps,
        {"/em/carbon-intensity/latest": Answer(400, f'{{"error": "zone? token {KEY}"}}')},
        "request rejected (400)",
        id="400-body-echoes-the-header-key",
    ),
    pytest.param(
        emaps,
        {"/em/carbon-intensity/latest": Answer(400, "x" * 190 + KEY)},
        "request rejected (400)",
        id="key-at-the-cut-of-a-long-body",
    ),
    pytest.param(
        entsoe,
        {"/api": Answer(400, f"<html>bad request ?securityToken={TOKEN}&x=1</html>")},
        "request rejected (400)",
        id="entsoe-400-echoes-the-query-token",
    ),
    pytest.param(
        entsoe, {"/api": Answer(400, ACK)}, "No matching data", id="entsoe-acknowledgement-reason"
    ),
    pytest.param(
        watttime,
        {
            "/wt/login": Answer(200, {"token": BEARER}),
            "/wt/v3/forecast": Answer(403, f'{{"message": "Invalid scope for {BEARER}"}}'),
        },
        "Invalid scope",
        id="watttime-scope-error-echoes-the-bearer",
    ),
    pytest.param(
        watttime,
        {"/wt/login": Answer(400, f"bad credentials: Basic {BASIC} ({PASSWORD})")},
        "request rejected (400)",
        id="watttime-login-echoes-basic-auth",
    ),
]


@pytest.mark.parametrize(("make", "routes", "words"), CASES)
def test_feed_errors_mask_the_credentials_sent(
    feed_server: FeedServer, make: Callable[[str], Provider], routes: dict[str, Answer], words: str
) -> None:
    for path, answer in routes.items():
        feed_server.route(path, answer)
    provider = make(feed_server.url)
    with pytest.raises(SignalError) as err:
        signal = Signal.PRICE if isinstance(provider, EntsoE) else Signal.CARBON
        provider.latest("DE-LU", signal, 1.7e9)
    text = f"{err.value} {getattr(err.value, 'detail', '')}"
    assert words in text
    leaked = [s for s in (*SECRETS, BASIC) if s in text or s[:12] in text]
    assert leaked == [], text
    assert "[redacted]" in text


@pytest.mark.parametrize(
    ("params", "headers", "auth", "expected"),
    [
        pytest.param({"securityToken": "t0k", "zone": "DE"}, None, None, {"t0k"}, id="query"),
        pytest.param(None, {"auth-token": "k"}, None, {"k"}, id="header"),
        pytest.param(None, {"Authorization": "Bearer b"}, None, {"Bearer b", "b"}, id="bearer"),
        pytest.param(None, {"Accept": "application/json"}, None, set(), id="not-a-credential"),
        pytest.param(None, None, ("user", "pw"), {"pw"}, id="basic-auth-password"),
    ],
)
def test_sent_credentials(
    params: dict[str, str] | None,
    headers: dict[str, str] | None,
    auth: tuple[str, str] | None,
    expected: set[str],
) -> None:
    assert sent_credentials(params, headers, auth) == expected
