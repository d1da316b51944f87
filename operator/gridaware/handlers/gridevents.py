"""GridEvent handlers: a timer per event runs the grid-event controller and writes the status
it returns; deleting an event resumes what it paused (a finalizer holds the object until
then). A timer per GridCluster enforces its power budget and writes ``status.power``."""

from __future__ import annotations

from typing import Any

import kopf

from gridaware.api.v1alpha1 import GROUP, VERSION
from gridaware.services.gridevents import GridEventService
from gridaware.services.operator import Services

GRIDEVENTS = "gridevents"
CLUSTERS = "gridclusters"
INTERVAL = 1.0  # wall seconds between rounds of one event


def _service(memo: kopf.Memo) -> GridEventService:
    services: Services = memo.services
    return services.gridevents


@kopf.timer(GROUP, VERSION, GRIDEVENTS, interval=INTERVAL)
def reconcile(name: str, body: kopf.Body, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    services: Services = memo.services
    if not services.active():
        return
    with services.metrics.timed("gridevent"):
        status = _service(memo).reconcile(name, dict(body))
    if status:
        patch.status.update(status)


@kopf.on.delete(GROUP, VERSION, GRIDEVENTS)
def cancel(name: str, uid: str, memo: kopf.Memo, **_: Any) -> None:
    left = _service(memo).cancel(name, uid)
    if left:
        raise kopf.TemporaryError(f"{left} jobs paused by {name} are not resumed yet", delay=5)


@kopf.timer(GROUP, VERSION, CLUSTERS, interval=5.0)
def power(name: str, status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo, **_: Any) -> None:
    services: Services = memo.services
    if not services.active():
        return
    found = _service(memo).enforce_budget(name)
    if found is not None and dict(status).get("power") != found:
        patch.status["power"] = found
