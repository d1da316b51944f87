"""GridAwareJob handlers: parse the event, call the placement service, translate "not yet"
into Kopf's retry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import kopf

from gridaware.api.v1alpha1 import GROUP, VERSION
from gridaware.k8s.gateway import GatewayError
from gridaware.services.operator import Services
from gridaware.services.placement import RetryLaterError

JOBS = "gridawarejobs"


@contextmanager
def retried(services: Services, handler: str) -> Iterator[None]:
    """Time the handler; "not yet" and unanswered API calls become Kopf retries."""
    with services.metrics.timed(handler):
        try:
            yield
        except RetryLaterError as exc:
            raise kopf.TemporaryError(str(exc), delay=exc.delay) from None
        except GatewayError as exc:
            raise kopf.TemporaryError(f"{exc.__class__.__name__}: {exc}", delay=2) from None


def _services(memo: kopf.Memo) -> Services:
    services: Services = memo.services
    return services


@kopf.on.resume(GROUP, VERSION, JOBS)
@kopf.on.create(GROUP, VERSION, JOBS)
def place(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    services = _services(memo)
    with retried(services, "place"):
        services.placement.place(dict(body))


@kopf.on.update(GROUP, VERSION, JOBS, field="spec")
def spec_changed(body: kopf.Body, old: Any, new: Any, memo: kopf.Memo, **_: Any) -> None:
    services = _services(memo)
    before, after = dict(old or {}), dict(new or {})
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    with retried(services, "update"):
        services.placement.spec_changed(dict(body), changed)


@kopf.on.delete(GROUP, VERSION, JOBS)
def delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    services = _services(memo)
    with retried(services, "delete"):
        services.placement.delete(dict(body))
