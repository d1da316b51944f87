"""Fleet reports from job accounts: per cluster and for the fleet, over a period, the energy,
hourly-matched carbon-free share, location- and market-based emissions side by side (never
summed), cost, what running at once in the home cluster would have cost, deferrals,
migrations, pauses and grid events served, and the contracted energy no job used.

Everything comes from the accounts the operator wrote into the jobs' statuses (kept after a
job is gone, see ``services.ledger``), so a report is exactly the sum of its jobs' accounts.
A run segment belongs to the period (and the month) in which it started; a job's saving,
deferral, moves and pauses belong to the cluster where it finished, in the period in which
its last segment started.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from gridaware.api.v1alpha1 import GridAwareJobStatus, GridClusterSpec, parse_time
from gridaware.core import cfe

HOUR = 3600.0
FLEET = "(fleet)"
F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class JobView:
    """What a report needs of one GridAwareJob."""

    namespace: str
    name: str
    labels: dict[str, str]
    status: GridAwareJobStatus


def archive_record(
    namespace: str, name: str, uid: str, labels: dict[str, str], status: GridAwareJobStatus
) -> dict[str, object]:
    """What a report needs of a finished job, GridAwareJob-shaped, for the account archive
    (the hourly arrays and the fields a report counts; no placement history)."""
    kept = status.model_copy(
        update={
            "placements": [],
            "conditions": [c for c in status.conditions if c.type == "Deferred"],
        }
    )
    return {
        "metadata": {"namespace": namespace, "name": name, "uid": uid, "labels": labels},
        "status": kept.model_dump(
            by_alias=True,
            exclude_none=True,
            include={"phase", "account", "migrations", "pauses", "conditions"},
        ),
    }


def merge_archive(
    live: list[dict[str, object]], archived: list[dict[str, object]]
) -> list[dict[str, object]]:
    """Live GridAwareJobs, plus archived records of jobs that are gone (by uid)."""
    seen = {_uid(b) for b in live}
    return [*live, *(b for b in archived if _uid(b) not in seen)]


def _uid(body: dict[str, object]) -> str:
    meta = body.get("metadata")
    return str(meta.get("uid", "")) if isinstance(meta, dict) else ""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "exists", "!exists"
    value: str = ""

    def matches(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "=":
            return labels.get(self.key) == self.value
        return labels.get(self.key) != self.value


_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?$")


def parse_selector(text: str) -> list[Requirement]:
    """An equality-based label selector as kubectl takes it: ``a=b,c!=d,e,!f``."""
    out = []
    for raw in filter(None, (p.strip() for p in text.split(","))):
        if "!=" in raw:
            k, v = raw.split("!=", 1)
            req = Requirement(k.strip(), "!=", v.strip())
        elif "=" in raw:
            k, v = raw.split("=", 1)
            req = Requirement(k.strip().rstrip("="), "=", v.strip().lstrip("="))
        elif raw.startswith("!"):
            req = Requirement(raw[1:].strip(), "!exists")
        else:
            req = Requirement(raw, "exists")
        if not _LABEL.match(req.key) or (req.value and not _LABEL.match(req.value)):
            raise ValueError(f"{raw!r} is not a label requirement such as team=ml or tier!=gold")
        out.append(req)
    return out


@dataclass(frozen=True)
class Scope:
    """What a report covers: [start, end) in grid time, and optional filters."""

    start: float
    end: float
    namespace: str | None = None
    cluster: str | None = None
    selector: tuple[Requirement, ...] = ()

    def wants(self, job: JobView) -> bool:
        if self.namespace is not None and job.namespace != self.namespace:
            return False
        return all(r.matches(job.labels) for r in self.selector)

    def hours(self) -> int:
        return max(0, math.ceil((self.end - self.hour0) / HOUR))

    @property
    def hour0(self) -> float:
        return math.floor(self.start / HOUR) * HOUR


@dataclass
class Totals:
    """One row of the report."""

    cluster: str
    jobs: int = 0
    energy_kwh: float = 0.0
    contract_kwh: float = 0.0
    grid_cfe_kwh: float = 0.0
    carbon_location_g: float = 0.0
    carbon_market_g: float = 0.0
    cost_usd: float = 0.0
    cost_missing: int = 0  # segments without a price
    saved_location_g: float = 0.0
    saved_cost_usd: float = 0.0
    deferrals: int = 0
    migrations: int = 0
    pauses: int = 0
    grid_events: int = 0
    contract_delivered_kwh: float = 0.0
    cfe_estimated: bool = False

    @property
    def cfe_percent(self) -> float | None:
        if self.energy_kwh <= 0:
            return None
        return 100 * (self.contract_kwh + self.grid_cfe_kwh) / self.energy_kwh

    @property
    def contract_unused_kwh(self) -> float:
        return max(0.0, self.contract_delivered_kwh - self.contract_kwh)

    def add(self, other: Totals) -> None:
        for name in [
            "jobs",
            "energy_kwh",
            "contract_kwh",
            "grid_cfe_kwh",
            "carbon_location_g",
            "carbon_market_g",
            "cost_usd",
            "cost_missing",
            "saved_location_g",
            "saved_cost_usd",
            "deferrals",
            "migrations",
            "pauses",
            "grid_events",
            "contract_delivered_kwh",
        ]:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cfe_estimated = self.cfe_estimated or other.cfe_estimated

    def as_dict(self) -> dict[str, float | int | str | bool | None]:
        """The row for CSV and JSON (units in the names)."""
        cfe_pct = self.cfe_percent
        return {
            "cluster": self.cluster,
            "jobs": self.jobs,
            "energy_kwh": round(self.energy_kwh, 6),
            "cfe_percent": None if cfe_pct is None else round(cfe_pct, 3),
            "cfe_estimated": self.cfe_estimated,
            "contract_kwh": round(self.contract_kwh, 6),
            "grid_cfe_kwh": round(self.grid_cfe_kwh, 6),
            "contract_delivered_kwh": round(self.contract_delivered_kwh, 6),
            "contract_unused_kwh": round(self.contract_unused_kwh, 6),
            "carbon_location_kg": round(self.carbon_location_g / 1000, 6),
            "carbon_market_kg": round(self.carbon_market_g / 1000, 6),
            "cost_usd": round(self.cost_usd, 6),
            "segments_without_price": self.cost_missing,
            "saved_location_kg": round(self.saved_location_g / 1000, 6),
            "saved_cost_usd": round(self.saved_cost_usd, 6),
            "deferrals": self.deferrals,
            "migrations": self.migrations,
            "pauses": self.pauses,
            "grid_events_served": self.grid_events,
        }


@dataclass
class Report:
    scope: Scope
    clusters: dict[str, Totals] = field(default_factory=dict)
    fleet: Totals = field(default_factory=lambda: Totals(FLEET))
    hourly_load_kwh: F64 = field(default_factory=lambda: np.zeros(0))
    hourly_cfe_kwh: F64 = field(default_factory=lambda: np.zeros(0))
    hourly_delivered_kwh: F64 = field(default_factory=lambda: np.zeros(0))  # contracts
    monthly: dict[str, tuple[float, float]] = field(default_factory=dict)  # month -> (loc, mkt)

    def row(self, cluster: str) -> Totals:
        if cluster not in self.clusters:
            self.clusters[cluster] = Totals(cluster)
        return self.clusters[cluster]


def _month(t: float) -> str:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC).strftime("%Y-%m")


def _book_segments(report: Report, job: JobView) -> str | None:
    """Add the job's segments that started in the period; the cluster of its last one."""
    scope, acct = report.scope, job.status.account
    assert acct is not None
    last = None
    for seg in acct.segments:
        start = parse_time(seg.start)
        if not scope.start <= start < scope.end:
            continue
        if scope.cluster is not None and seg.cluster != scope.cluster:
            continue
        last = seg.cluster
        row = report.row(seg.cluster)
        row.energy_kwh += seg.energy_kwh
        row.contract_kwh += seg.contract_kwh
        row.grid_cfe_kwh += seg.grid_cfe_kwh
        row.carbon_location_g += seg.carbon_location_g
        row.carbon_market_g += seg.carbon_market_g
        if seg.cost_usd is None:
            row.cost_missing += 1
        else:
            row.cost_usd += seg.cost_usd
        row.cfe_estimated = row.cfe_estimated or acct.cfe_estimated
        loc, mkt = report.monthly.get(_month(start), (0.0, 0.0))
        report.monthly[_month(start)] = (loc + seg.carbon_location_g, mkt + seg.carbon_market_g)
        _hourly(report, start, seg.hourly_load_kwh, seg.hourly_cfe_kwh)
    return last


