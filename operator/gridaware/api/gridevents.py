"""The ``GridEvent`` API (``gridaware.dev/v1alpha1``, cluster-scoped): a grid operator's request
that the fleet draw less (``Curtail``) or more (``Absorb``) power in some zones or clusters
over a window of time.

A GridEvent is written by hand (``source.type: Manual``) or by the OpenADR 3 VEN from a VTN's
event (``source.type: OpenADR``, with the program and event ids so the VEN can update it and
report back). The spec says only *what* the grid asks for; the status says what gridaware made
of it: the baseline (what the fleet would have drawn), the target, what it achieved, how long
it took to get there, and every action it took, so ``kubectl get gridevents`` tells the story.

The same rules are enforced twice: by pydantic validators here (the operator parses every
object through these models) and by CEL rules on the CRD (``GRIDEVENT_RULES``, so that
``kubectl apply`` rejects a bad object with a message that says what must change).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Final, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from gridaware.api.v1alpha1 import Condition, Model, parse_time

Zone = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]
RFC3339 = Annotated[str, StringConstraints(min_length=1, max_length=64)]

GridEventKind = Literal["Curtail", "Absorb"]
SourceType = Literal["Manual", "OpenADR"]
GridEventPhase = Literal["Pending", "Active", "Completed", "Cancelled"]
ActionType = Literal["HoldStarts", "ReleaseStarts", "PullForward", "Pause", "Resume", "Migrate"]


class GridEventTargets(Model):
    """Where the event applies: every gridaware-managed load in these zones and clusters."""

    zones: list[Zone] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Grid zone codes, e.g. DE-LU or US-CAL-CISO.",
    )
    clusters: list[Name] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="GridCluster names.",
    )

    @model_validator(mode="after")
    def _some(self) -> GridEventTargets:
        if not self.zones and not self.clusters:
            raise ValueError("targets must name at least one zone or cluster")
        return self


class EventWindow(Model):
    """When the event applies (RFC 3339, grid time); ``end`` is exclusive."""

    start: RFC3339 = Field(
        json_schema_extra={"format": "date-time"}, description="Start (RFC 3339, grid time)."
    )
    end: RFC3339 = Field(
        json_schema_extra={"format": "date-time"}, description="End (RFC 3339, grid time)."
    )

    @field_validator("start", "end")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        parse_time(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> EventWindow:
        if parse_time(self.end) <= parse_time(self.start):
            raise ValueError(f"window.end ({self.end}) must be after window.start ({self.start})")
        return self

    @property
    def start_epoch(self) -> float:
        return parse_time(self.start)

    @property
    def end_epoch(self) -> float:
        return parse_time(self.end)

    def contains(self, epoch: float) -> bool:
        return self.start_epoch <= epoch < self.end_epoch


class Curtail(Model):
    """Draw less: reduce by a share or by kW of the baseline, or stay at or below a cap.
    Exactly one of the three is set."""

    reduce_percent: float | None = Field(
        default=None, gt=0, le=100, description="Reduce the baseline by this many percent."
    )
    reduce_kw: float | None = Field(
        default=None, gt=0, le=1e7, description="Reduce the baseline by this many kW."
    )
    cap_kw: float | None = Field(
        default=None, ge=0, le=1e7, description="Draw at most this many kW."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> Curtail:
        chosen = [v for v in (self.reduce_percent, self.reduce_kw, self.cap_kw) if v is not None]
        if len(chosen) != 1:
            raise ValueError("curtail must set exactly one of reducePercent, reduceKw or capKw")
        return self

    def target_kw(self, baseline_kw: float) -> float:
        """The most the targets may draw, given what they would have drawn."""
        if self.reduce_percent is not None:
            return baseline_kw * (1 - self.reduce_percent / 100)
        if self.reduce_kw is not None:
            return max(0.0, baseline_kw - self.reduce_kw)
        assert self.cap_kw is not None  # _exactly_one
        return min(baseline_kw, self.cap_kw)


class Absorb(Model):
    """Draw more (valley filling, surplus wind and solar): raise the load by up to this much."""

    up_to_kw: float = Field(gt=0, le=1e7, description="Raise the load by at most this many kW.")

    def target_kw(self, baseline_kw: float) -> float:
        """The load to reach, given what the targets would have drawn."""
        return baseline_kw + self.up_to_kw


class OpenAdrSource(Model):
    """The OpenADR 3 event this GridEvent was made from."""

    vtn: str = Field(min_length=1, max_length=1024, description="Base URL of the VTN.")
    program_id: str = Field(min_length=1, max_length=128, description="VTN's program id.")
    program_name: str | None = Field(default=None, max_length=128, description="Program name.")
    event_id: str = Field(min_length=1, max_length=128, description="VTN's event id.")
    event_name: str | None = Field(default=None, max_length=128, description="Event name.")
    payload_type: str = Field(
        min_length=1,
        max_length=128,
        description="The payload it was mapped from: SIMPLE or IMPORT_CAPACITY_LIMIT.",
    )
    value: float = Field(description="The payload value (SIMPLE level, or kW).")
    modification_date_time: RFC3339 | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="The event's modificationDateTime on the VTN (detects updates).",
    )


class EventSource(Model):
    """Who asked: a person (Manual) or a utility's VTN over OpenADR 3."""

    type: SourceType = Field(default="Manual", description="Manual or OpenADR.")
    open_adr: OpenAdrSource | None = Field(
        default=None, description="The OpenADR program and event (type OpenADR only)."
    )

    @model_validator(mode="after")
    def _consistent(self) -> EventSource:
        if (self.type == "OpenADR") != (self.open_adr is not None):
            raise ValueError(
                "source.openAdr must be set when (and only when) source.type is OpenADR"
            )
        return self


