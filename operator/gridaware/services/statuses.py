"""GridAwareJob records and their status writes: seed from the hub, apply a pure transition,
patch only what changed.

A record holds what the services need of a job between events (uid, parsed spec, a reference
for Events, the last status written). Writes for one job are serialised by that job's own
lock; no process-wide lock is held during API I/O, so a slow hub delays one job, not all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gridaware.api.v1alpha1 import API_VERSION, GridAwareJobSpec, GridAwareJobStatus
from gridaware.core import lifecycle, power
from gridaware.k8s.gateway import NotFoundError
from gridaware.services.ports import HubPort


@dataclass
class JobRecord:
    namespace: str
    name: str
    uid: str
    status: GridAwareJobStatus
    raw: dict[str, Any]
    spec: GridAwareJobSpec | None = None
    generation: int | None = None
    created: str | None = None  # creationTimestamp (RFC 3339, wall time)
    deleting: bool = False
    gone: bool = False  # deleted from the hub: its copies are being deleted
    spec_raw: dict[str, Any] = field(default_factory=dict)  # the latest spec seen
    blocked: set[str] = field(default_factory=set)  # clusters with a foreign same-name Job
    next_check: float = 0.0  # grid time of the next migration check
    next_plan: float = 0.0  # grid time of the next run-plan check
    next_account: float = 0.0  # wall time of the next try to book a missed account
    requeued: bool = False  # lost its member Job: to be placed again
    lock: threading.Lock = field(default_factory=threading.Lock)  # status writes
    busy: threading.RLock = field(default_factory=threading.RLock)  # actions on members

    member_ns: str | None = None  # where its member Job runs, when mapped to another name
    labels: dict[str, str] = field(default_factory=dict)  # for reports' label selectors
    _it_kw: float = 0.0
    _kw_of: GridAwareJobSpec | None = None  # the spec _it_kw was worked out for
    seen: str = ""  # what of the hub object, besides its status, was last seen
    changed: bool = True  # the last body seen changed more than the status

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def kw(self, pue: float) -> float:
        """Facility kW of the job (``core.power``); the spec's IT kW is worked out once per
        spec (the power controllers ask for every job every few seconds)."""
        spec = self.spec
        assert spec is not None
        if self._kw_of is not spec:
            self._it_kw, self._kw_of = power.it_kw(spec), spec
        return self._it_kw * pue

    @property
    def member_namespace(self) -> str:
        return self.member_ns or self.namespace

    @property
    def ref(self) -> dict[str, Any]:
        """Enough of the object for an Event about it."""
        return {
            "apiVersion": API_VERSION,
            "kind": "GridAwareJob",
            "metadata": {"namespace": self.namespace, "name": self.name, "uid": self.uid},
        }


class Statuses:
    def __init__(
        self,
        hub: HubPort,
        writing: Callable[[], bool] = lambda: True,
        known: Callable[[], bool] | None = None,
    ) -> None:
        """``writing``: False on a standby HA replica (the active one writes); ``known``: its
        last verdict without asking the hub, for ``seed`` (which runs on Kopf's event loop)."""
        self._hub = hub
        self._writing = writing
        self._known = known or writing
        self._lock = threading.Lock()
        self._records: dict[str, JobRecord] = {}

    def seed(self, body: dict[str, Any]) -> JobRecord:
        """The record of a job from its hub body; a status this operator already wrote wins
        over the (possibly older) one in the body, except on a standby replica, which
        follows what the active one writes (so that it takes over with current statuses)."""
        meta = body.get("metadata") or {}
        key = f"{meta.get('namespace')}/{meta.get('name')}"
        with self._lock:
            rec = self._records.get(key)
            if rec is not None and rec.uid != meta.get("uid"):
                rec = None  # deleted and re-created under the same name
            if rec is not None and not self._known():
                with rec.lock:
                    rec.raw = dict(body.get("status") or {})
                    rec.status = GridAwareJobStatus.model_validate(rec.raw)
            if rec is None:
                raw = dict(body.get("status") or {})
                rec = JobRecord(
                    meta.get("namespace", ""),
                    meta.get("name", ""),
                    str(meta.get("uid", "")),
                    GridAwareJobStatus.model_validate(raw),
                    raw,
                )
                self._records[key] = rec
        seen = _beyond_status(meta)
        rec.changed, rec.seen = seen != rec.seen, seen
        rec.generation = meta.get("generation")
        rec.created = meta.get("creationTimestamp")
        rec.deleting = bool(meta.get("deletionTimestamp"))
        rec.spec_raw = dict(body.get("spec") or {})
        rec.labels = dict(meta.get("labels") or {})
        return rec

    def get(self, key: str) -> JobRecord | None:
        with self._lock:
            return self._records.get(key)

    def records(self) -> Iterator[JobRecord]:
        with self._lock:
            items = list(self._records.values())
        yield from items

    def forget(self, key: str) -> None:
        with self._lock:
            self._records.pop(key, None)

    def load(self, key: str) -> JobRecord | None:
        """The record, fetched from the hub when this operator has not seen the job yet."""
        rec = self.get(key)
        if rec is not None:
            return rec
        namespace, name = key.split("/", 1)
        body = self._hub.get_job(namespace, name)
        return None if body is None else self.seed(body)

    def update(
        self, rec: JobRecord, change: Callable[[GridAwareJobStatus], GridAwareJobStatus]
    ) -> bool:
        """Apply ``change`` and patch the hub if the status changed; False if it did not
        (or the job is gone)."""
        with rec.lock:
            new = change(rec.status)
            new = new.model_copy(update={"summary": lifecycle.summary(new)})
            diff = lifecycle.patch(rec.raw, new)
            if diff is None:
                return False
            try:
                self._hub.patch_job_status(rec.namespace, rec.name, diff)
            except NotFoundError:
                self.forget(rec.key)
                return False
            rec.status = new
            rec.raw = lifecycle.merged(rec.raw, diff)
            return True

    def phase_counts(self) -> dict[tuple[str, str], int]:
        """(phase, cluster) -> number of jobs, from the statuses this operator knows."""
        counts: dict[tuple[str, str], int] = {}
        for rec in self.records():
            k = (rec.status.phase or "Pending", rec.status.cluster or "")
            counts[k] = counts.get(k, 0) + 1
        return counts


def _beyond_status(meta: dict[str, Any]) -> str:
    """What a change of the object besides its status touches: a body whose only news is a
    status (most often this operator's own write coming back through the watch) needs no work."""
    return json.dumps(
        [
            meta.get("generation"),
            meta.get("deletionTimestamp"),
            meta.get("labels") or {},
            meta.get("annotations") or {},
        ],
        sort_keys=True,
    )
