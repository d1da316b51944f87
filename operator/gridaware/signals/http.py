"""HTTP with the retry policy every provider shares.

Retries (tenacity): connection errors, timeouts, 429 and 5xx, with exponential backoff and full
jitter, honouring ``Retry-After`` (seconds or HTTP date) up to a cap, within a bounded total
time. 4xx answers other than 429 are not retried; 401/403 become ``FeedAuthError`` with a
message that names the provider but never the credential.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import tenacity

from gridaware.signals.errors import FeedAuthError, FeedUnavailableError, NoDataError


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    total_timeout: float = 45.0
    request_timeout: tuple[float, float] = (3.05, 15.0)


class _RetryableError(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpClient:
    """A requests session plus the shared retry policy, for one provider."""

    def __init__(
        self,
        provider: str,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.provider = provider
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "gridaware (+carbon-aware batch scheduling)"

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        backoff = random.uniform(  # noqa: S311 - jitter, not cryptography
            0, min(self.policy.max_delay, self.policy.base_delay * 2 ** (state.attempt_number - 1))
        )
        if isinstance(exc, _RetryableError) and exc.retry_after is not None:
            return min(self.policy.max_delay, exc.retry_after)
        return backoff

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> requests.Response:
        """GET with retries; returns a 2xx response or raises a ``SignalError``."""
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_RetryableError),
            stop=(
                tenacity.stop_after_attempt(self.policy.attempts)
                | tenacity.stop_after_delay(self.policy.total_timeout)
            ),
            wait=self._wait,
            reraise=True,
        )
        try:
            return retrying(self._once, url, params, headers, auth)
        except _RetryableError as exc:
            raise FeedUnavailableError(f"{self.provider}: {exc}") from None

    def _once(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
    ) -> requests.Response:
        try:
            resp = self.session.get(
                url, params=params, headers=headers, auth=auth, timeout=self.policy.request_timeout
            )
        except requests.Timeout:
            raise _RetryableError("timed out") from None
        except requests.RequestException as exc:
            raise _RetryableError(f"connection failed ({exc.__class__.__name__})") from None
        code = resp.status_code
        if code == 429:
            raise _RetryableError(
                "rate limited (429)", parse_retry_after(resp.headers.get("Retry-After"))
            )
        if code >= 500:
            raise _RetryableError(
                f"server error {code}", parse_retry_after(resp.headers.get("Retry-After"))
            )
        if code in (401, 403):
            raise FeedAuthError(
                f"{self.provider}: credentials refused ({code}); check the API key or "
                "password configured for this provider"
            )
        if code == 404:
            raise NoDataError(f"{self.provider}: not found (404) for {resp.url.split('?')[0]}")
        if code >= 400:
            raise NoDataError(f"{self.provider}: request rejected ({code}): {_short(resp.text)}")
        return resp


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
