"""The signals layer's own errors: callers catch ``SignalError`` and nothing else.

Subclasses say what an admin can do about a failure: wait (``FeedUnavailableError``), fix the
credentials (``FeedAuthError``), extend the plan or pick another provider (``FeedScopeError``),
or accept that there is nothing to fetch (``NoDataError``).
"""


class SignalError(Exception):
    """Base of every error a provider raises."""


class FeedUnavailableError(SignalError):
    """Network failure, timeout, rate limit or server error that retries did not cure."""


class FeedAuthError(SignalError):
    """The provider refused our credentials (401/403): retrying will not help.

    ``status`` is the HTTP status and ``detail`` a short excerpt of the answer, so that a
    provider can tell a refused key from a refused resource; neither is in the message.
    """

    def __init__(self, message: str, status: int = 0, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


class FeedDataError(SignalError):
    """The answer was malformed, in unexpected units, or physically impossible."""


class NoDataError(SignalError):
    """The provider has no data for this zone, signal or time range."""


class FeedRequestError(NoDataError):
    """The provider rejected the request itself (bad parameters, too long a range) and said why."""


class FeedScopeError(NoDataError):
    """The credentials are valid but the account's plan does not cover this zone or signal."""


class SignalUnavailableError(SignalError):
    """No provider of a zone's chain has a value now; ``retry_at`` says when the chain tries
    again (epoch seconds of the chain's clock; 0 when it may try at once)."""

    def __init__(self, message: str, zone: str, signal: str, retry_at: float = 0.0) -> None:
        super().__init__(message)
        self.zone = zone
        self.signal = signal
        self.retry_at = retry_at
