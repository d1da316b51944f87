"""Operator wiring: Kopf settings, login to the hub, and the start-up of shared state.

Importing this module registers every handler (clusters, jobs) with Kopf's default registry.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf

from gridaware.handlers import clusters, jobs, metrics, migrations  # noqa: F401 - handlers
from gridaware.handlers.registry import REGISTRY
from gridaware.handlers.runtime import RUNTIME
from gridaware.k8s import clients
from gridaware.signals import factory


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="gridaware.dev")
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix="gridaware.dev", key="last-handled-configuration"
    )
    settings.persistence.finalizer = "gridaware.dev/finalizer"
    settings.posting.level = logging.WARNING  # our own Events say what happened
    settings.execution.max_workers = 32
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 30
    settings.batching.batch_window = 0.02  # react to each change at once, not in 100 ms batches
    REGISTRY.hub_client = clients.client_for(
        clients.hub_configuration(RUNTIME.kubeconfig, RUNTIME.context)
    )
    if RUNTIME.feeds is None:
        RUNTIME.feeds = factory.build(RUNTIME.feeds_config, clock=RUNTIME.grid_now)
    if RUNTIME.metrics_port:
        metrics.serve(RUNTIME.metrics_port)


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    params = clients.connection_params(
        clients.hub_configuration(RUNTIME.kubeconfig, RUNTIME.context)
    )
    return kopf.ConnectionInfo(**{k: v for k, v in params.items() if v is not None})