class GridEventSpec(Model):
    """What the grid asks for: where, when, and how much less (or more) power."""

    targets: GridEventTargets = Field(description="Zones and clusters the event applies to.")
    window: EventWindow = Field(description="When it applies (grid time).")
    kind: GridEventKind = Field(description="Curtail (draw less) or Absorb (draw more).")
    curtail: Curtail | None = Field(default=None, description="How much less (kind Curtail).")
    absorb: Absorb | None = Field(default=None, description="How much more (kind Absorb).")
    source: EventSource = Field(default_factory=EventSource, description="Who asked.")
    mandatory: bool = Field(
        default=False,
        description="Mandatory events are met even at the cost of deadlines; voluntary ones "
        "never make a job miss its deadline.",
    )

    @model_validator(mode="after")
    def _kind_matches(self) -> GridEventSpec:
        if self.kind == "Curtail" and (self.curtail is None or self.absorb is not None):
            raise ValueError("kind Curtail needs spec.curtail and no spec.absorb")
        if self.kind == "Absorb" and (self.absorb is None or self.curtail is not None):
            raise ValueError("kind Absorb needs spec.absorb and no spec.curtail")
        return self

    def target_kw(self, baseline_kw: float) -> float:
        """The load the targets must stay at or below (Curtail) or reach (Absorb)."""
        if self.curtail is not None:
            return self.curtail.target_kw(baseline_kw)
        assert self.absorb is not None  # _kind_matches
        return self.absorb.target_kw(baseline_kw)


class GridEventAction(Model):
    """One step gridaware took to meet the event (idempotent, recorded once)."""

    time: RFC3339 = Field(description="When it was taken (RFC 3339, grid time).")
    type: ActionType = Field(
        description="HoldStarts, ReleaseStarts, PullForward, Pause, Resume or Migrate."
    )
    job: str | None = Field(
        default=None, max_length=512, description="The GridAwareJob, as namespace/name."
    )
    cluster: str | None = Field(default=None, max_length=253, description="Cluster concerned.")
    delta_kw: float = Field(description="Expected change of load in kW (negative: less).")
    reason: str = Field(default="", max_length=1024, description="Why.")


