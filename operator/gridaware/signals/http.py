"""HTTP with the retry policy every provider shares.

Retries: connection errors, timeouts, 429 and 5xx, with exponential backoff and full jitter,
honouring ``Retry-After`` (seconds or HTTP date) however long it is, but always within one
total time budget per call: no wait and no request timeout reaches past it, and a
``Retry-After`` beyond what is left fails at once with a message that says so (waiting would
only block the caller and then fail anyway). 4xx answers other than 429 are not retried;
401/403 become ``FeedAuthError`` with a message that names the provider but never the
credential. A provider can take some error statuses back as answers (``accept``) when its
error bodies need its own parser (ENTSO-E's acknowledgement documents).
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

import requests

from gridaware.signals.errors import FeedAuthError, FeedUnavailableError, NoDataError

# Below this much remaining budget a further attempt cannot complete a request.
MIN_ATTEMPT_SECONDS = 0.05


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0  # cap of our own backoff; a provider's Retry-After is not capped
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
    """A requests session plus the shared retry policy, for one provider.

    ``monotonic`` and ``sleep`` are the clock the budget is measured with; tests pass a fake
    pair to check long ``Retry-After`` values without waiting.
    """

    def __init__(
        self,
        provider: str,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.provider = provider
        self.policy = policy or RetryPolicy()
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = "gridaware (+carbon-aware batch scheduling)"
        self._monotonic = monotonic
        self._sleep = sleep

    def _backoff(self, attempt: int) -> float:
        cap = min(self.policy.max_delay, self.policy.base_delay * 2 ** (attempt - 1))
        return random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        accept: Collection[int] = (),
    ) -> requests.Response:
        """GET with retries; returns a 2xx response (or one whose status is in ``accept``)
        or raises a ``SignalError``."""
        deadline = self._monotonic() + self.policy.total_timeout
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - self._monotonic()
            try:
                return self._once(url, params, headers, auth, accept, remaining)
            except _RetryableError as exc:
                self._pause(exc, attempt, deadline)

    def _pause(self, exc: _RetryableError, attempt: int, deadline: float) -> None:
        """Sleep before the next attempt, or raise when the attempts or the budget are spent."""
        budget = self.policy.total_timeout
        if attempt >= self.policy.attempts:
            raise FeedUnavailableError(
                f"{self.provider}: {exc} (gave up after {_attempts(attempt)})"
            ) from None
        remaining = deadline - self._monotonic()
        if exc.retry_after is not None:
            if exc.retry_after + MIN_ATTEMPT_SECONDS > remaining:
                raise FeedUnavailableError(
                    f"{self.provider}: {exc}; the provider asks to wait "
                    f"{exc.retry_after:.0f} s, beyond the {max(0.0, remaining):.0f} s left of "
                    f"the {budget:.0f} s retry budget"
                ) from None
            delay = exc.retry_after
        else:
            delay = self._backoff(attempt)
            if delay + MIN_ATTEMPT_SECONDS > remaining:
                raise FeedUnavailableError(
                    f"{self.provider}: {exc} (retry budget of {budget:.0f} s used up after "
                    f"{_attempts(attempt)})"
                ) from None
        self._sleep(delay)

    def _once(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
        accept: Collection[int],
        remaining: float,
    ) -> requests.Response:
        if remaining < MIN_ATTEMPT_SECONDS:
            raise FeedUnavailableError(
                f"{self.provider}: retry budget of {self.policy.total_timeout:.0f} s used up"
            )
        connect, read = self.policy.request_timeout
        try:
            resp = self.session.get(
                url,
                params=params,
                headers=headers,
                auth=auth,
                timeout=(min(connect, remaining), min(read, remaining)),
            )
        except requests.Timeout:
            raise _RetryableError("timed out") from None
        except requests.RequestException as exc:
            raise _RetryableError(f"connection failed ({exc.__class__.__name__})") from None
        code = resp.status_code
        if code in accept or 200 <= code < 300:
            return resp
        return _refuse(self.provider, resp)


def _refuse(provider: str, resp: requests.Response) -> requests.Response:
    """Raise the error a non-2xx answer stands for."""
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
            f"{provider}: credentials refused ({code}); check the API key or "
            "password configured for this provider",
            status=code,
            detail=_short(resp.text, 600),
        )
    if code == 404:
        raise NoDataError(f"{provider}: not found (404) for {resp.url.split('?')[0]}")
    if code >= 400:
        raise NoDataError(f"{provider}: request rejected ({code}): {_short(resp.text)}")
    raise NoDataError(f"{provider}: unexpected answer {code}")


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
