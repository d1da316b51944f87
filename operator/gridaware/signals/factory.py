"""Building providers and chains from ``FeedsConfig``; reading credentials from files or
environment variables at the last moment, so that they live only inside provider objects."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import yaml
from pydantic import ValidationError

from gridaware.api.feeds import Credential, FeedsConfig, ProviderConfig
from gridaware.api.regions import REGIONS
from gridaware.api.signals import EmissionKind
from gridaware.signals.base import Provider
from gridaware.signals.chain import Feeds
from gridaware.signals.errors import FeedAuthError, SignalError
from gridaware.signals.providers.carbonaware import CarbonAwareSDK
from gridaware.signals.providers.electricitymaps import ElectricityMaps
from gridaware.signals.providers.entsoe import EntsoE
from gridaware.signals.providers.local import Replay, Static, Synthetic
from gridaware.signals.providers.tou import TimeOfUse
from gridaware.signals.providers.ukci import UKCarbonIntensity
from gridaware.signals.providers.watttime import WattTime


class ConfigError(SignalError):
    """The feed configuration is invalid or names a credential that cannot be read."""


def load_config(path: Path | None) -> FeedsConfig:
    """The feeds configuration at ``path`` (YAML), or the offline default when None."""
    if path is None:
        return FeedsConfig()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
        return FeedsConfig.model_validate(raw)
    except OSError as exc:
        raise ConfigError(f"cannot read feeds config {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"feeds config {path} is not valid YAML: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"feeds config {path}: {where}: {first['msg']}") from None


def read_credential(cred: Credential | None, provider: str, what: str) -> str:
    if cred is None:
        raise ConfigError(f"provider {provider} needs a {what} (file: or env:)")
    if cred.env is not None:
        value = os.environ.get(cred.env, "")
        if not value:
            raise FeedAuthError(f"provider {provider}: environment variable {cred.env} is empty")
        return value.strip()
    assert cred.file is not None
    try:
        return cred.file.read_text().strip()
    except OSError as exc:
        raise FeedAuthError(
            f"provider {provider}: cannot read {what} file {cred.file}: {exc.strerror}"
        ) from None


def build_provider(name: str, cfg: ProviderConfig) -> Provider:
    opts = cfg.options
    if cfg.type == "electricitymaps":
        return ElectricityMaps(
            name,
            read_credential(cfg.token, name, "token"),
            cfg.url,
            cfg.zone_map,
            emission_factor_type=str(opts.get("emission_factor_type", "lifecycle")),
        )
    if cfg.type == "watttime":
        return WattTime(
            name,
            read_credential(cfg.username, name, "username"),
            read_credential(cfg.password, name, "password"),
            cfg.url,
            cfg.zone_map,
        )
    if cfg.type == "uk-carbon-intensity":
        return UKCarbonIntensity(name, cfg.url, cfg.zone_map)
    if cfg.type == "entsoe":
        return EntsoE(
            name,
            read_credential(cfg.token, name, "token"),
            cfg.url,
            cfg.zone_map,
            sequence=int(opts.get("sequence", 1)),
        )
    if cfg.type == "carbon-aware-sdk":
        if not cfg.url:
            raise ConfigError(f"provider {name}: the Carbon Aware SDK needs url: (self-hosted)")
        return CarbonAwareSDK(
            name, cfg.url, cfg.zone_map, kind=EmissionKind(str(opts.get("kind", "average")))
        )
    if cfg.type == "tou":
        return TimeOfUse.from_options(name, opts)
    if cfg.type == "static":
        return Static(name, opts.get("values", {}))
    if cfg.type == "replay":
        directory = opts.get("directory")
        if not directory:
            raise ConfigError(f"provider {name}: replay needs options.directory")
        return Replay(
            name,
            Path(str(directory)),
            float(opts.get("offset_seconds", 0)),
            cfg.zone_map,
            str(opts.get("factor", "lifecycle")),
            bool(opts.get("perfect_forecast", True)),
        )
    return Synthetic(name, {r.grid_zone: r.timezone_offset_hours for r in REGIONS.values()})


def build(
    config: FeedsConfig,
    clock: Callable[[], float] = time.time,
    overlays: Sequence[Provider] = (),
) -> Feeds:
    """The chains of ``config``; ``overlays`` (e.g. an OpenADR VTN's prices,
    ``providers.openadr.VtnPrices``) are asked before every zone's chain (``Feeds``)."""
    return Feeds(
        config, {n: build_provider(n, c) for n, c in config.providers.items()}, clock, overlays
    )
