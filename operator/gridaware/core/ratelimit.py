"""A token bucket: how often something may happen, with room for a burst.

The Event recorder uses it for Normal Events: a burst of ten thousand placements must not
double the hub's write load with one Event per job (the statuses carry every decision, and
Warnings are never limited). Pure: the caller passes the time.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens added per second
    burst: float  # the most tokens held
    tokens: float = -1.0  # starts full
    at: float | None = None  # time of the last update

    def take(self, now: float) -> bool:
        """Take one token at ``now`` if there is one."""
        if self.tokens < 0:
            self.tokens = self.burst
        if self.at is not None and now > self.at:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now if self.at is None else max(self.at, now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
