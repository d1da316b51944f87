"""Feed configuration that admins write once (Helm values or a YAML file): which provider
serves which zone, the fallback chain per zone, refresh and staleness limits, and where
credentials live (files or environment variables, e.g. mounted Kubernetes Secrets; never
inline, so they are never in logs, status or ConfigMaps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ProviderType = Literal[
    "electricitymaps",
    "watttime",
    "uk-carbon-intensity",
    "entsoe",
    "carbon-aware-sdk",
    "tou",
    "static",
    "replay",
    "synthetic",
]


class Credential(BaseModel):
    """Where a secret comes from: a file (a mounted Secret) or an environment variable."""

    model_config = ConfigDict(extra="forbid")

    file: Path | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one(self) -> Credential:
        if (self.file is None) == (self.env is None):
            raise ValueError("a credential needs exactly one of 'file' or 'env'")
        return self


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: ProviderType
    url: str | None = Field(default=None, description="base URL; each type has a default")
    token: Credential | None = None
    username: Credential | None = None
    password: Credential | None = None
    zone_map: dict[str, str] = Field(
        default_factory=dict, description="gridaware zone -> the provider's own zone/region code"
    )
    options: dict[str, Any] = Field(default_factory=dict)


class ZoneChain(BaseModel):
    """Providers to ask, in order, per signal."""

    model_config = ConfigDict(extra="forbid")

    carbon: list[str] = Field(default_factory=lambda: ["synthetic"])
    price: list[str] = Field(default_factory=lambda: ["synthetic"])
    renewable_share: list[str] = Field(default_factory=list)


class FeedsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderConfig] = Field(
        default_factory=lambda: {"synthetic": ProviderConfig(type="synthetic")}
    )
    default: ZoneChain = Field(default_factory=ZoneChain)
    zones: dict[str, ZoneChain] = Field(default_factory=dict)
    refresh_seconds: float = Field(default=300, gt=0)
    stale_after_seconds: float = Field(default=7200, gt=0)
    retry_backoff_seconds: float = Field(
        default=30,
        gt=0,
        description="wait after a failed refresh before asking that provider again; doubles "
        "per consecutive failure, up to refresh_seconds",
    )
    history_hours: int = Field(
        default=36 * 24, ge=24, le=24 * 400
    )  # the forecaster fits on 4 weeks
    forecast_hours: int = Field(default=48, ge=1, le=24 * 14)

    @model_validator(mode="after")
    def _known_providers(self) -> FeedsConfig:
        chains = [("default", self.default), *self.zones.items()]
        for zone, chain in chains:
            for name in (*chain.carbon, *chain.price, *chain.renewable_share):
                if name not in self.providers:
                    raise ValueError(
                        f"zone {zone} uses provider '{name}', which is not defined under "
                        f"providers (defined: {', '.join(sorted(self.providers)) or 'none'})"
                    )
        return self

    def chain(self, zone: str) -> ZoneChain:
        return self.zones.get(zone, self.default)
