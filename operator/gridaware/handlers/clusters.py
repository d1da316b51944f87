"""GridCluster handlers: register the member with the agent, run its loop as a Kopf daemon,
and let it go only once no unfinished job runs there (a finalizer)."""

from __future__ import annotations

from typing import Any

import kopf

from gridaware.api.v1alpha1 import GROUP, VERSION
from gridaware.services.operator import Services
from gridaware.services.placement import RetryLaterError

CLUSTERS = "gridclusters"


@kopf.on.resume(GROUP, VERSION, CLUSTERS)
@kopf.on.create(GROUP, VERSION, CLUSTERS)
@kopf.on.update(GROUP, VERSION, CLUSTERS)
def register(name: str, spec: kopf.Spec, labels: kopf.Labels, memo: kopf.Memo, **_: Any) -> None:
    services: Services = memo.services
    services.members.register(name, dict(spec), dict(labels))


@kopf.on.delete(GROUP, VERSION, CLUSTERS)
def unregister(name: str, memo: kopf.Memo, **_: Any) -> None:
    services: Services = memo.services
    try:
        services.members.unregister(name)
    except RetryLaterError as exc:
        raise kopf.TemporaryError(str(exc), delay=exc.delay) from None


@kopf.daemon(GROUP, VERSION, CLUSTERS, cancellation_timeout=5.0)
def member_daemon(
    name: str, body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **_: Any
) -> None:
    services: Services = memo.services
    services.members.run(name, dict(body), stopped)
