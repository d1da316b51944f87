"""HTTP with the retry policy every provider shares.

Retries: connection errors, timeouts, 429 and 5xx, with exponential backoff and full jitter,
honouring ``Retry-After`` (seconds or HTTP date) however long it is, but always within one
total time budget per call: no wait and no request timeout reaches past it, and a
``Retry-After`` beyond what is left fails at once with a message that says so (waiting would
only block the caller and then fail anyway). 4xx answers other than 429 are not retried;
401/403 become ``FeedAuthError`` with a message that names the provider but never the
credential, and every error message and excerpt of an answer is masked (``core.redact``) for
the credentials the request carried: providers echo keys back in error bodies. A provider can
take some error statuses back as answers (``accept``) when its error bodies need its own parser
(ENTSO-E's acknowledgement documents).

The loop is ``tenacity.Retrying`` (one dependency's well-tested retry machinery instead of our
own); only the decisions are ours (``_Plan``): what to wait, when the budget forbids another
attempt, and the message when giving up. The clock and ``sleep`` are injected so tests can
check long waits without taking them.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

import requests
import tenacity

from gridaware.core.redact import redact
from gridaware.signals.errors import FeedAuthError, FeedUnavailableError, NoDataError, SignalError

# Below this much remaining budget a further attempt cannot complete a request.
MIN_ATTEMPT_SECONDS = 0.05
# Header and query parameter names whose values are credentials.
CREDENTIAL_NAME = re.compile(r"(?i)auth|token|key|secret|passw|signature")


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
        secrets = sent_credentials(params, headers, auth)
        plan = _Plan(self.provider, self.policy, self._monotonic)
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_RetryableError),
            wait=plan.wait,
            stop=plan.stop,
            sleep=self._sleep,
            retry_error_callback=plan.give_up,
        )
        try:
            return retrying(
                lambda: self._once(url, params, headers, auth, accept, plan.remaining(), secrets)
            )
        except SignalError as exc:
            mask_error(exc, secrets)
            raise

    def _once(
        self,
        url: str,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        auth: tuple[str, str] | None,
        accept: Collection[int],
        remaining: float,
        secrets: Collection[str],
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
        return _refuse(self.provider, resp, secrets)


class _Plan:
    """One call's retry decisions, as tenacity's ``wait``, ``stop`` and error callback.

    The delay before each next attempt is drawn once and remembered, so ``stop`` (which checks
    it against the budget) and ``wait`` (which sleeps it) agree whichever tenacity calls first.
    """

    def __init__(self, provider: str, policy: RetryPolicy, monotonic: Callable[[], float]) -> None:
        self._provider = provider
        self._policy = policy
        self._monotonic = monotonic
        self._deadline = monotonic() + policy.total_timeout
        self._delays: dict[int, float] = {}
        self._why = ""

    def remaining(self) -> float:
        return self._deadline - self._monotonic()

    def wait(self, state: tenacity.RetryCallState) -> float:
        """``Retry-After`` as given (uncapped), else capped exponential backoff, full jitter."""
        n = state.attempt_number
        if n not in self._delays:
            after = _failure(state).retry_after
            cap = min(self._policy.max_delay, self._policy.base_delay * 2 ** (n - 1))
            jitter = random.uniform(0, cap)  # noqa: S311 - jitter, not cryptography
            self._delays[n] = jitter if after is None else after
        return self._delays[n]

    def stop(self, state: tenacity.RetryCallState) -> bool:
        """Stop after the last attempt, or when the next wait plus an attempt overruns."""
        n, exc = state.attempt_number, _failure(state)
        budget = self._policy.total_timeout
        if n >= self._policy.attempts:
            self._why = f"{exc} (gave up after {_attempts(n)})"
            return True
        left = self.remaining()
        if self.wait(state) + MIN_ATTEMPT_SECONDS <= left:
            return False
        if exc.retry_after is not None:
            self._why = (
                f"{exc}; the provider asks to wait {exc.retry_after:.0f} s, beyond the "
                f"{max(0.0, left):.0f} s left of the {budget:.0f} s retry budget"
            )
        else:
            self._why = f"{exc} (retry budget of {budget:.0f} s used up after {_attempts(n)})"
        return True

    def give_up(self, state: tenacity.RetryCallState) -> NoReturn:
        raise FeedUnavailableError(f"{self._provider}: {self._why}") from None


def _failure(state: tenacity.RetryCallState) -> _RetryableError:
    """The retryable error the last attempt raised (``retry`` lets no other kind through)."""
    exc = state.outcome.exception() if state.outcome else None
    if not isinstance(exc, _RetryableError):
        raise TypeError(f"retry decision without a retryable error: {exc!r}")
    return exc


def sent_credentials(
    params: Mapping[str, Any] | None,
    headers: Mapping[str, str] | None,
    auth: tuple[str, str] | None,
) -> frozenset[str]:
    """The credentials a request carries: values of credential-named headers (and the token
    after an ``Authorization`` scheme) and query parameters, and a Basic auth password."""
    found = {str(v) for k, v in (params or {}).items() if CREDENTIAL_NAME.search(str(k))}
    for name, value in (headers or {}).items():
        if CREDENTIAL_NAME.search(name):
            found.add(value)
            found.add(value.split(" ", 1)[-1])
    if auth is not None:
        found.add(auth[1])
    return frozenset(found)


def mask_error(exc: SignalError, secrets: Collection[str]) -> None:
    """Mask ``secrets`` in the error's message (and a FeedAuthError's excerpt), in place."""
    if exc.args:
        exc.args = (redact(str(exc.args[0]), secrets), *exc.args[1:])
    if isinstance(exc, FeedAuthError):
        exc.detail = redact(exc.detail, secrets)


def _refuse(provider: str, resp: requests.Response, secrets: Collection[str]) -> requests.Response:
    """Raise the error a non-2xx answer stands for (quoting the answer with ``secrets`` and
    anything that looks like a credential masked)."""
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
            detail=_short(redact(resp.text, secrets), 600),
        )
    if code == 404:
        raise NoDataError(f"{provider}: not found (404) for {resp.url.split('?')[0]}")
    if code >= 400:
        body = _short(redact(resp.text, secrets))
        raise NoDataError(f"{provider}: request rejected ({code}): {body}")
    raise NoDataError(f"{provider}: unexpected answer {code}")


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
