"""GridAwareJob handler: every change the hub's watch reports is remembered, and its key
queued unless only the status changed (mostly this operator's own writes coming back); the
work queue's workers call the placement service (retries stay in memory, so the operator
writes nothing on a job but its status). The handler only takes note, so it runs on Kopf's
event loop: a hop to Kopf's thread pool per event cost more than the handler."""

from __future__ import annotations

from typing import Any

import kopf

from gridaware.api.v1alpha1 import GROUP, VERSION
from gridaware.services.operator import Services

JOBS = "gridawarejobs"


@kopf.on.event(GROUP, VERSION, JOBS)
async def watched(body: kopf.Body, event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    services: Services = memo.services
    key = services.placement.watched(dict(body), deleted=event.get("type") == "DELETED")
    rec = services.statuses.get(key)
    if rec is None or rec.gone or rec.changed:  # not for a status write coming back
        services.queue.add(key)