class GridEventStatus(Model):
    """What gridaware made of the event."""

    observed_generation: int | None = Field(default=None, description="Last generation acted upon.")
    phase: GridEventPhase | None = Field(
        default=None, description="Pending, Active, Completed or Cancelled."
    )
    baseline_kw: float | None = Field(
        default=None, description="What the targets would have drawn without the event (kW)."
    )
    target_kw: float | None = Field(
        default=None, description="The load to stay at or below (Curtail) or reach (Absorb)."
    )
    current_kw: float | None = Field(default=None, description="What the targets draw now (kW).")
    achieved_kw: float | None = Field(
        default=None, description="Mean load over the window so far (kW)."
    )
    time_to_target_seconds: float | None = Field(
        default=None, ge=0, description="From window start to the target first met (grid s)."
    )
    compliance: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Share of the window so far in which the target was met (0 to 1).",
    )
    actions: list[GridEventAction] = Field(
        default_factory=list, max_length=1000, description="Actions taken, oldest first."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="TargetMet, Reported and similar conditions."
    )
    last_report_time: str | None = Field(
        default=None, description="When the achieved load was last reported to the VTN."
    )
    sampled_until: float | None = Field(
        default=None,
        description="Grid time (epoch s) up to which achievedKw and compliance are computed "
        "(they are running means, carried over an operator restart).",
    )


def window_of(start: dt.datetime, duration: dt.timedelta) -> EventWindow:
    """An EventWindow from a timezone-aware start and a duration."""
    if start.tzinfo is None:
        raise ValueError("window start needs a time zone")
    end = start + duration
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return EventWindow(
        start=start.astimezone(dt.UTC).strftime(fmt), end=end.astimezone(dt.UTC).strftime(fmt)
    )


# CEL rules of the CRD, by path from the kind (see gridaware.api.crd). Each message says what
# must change; they mirror the validators above.
GRIDEVENT_RULES: Final[dict[str, list[dict[str, str]]]] = {
    "GridEvent.spec": [
        {
            "rule": "self.kind == 'Curtail' ? (has(self.curtail) && !has(self.absorb)) "
            ": (has(self.absorb) && !has(self.curtail))",
            "message": "kind Curtail must set spec.curtail (and not spec.absorb); kind Absorb "
            "must set spec.absorb (and not spec.curtail)",
        },
    ],
    "GridEvent.spec.targets": [
        {
            "rule": "(has(self.zones) ? size(self.zones) : 0) + "
            "(has(self.clusters) ? size(self.clusters) : 0) > 0",
            "message": "targets must name at least one zone or cluster",
        },
    ],
    "GridEvent.spec.window": [
        {
            "rule": "timestamp(self.end) > timestamp(self.start)",
            "message": "window.end must be after window.start",
        },
    ],
    "GridEvent.spec.curtail": [
        {
            "rule": "(has(self.reducePercent) ? 1 : 0) + (has(self.reduceKw) ? 1 : 0) + "
            "(has(self.capKw) ? 1 : 0) == 1",
            "message": "curtail must set exactly one of reducePercent, reduceKw or capKw",
        },
    ],
    "GridEvent.spec.source": [
        {
            "rule": "(has(self.type) && self.type == 'OpenADR') == has(self.openAdr)",
            "message": "source.openAdr must be set when (and only when) source.type is OpenADR",
        },
    ],
}

GRIDEVENT_COLUMNS: Final[list[dict[str, str | int]]] = [
    {"name": "Kind", "type": "string", "jsonPath": ".spec.kind"},
    {"name": "Zones", "type": "string", "jsonPath": ".spec.targets.zones"},
    {"name": "Start", "type": "string", "jsonPath": ".spec.window.start"},
    {"name": "End", "type": "string", "jsonPath": ".spec.window.end"},
    {"name": "Source", "type": "string", "jsonPath": ".spec.source.type"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {
        "name": "Baseline kW",
        "type": "number",
        "jsonPath": ".status.baselineKw",
        "description": "What the targets would have drawn",
    },
    {"name": "Target kW", "type": "number", "jsonPath": ".status.targetKw"},
    {
        "name": "Achieved kW",
        "type": "number",
        "jsonPath": ".status.achievedKw",
        "description": "Mean load over the window so far",
    },
    {
        "name": "Compliance",
        "type": "number",
        "jsonPath": ".status.compliance",
        "description": "Share of the window with the target met",
    },
    {"name": "Mandatory", "type": "boolean", "jsonPath": ".spec.mandatory", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]
