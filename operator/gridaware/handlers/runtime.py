"""Process-wide settings of a running operator: hub credentials, feeds and intervals.

``gridaware run`` fills this in before Kopf starts; handlers read it. Keeping it in one place
makes the handlers' dependencies explicit and lets tests run the operator as a subprocess with
nothing but command-line flags.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from gridaware.api.feeds import FeedsConfig
from gridaware.core.clock import GridClock
from gridaware.signals.chain import Feeds


@dataclass
class Runtime:
    kubeconfig: Path | None = None
    context: str | None = None
    feeds_config: FeedsConfig = field(default_factory=FeedsConfig)
    feeds: Feeds | None = None
    probe_interval: float = 15.0
    retry_delay: float = 10.0
    history_limit: int = 10
    metrics_port: int = 0
    clock: GridClock = field(default_factory=lambda: GridClock.realtime(time.time()))
    replan_wall_seconds: float = 60.0  # how often a deferred job is re-planned

    def grid_now(self) -> float:
        return self.clock.grid(time.time())


RUNTIME = Runtime()
