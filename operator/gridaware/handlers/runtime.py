"""What ``gridaware run`` hands to the operator through Kopf's memo: where the hub is, the
feeds, the clock and the intervals. Nothing here is global; each operator has its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gridaware.api.feeds import FeedsConfig
from gridaware.services.openadr import OpenAdrOptions
from gridaware.services.ports import Clock, Settings


@dataclass(frozen=True)
class OperatorConfig:
    kubeconfig: Path | None = None
    context: str | None = None
    feeds_config: FeedsConfig = field(default_factory=FeedsConfig)
    clock: Clock = field(default_factory=Clock)
    settings: Settings = field(default_factory=Settings)
    metrics_port: int = 0
    metrics_address: str = "0.0.0.0"  # noqa: S104 - a pod serves its metrics on its own IP
    loop_interval: float = 2.0  # wall seconds between background rounds
    workers: int = 16  # work-queue threads placing jobs
    peering: str | None = None  # Kopf peering name (HA), None when standalone
    priority: int = 0
    openadr: OpenAdrOptions | None = None  # the OpenADR 3 VEN, when a VTN is configured
    prometheus_url: str | None = None  # measured energy for accounts (Kepler/DCGM counters)
    prometheus_scrape_seconds: float = 30.0  # accounts wait two of these for the last scrape
