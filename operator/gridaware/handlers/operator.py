"""Operator wiring: Kopf settings, login to the hub, and the services built once at start-up
(kept in Kopf's memo) with the background loop.

Importing this module registers every handler (clusters, jobs) with Kopf's default registry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any, cast

import kopf

from gridaware.core import podsecurity
from gridaware.handlers import clusters, gridevents, jobs  # noqa: F401 - registers the handlers
from gridaware.handlers.runtime import OperatorConfig
from gridaware.k8s import clients
from gridaware.k8s.archive import ConfigMapArchive
from gridaware.k8s.gateway import EventRecorder, GridEventApi, HubApi, PeeringGate
from gridaware.services import operator
from gridaware.services.openadr import OpenAdrService
from gridaware.signals import factory
from gridaware.signals.openadr import OpenAdrVen
from gridaware.signals.prometheus import PrometheusEnergy
from gridaware.signals.providers.openadr import VtnPrices


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    _tune(settings)
    config: OperatorConfig = memo.config
    services = _build(config)
    if config.metrics_port:
        services.metrics.serve(config.metrics_port, config.metrics_address)
    memo.services = services
    memo.stopped = threading.Event()
    services.members.preload()  # every GridCluster known before the first job is processed
    services.queue.start(memo.stopped, config.workers, services.active)
    threading.Thread(
        target=services.loop, args=(memo.stopped, config.loop_interval), daemon=True, name="loop"
    ).start()
    if services.openadr is not None:
        services.openadr.start(memo.stopped, services.active)


def _tune(settings: kopf.OperatorSettings) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="gridaware.dev")
    settings.persistence.diffbase_storage = EssenceStorage(
        prefix="gridaware.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "gridaware.dev/finalizer"  # GridClusters only
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.execution.max_workers = 32
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.batching.batch_window = 0.02  # react to each change at once, not in 100 ms batches


class EssenceStorage(kopf.AnnotationsDiffBaseStorage):
    """Kopf builds every object's "essence" (a deep copy of its spec) on every watch event
    to find what changed for change handlers. GridAwareJobs have none (one event handler:
    ``handlers.jobs``), and that copy was an eighth of the operator's CPU while placing a
    thousand jobs: their essence is their generation."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        if body.get("kind") == "GridAwareJob":
            generation = (body.get("metadata") or {}).get("generation")
            return cast(kopf.BodyEssence, {"metadata": {"generation": generation}})
        return super().build(body=body, extra_fields=extra_fields)


def _build(config: OperatorConfig) -> operator.Services:
    """The services of this operator, over its hub client (and peering gate with HA)."""
    client = clients.client_for(clients.hub_configuration(config.kubeconfig, config.context))
    hub = HubApi(client, podsecurity.namespace_labels(config.settings.pod_security.level))
    events = EventRecorder(client)
    prices = None if config.openadr is None else VtnPrices()  # the VTN's prices lead the chain
    gate = _gate(config, hub)
    return operator.build(
        hub,
        events,
        factory.build(
            config.feeds_config,
            clock=config.clock.grid_now,
            overlays=[] if prices is None else [prices],
        ),
        config.clock,
        config.settings,
        active=gate,
        active_known=None if gate is None else gate.known,
        archive=ConfigMapArchive(client, config.settings.namespaces.operator_namespace),
        openadr=None if prices is None else _openadr(config, GridEventApi(client), events, prices),
        energy=None if not config.prometheus_url else PrometheusEnergy(config.prometheus_url),
        energy_scrape_seconds=config.prometheus_scrape_seconds,
    )


def _gate(config: OperatorConfig, hub: HubApi) -> PeeringGate | None:
    """With HA (a peering name): whether this replica is the one that acts."""
    if config.peering is None:
        return None
    return PeeringGate(hub.client, config.peering, config.priority, config.clock.wall)


def _openadr(
    config: OperatorConfig, store: GridEventApi, events: EventRecorder, prices: VtnPrices
) -> OpenAdrService:
    """The OpenADR 3 VEN service (a VTN is configured), feeding its prices to ``prices``."""
    assert config.openadr is not None
    ven = OpenAdrVen(config.openadr.ven)
    return OpenAdrService(ven, store, events, config.clock, config.openadr, prices)


@kopf.on.cleanup()
def stop(memo: kopf.Memo, **_: Any) -> None:
    memo.stopped.set()


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    config: OperatorConfig = memo.config
    params = clients.connection_params(clients.hub_configuration(config.kubeconfig, config.context))
    return kopf.ConnectionInfo(**{k: v for k, v in params.items() if v is not None})