def _hourly(report: Report, start: float, load: Sequence[float], clean: Sequence[float]) -> None:
    offset = int((math.floor(start / HOUR) * HOUR - report.scope.hour0) // HOUR)
    for i, (kwh, cfe_kwh) in enumerate(zip(load, clean, strict=False)):
        if 0 <= offset + i < report.hourly_load_kwh.size:
            report.hourly_load_kwh[offset + i] += kwh
            report.hourly_cfe_kwh[offset + i] += cfe_kwh


def _book_job(report: Report, job: JobView) -> None:
    st, acct = job.status, job.status.account
    assert acct is not None
    cluster = _book_segments(report, job)
    if cluster is None:
        return
    row = report.row(cluster)
    row.jobs += 1
    if acct.cost_usd is not None and acct.counterfactual_cost_usd is not None:
        row.saved_cost_usd += acct.counterfactual_cost_usd - acct.cost_usd
    row.saved_location_g += acct.saved_location_g or 0.0
    row.deferrals += int(any(c.type == "Deferred" for c in st.conditions))
    row.migrations += len(st.migrations)
    row.pauses += len(st.pauses)
    row.grid_events += sum(1 for p in st.pauses if p.requested_by.startswith("GridEvent/"))


def build(
    scope: Scope,
    jobs: Iterable[JobView],
    delivered: dict[str, F64] | None = None,
) -> Report:
    """The report of the jobs with an account in ``scope``; ``delivered`` is what each
    cluster's contracts delivered per hour of the period (kWh), for the unused contracted
    energy."""
    hours = scope.hours()
    report = Report(
        scope,
        hourly_load_kwh=np.zeros(hours),
        hourly_cfe_kwh=np.zeros(hours),
        hourly_delivered_kwh=np.zeros(hours),
    )
    for job in jobs:
        if job.status.account is not None and scope.wants(job):
            _book_job(report, job)
    for name, kwh in (delivered or {}).items():
        if scope.cluster is None or name == scope.cluster:
            report.row(name).contract_delivered_kwh += float(kwh.sum())
            report.hourly_delivered_kwh += kwh
    for row in report.clusters.values():
        report.fleet.add(row)
    return report


def contracts_delivered(
    clusters: dict[str, GridClusterSpec],
    scope: Scope,
    utc_offsets: dict[str, float],
    traces: dict[tuple[str, str], tuple[float, list[float]]] | None = None,
) -> dict[str, F64]:
    """kWh each cluster's contracts delivered in each hour of the report (wind at its
    capacity factor; the accounts shape it by the zone's renewable share where a feed gave
    one); the first and last hours only for their part inside the period."""
    out: dict[str, F64] = {}
    hours = scope.hours()
    for name, spec in clusters.items():
        if not spec.green_contracts or hours == 0:
            continue
        total = np.zeros(hours)
        for c in spec.green_contracts:
            trace = (traces or {}).get((name, c.name))
            kwh = cfe.contract_kwh(c, scope.hour0, hours, utc_offsets.get(name, 0.0), None, trace)
            total += kwh * _inside(scope, hours)
        out[name] = total
    return out


def _inside(scope: Scope, hours: int) -> F64:
    edges = scope.hour0 + HOUR * np.arange(hours + 1)
    lo = np.maximum(edges[:-1], scope.start)
    hi = np.minimum(edges[1:], scope.end)
    return np.asarray(np.clip((hi - lo) / HOUR, 0.0, 1.0), dtype=np.float64)
