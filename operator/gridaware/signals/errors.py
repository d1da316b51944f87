"""The signals layer's own errors: callers catch ``SignalError`` and nothing else."""


class SignalError(Exception):
    """Base of every error a provider raises."""


class FeedUnavailableError(SignalError):
    """Network failure, timeout, rate limit or server error that retries did not cure."""


class FeedAuthError(SignalError):
    """The provider refused our credentials (401/403): retrying will not help."""


class FeedDataError(SignalError):
    """The answer was malformed, in unexpected units, or physically impossible."""


class NoDataError(SignalError):
    """The provider has no data for this zone, signal or time range."""
