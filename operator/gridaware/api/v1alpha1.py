"""The ``gridaware.dev/v1alpha1`` API: GridCluster and GridAwareJob, specs and statuses.

These pydantic models are the single source of truth: the CRD YAML in ``crds/`` (OpenAPI
schema, descriptions for ``kubectl explain``, CEL rules, printer columns) is generated from
them by ``gridaware.api.crd``, and the operator parses every object it receives through them.
Field names are camelCase on the wire, snake_case in Python.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "gridaware.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
JOB_LABEL = "gridaware.dev/job"
OWNER_UID_ANNOTATION = "gridaware.dev/owner-uid"
OWNER_ANNOTATION = "gridaware.dev/owner"  # "<namespace>/<name>" of the GridAwareJob
TTL_ANNOTATION = "gridaware.dev/ttl-seconds-after-finished"
CLUSTER_LABEL = "gridaware.dev/cluster"


Name = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Zone = Annotated[str, StringConstraints(min_length=1, max_length=32)]


def job_label_value(namespace: str, name: str) -> str:
    """The ``gridaware.dev/job`` label value: ``<namespace>.<name>``, or a hashed form when that
    is longer than a label value may be (63)."""
    import hashlib  # noqa: PLC0415

    value = f"{namespace}.{name}"
    if len(value) <= 63:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:10]
    return f"{value[:50].rstrip('-.')}-{digest}"


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


# --- shared --------------------------------------------------------------------------------


class Condition(Model):
    """The latest observation of one aspect of the object's state (Kubernetes convention)."""

    type: str = Field(description="Condition type, e.g. Scheduled, Running, Reachable.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable details.")
    observed_generation: int | None = Field(
        default=None, description="metadata.generation that this condition was set for."
    )
    last_transition_time: str | None = Field(
        default=None, description="When the status last changed (RFC 3339)."
    )


class SecretKeyRef(Model):
    namespace: str = Field(
        min_length=1, max_length=63, description="Namespace of the Secret on the hub."
    )
    name: str = Field(min_length=1, max_length=253, description="Name of the Secret.")
    key: str = Field(
        default="kubeconfig",
        min_length=1,
        description="Key in the Secret's data that holds the kubeconfig.",
    )


class Resources(Model):
    """Amounts of cpu (cores), memory (bytes) and nvidia.com/gpu (devices)."""

    cpu: float = Field(default=0, ge=0, description="CPU cores.")
    memory: float = Field(default=0, ge=0, description="Memory in bytes.")
    gpu: float = Field(default=0, ge=0, description="nvidia.com/gpu devices.")

    def fits(self, need: Resources) -> bool:
        eps = 1e-9
        return (
            need.cpu <= self.cpu + eps
            and need.memory <= self.memory + eps
            and need.gpu <= self.gpu + eps
        )

    def plus(self, other: Resources) -> Resources:
        return Resources(
            cpu=self.cpu + other.cpu, memory=self.memory + other.memory, gpu=self.gpu + other.gpu
        )


class CapacityOverride(Model):
    """Caps the capacity gridaware may use in a cluster (Kubernetes quantities)."""

    cpu: str | None = Field(default=None, description='Most CPU to use, e.g. "64".')
    memory: str | None = Field(default=None, description='Most memory to use, e.g. "256Gi".')
    gpu: int | None = Field(default=None, ge=0, description="Most nvidia.com/gpu to use.")


# --- GridCluster ---------------------------------------------------------------------------


class DeliveryTrace(Model):
    """Hourly delivered kWh of a contract: inline, or from a CSV file of ``time,kwh`` rows
    (RFC 3339 hour starts), e.g. a ConfigMap mounted into the operator pod."""

    start: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Start of the first inline hour (RFC 3339, grid time).",
    )
    hourly_kwh: list[float] = Field(
        default_factory=list, max_length=8784, description="Delivered kWh per hour from start."
    )
    file: str | None = Field(
        default=None,
        max_length=1024,
        description="Path of a CSV of time,kwh rows in the operator's file system.",
    )

    @field_validator("start")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DeliveryTrace:
        if (self.file is None) == (self.start is None or not self.hourly_kwh):
            raise ValueError("a delivery trace needs either start and hourlyKwh, or file")
        if any(v < 0 for v in self.hourly_kwh):
            raise ValueError("delivery trace kWh must not be negative")
        return self


class GreenContract(Model):
    """A power purchase agreement or on-site supply that covers part of the load: what it
    delivers each hour follows its shape (pay-as-produced), and that hour's delivery is shared
    among the gridaware jobs running then by their energy."""

    name: str = Field(min_length=1, max_length=63, description="Contract name.")
    power_kw: float = Field(gt=0, le=1e7, description="Contracted capacity in kW.")
    carbon_intensity: float = Field(
        default=0, ge=0, le=2000, description="Its lifecycle intensity in gCO2e/kWh."
    )
    shape: Literal["baseload", "solar", "wind", "trace"] = Field(
        default="baseload",
        description="baseload (capacity every hour), solar (daylight curve peaking at the "
        "capacity at local noon), wind (capacity x capacityFactor, following the zone's "
        "renewable share where a feed gives it) or trace (delivery in trace).",
    )
    capacity_factor: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Mean output over capacity for wind (default 0.35).",
    )
    utc_offset_hours: float | None = Field(
        default=None,
        ge=-14,
        le=14,
        description="Local time of the solar curve (default: the cluster region's, else 0).",
    )
    price_usd_per_mwh: float | None = Field(
        default=None,
        ge=-10000,
        le=100000,
        description="Contract price, used when placement values contracted supply.",
    )
    trace: DeliveryTrace | None = Field(default=None, description="Delivery for shape trace.")

    @model_validator(mode="after")
    def _trace_for_trace(self) -> GreenContract:
        if (self.shape == "trace") != (self.trace is not None):
            raise ValueError("a contract has a trace exactly when its shape is trace")
        return self


class HourlyCap(Model):
    """A cap for some hours of every day (local time of the budget's zone); ``startHour``
    above ``endHour`` wraps past midnight."""

    start_hour: int = Field(ge=0, le=23, description="First hour (0-23, local time).")
    end_hour: int = Field(ge=1, le=24, description="Hour the cap ends (exclusive, 1-24).")
    cap_kw: float = Field(ge=0, le=1e7, description="Most kW gridaware work may draw then.")


class BudgetPeriod(Model):
    """A cap for one stretch of time (RFC 3339, grid time); ``end`` is exclusive."""

    start: str = Field(json_schema_extra={"format": "date-time"}, description="Start.")
    end: str = Field(json_schema_extra={"format": "date-time"}, description="End.")
    cap_kw: float = Field(ge=0, le=1e7, description="Most kW gridaware work may draw then.")

    @field_validator("start", "end")
    @classmethod
    def _rfc3339(cls, value: str) -> str:
        parse_time(value)
        return value


class PowerBudget(Model):
    """The power gridaware-managed work may draw in this cluster (facility kW, PUE
    included): a standing cap, caps by hour of day and scheduled caps; the lowest that
    applies wins. Enforced at placement and by pausing pausable jobs."""

    cap_kw: float | None = Field(
        default=None, ge=0, le=1e7, description="Cap at all times (kW, PUE included)."
    )
    time_zone: str = Field(
        default="UTC",
        max_length=64,
        description="IANA zone of the hourly caps, e.g. Europe/Berlin.",
    )
    hourly: list[HourlyCap] = Field(
        default_factory=list, max_length=48, description="Caps by hour of day."
    )
    schedule: list[BudgetPeriod] = Field(
        default_factory=list, max_length=200, description="Caps for stretches of time."
    )
    ramp_kw_per_minute: float | None = Field(
        default=None,
        gt=0,
        le=1e7,
        description="Most change of gridaware-managed kW per minute in this cluster's zone "
        "(anti-herding; the lowest of a zone's clusters applies).",
    )


class GridClusterSpec(Model):
    """A member cluster in a grid region, registered on the hub."""

    region: str = Field(
        min_length=1, max_length=63, description="Region name shown to users, e.g. us-west."
    )
    grid_zone: str = Field(
        min_length=1,
        max_length=32,
        description="Grid zone code the carbon feeds use, e.g. US-CAL-CISO.",
    )
    price_zone: str | None = Field(
        default=None, max_length=32, description="Day-ahead market zone; defaults to gridZone."
    )
    kubeconfig_secret_ref: SecretKeyRef = Field(
        description="Secret on the hub holding a kubeconfig for this member cluster."
    )
    capacity: CapacityOverride | None = Field(
        default=None, description="Optional cap on what gridaware may use in this cluster."
    )
    pue: float = Field(
        default=1.2,
        ge=1.0,
        le=3.0,
        description="Power usage effectiveness of the data centre (>= 1.0).",
    )
    green_contracts: list[GreenContract] = Field(
        default_factory=list,
        max_length=20,
        description="Contracted green supply, used first in market-based accounting.",
    )
    power_budget: PowerBudget | None = Field(
        default=None, description="Power cap (kW) for gridaware work, and a ramp limit."
    )


class SignalStatus(Model):
    value: float = Field(description="Current value.")
    unit: str = Field(description="Unit, e.g. gCO2e/kWh or EUR/MWh.")
    source: str = Field(description="Provider that answered.")
    kind: str | None = Field(default=None, description="average or marginal (carbon only).")
    age_seconds: float = Field(description="Seconds since the value's interval ended.")
    stale: bool = Field(description="True when older than the configured limit.")


class PowerStatus(Model):
    """What gridaware-managed work draws here now and is planned to draw (facility kW)."""

    now_kw: float = Field(description="Drawn now by running gridaware jobs (kW, PUE included).")
    cap_kw: float | None = Field(default=None, description="Power budget now (kW), if any.")
    planned_from: str = Field(description="Start of the first planned hour (RFC 3339).")
    planned_kw: list[float] = Field(
        default_factory=list,
        max_length=168,
        description="Mean kW per hour from plannedFrom: running and deferred jobs.",
    )
    paused_jobs: int = Field(default=0, description="Jobs paused for a grid event or budget.")


class GridClusterStatus(Model):
    conditions: list[Condition] = Field(
        default_factory=list, description="Reachable and Ready conditions."
    )
    server_version: str | None = Field(default=None, description="Member API server version.")
    allocatable: Resources | None = Field(
        default=None, description="Allocatable capacity of ready nodes."
    )
    free: Resources | None = Field(default=None, description="Capacity not requested by pods.")
    carbon: SignalStatus | None = Field(default=None, description="Current carbon intensity.")
    price: SignalStatus | None = Field(default=None, description="Current day-ahead price.")
    jobs: int | None = Field(default=None, description="Active gridaware jobs in this cluster.")
    last_probe_time: str | None = Field(default=None, description="Last health probe (RFC 3339).")
    power: PowerStatus | None = Field(
        default=None, description="Power drawn now and planned (gridaware work)."
    )


# --- GridAwareJob --------------------------------------------------------------------------


class LabelSelectorRequirement(Model):
    key: str = Field(description="Label key.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="In, NotIn, Exists or DoesNotExist."
    )
    values: list[str] = Field(default_factory=list, description="Values for In and NotIn.")


class LabelSelector(Model):
    match_labels: dict[str, str] = Field(
        default_factory=dict, description="Labels the GridCluster must have."
    )
    match_expressions: list[LabelSelectorRequirement] = Field(
        default_factory=list, description="Set-based requirements on GridCluster labels."
    )

    def matches(self, labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
            if req.operator == "In" and labels.get(req.key) not in req.values:
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
        return True


class Placement(Model):
    """Where the job may run. Empty means any registered, healthy cluster."""

    clusters: list[Name] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Allowed GridCluster names (empty: all).",
    )
    cluster_selector: LabelSelector | None = Field(
        default=None, description="Allowed GridClusters by their labels."
    )
    home_cluster: str | None = Field(
        default=None,
        max_length=253,
        description="Counterfactual for savings: where the job would run by default "
        "(default: the first eligible cluster by name).",
    )
    excluded_zones: list[Zone] = Field(
        default_factory=list,
        max_length=100,
        json_schema_extra={"x-kubernetes-list-type": "set"},
        description="Grid zones the job must not run in (e.g. data-residency rules).",
    )


class Energy(Model):
    """How much power the job draws, for carbon and cost estimates and accounts."""

    watts_per_replica: float | None = Field(
        default=None, gt=0, le=100000, description="Average power per pod in W."
    )
    watts_per_cpu: float | None = Field(
        default=None, gt=0, le=10000, description="Power per requested CPU core in W."
    )
    watts_per_gpu: float | None = Field(
        default=None, gt=0, le=10000, description="Power per requested GPU in W."
    )


class Objective(Model):
    """What to optimise: weights of carbon and price, and an optional carbon ceiling."""

    carbon_weight: float = Field(default=1.0, ge=0, le=1000, description="Weight of carbon.")
    price_weight: float = Field(default=0.0, ge=0, le=1000, description="Weight of price.")
    carbon_ceiling: float | None = Field(
        default=None,
        gt=0,
        le=2000,
        description="Never run where intensity (gCO2e/kWh) is above this; wait instead.",
    )
    value_contracts: bool = Field(
        default=False,
        description="Score the part of an hour that a cluster's green contracts cover at the "
        "contracts' intensity and price (market-based) instead of the grid's.",
    )

    @model_validator(mode="after")
    def _weighted(self) -> Objective:
        if self.carbon_weight + self.price_weight <= 0:
            raise ValueError("objective.carbonWeight and objective.priceWeight must not both be 0")
        return self


def parse_time(text: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp (``Z`` or an offset); ValueError says what is
    expected."""
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2026-11-25T06:00:00Z") from None
    if t.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone: add Z or an offset such as +01:00")
    return t.timestamp()


class ScheduleWindow(Model):
    """When the job may run. With a deadline (or maximum delay) and an expected duration,
    gridaware may defer the start to the greenest window that still meets the deadline."""

    earliest_start: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Do not start before this time (RFC 3339, grid time).",
    )
    deadline: str | None = Field(
        default=None,
        json_schema_extra={"format": "date-time"},
        description="Must have finished by this time (RFC 3339, grid time).",
    )

    @field_validator("earliest_start", "deadline")
    @classmethod
    def _rfc3339(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time(value)
        return value

    max_delay_seconds: int | None = Field(
        default=None,
        ge=0,
        le=30 * 86400,
        description="Alternative to deadline: start at most this much later than created.",
    )
    expected_duration_seconds: int | None = Field(
        default=None,
        gt=0,
        le=30 * 86400,
        description="How long the job runs; needed for planning start times.",
    )


class MigrationPolicy(Model):
    """Whether and how the job may move to a greener cluster while it runs."""

    policy: Literal["Never", "Restart", "Checkpoint"] = Field(
        default="Never",
        description="Never; Restart (stateless, starts over); Checkpoint (the workload gets "
        "GRIDAWARE_CHECKPOINT_DIR, is stopped with SIGTERM and resumes in the target).",
    )
    checkpoint_dir: str = Field(
        default="/var/run/gridaware/checkpoint",
        max_length=1024,
        description="Checkpoint location given to the workload (a shared volume or URI).",
    )
    grace_period_seconds: int = Field(
        default=30, ge=0, le=3600, description="Time the workload gets to checkpoint."
    )
    min_dwell_seconds: int = Field(
        default=1800, ge=0, le=86400, description="Stay at least this long (grid time)."
    )
    max_migrations: int = Field(default=3, ge=0, le=20, description="Most moves per job.")
    overhead_seconds: int = Field(
        default=300,
        ge=0,
        le=86400,
        description="Lost progress plus restart time per move (grid time).",
    )
    margin: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="Required saving beyond the overhead, as a share of staying.",
    )


class MigrationState(Model):
    step: Literal["Stopping", "WaitingForStop", "Starting", "Started"] = Field(
        description="Current step of the migration protocol."
    )
    source: str = Field(description="Cluster the job leaves.")
    target: str = Field(description="Cluster the job moves to.")
    reason: str = Field(description="Why it moves.")
    decided: str = Field(description="When the move was decided (RFC 3339, wall time, ms).")


class PauseState(Model):
    """A pause in place in progress: the member Job is suspended (its pods get SIGTERM and
    the grace period to checkpoint) and resumed later in the same cluster."""

    step: Literal["Pausing", "Paused", "Resuming"] = Field(
        description="Pausing (suspend requested, pods stopping), Paused (no pod left), "
        "Resuming (unsuspended, waiting for pods to run)."
    )
    reason: str = Field(description="Why the job pauses, e.g. a GridEvent or the run plan.")
    requested_by: str = Field(description="Who asked: plan, GridEvent/<name> or budget.")
    since: str = Field(description="When the pause was decided (RFC 3339, wall time, ms).")
    resume_at: str | None = Field(
        default=None, description="Planned resume (RFC 3339, grid time), if known."
    )


class PauseRecord(Model):
    start: str = Field(description="When the pause was decided (RFC 3339, wall time).")
    end: str = Field(description="When the pods ran again (RFC 3339, wall time).")
    reason: str = Field(description="Why.")
    requested_by: str = Field(description="Who asked.")


class MigrationRecord(Model):
    time: str = Field(description="When the move was decided (RFC 3339).")
    source: str = Field(description="From.")
    target: str = Field(description="To.")
    reason: str = Field(description="Why.")
    takeover_seconds: float = Field(description="Decision to the target's pods running.")


class RunRecord(Model):
    cluster: str = Field(description="Cluster of a finished run segment.")
    start: str = Field(description="Start (RFC 3339, wall time).")
    end: str = Field(description="End (RFC 3339, wall time).")


class Flexibility(Model):
    """Whether and how long the job may be paused in place (for interruptible plans and
    grid events); pausing needs a workload that checkpoints on SIGTERM."""

    pausable: bool = Field(
        default=False,
        description="May be paused in place (member Job suspended, resumed later). "
        "Checkpointing jobs (migration.policy Checkpoint) are pausable by default.",
    )
    max_pause_seconds: int | None = Field(
        default=None, ge=60, le=7 * 86400, description="Longest single pause (grid time)."
    )
    max_pauses: int = Field(default=4, ge=0, le=100, description="Most pauses per job.")
    priority: int = Field(
        default=0,
        ge=-100,
        le=100,
        description="Higher-priority jobs are paused last when the grid asks for less.",
    )


class GridAwareJobSpec(Model):
    template: dict[str, Any] | None = Field(
        default=None,
        description="The batch/v1 JobSpec to run in the chosen member cluster (or jobSet).",
    )
    job_set: dict[str, Any] | None = Field(
        default=None,
        description="A JobSet spec (jobset.x-k8s.io/v1alpha2) to run instead of a Job: "
        "multi-node training; the member cluster must run the JobSet controller.",
    )
    schedule: ScheduleWindow | None = Field(
        default=None, description="Time window: earliest start, deadline, expected duration."
    )
    migration: MigrationPolicy = Field(
        default_factory=MigrationPolicy, description="Moving the job while it runs."
    )
    placement: Placement = Field(default_factory=Placement, description="Where the job may run.")
    energy: Energy = Field(default_factory=Energy, description="Power model of the job.")
    objective: Objective = Field(default_factory=Objective, description="Optimisation goal.")
    flexibility: Flexibility = Field(
        default_factory=Flexibility, description="Pausing in place (plans and grid events)."
    )

    @property
    def pausable(self) -> bool:
        return self.flexibility.pausable or self.migration.policy == "Checkpoint"

    @property
    def kind(self) -> Literal["Job", "JobSet"]:
        return "JobSet" if self.job_set is not None else "Job"

    @model_validator(mode="after")
    def _one_workload(self) -> GridAwareJobSpec:
        if (self.template is None) == (self.job_set is None):
            raise ValueError("set exactly one of spec.template (a Job) and spec.jobSet")
        return self


class CandidateScore(Model):
    cluster: str = Field(description="GridCluster name.")
    zone: str = Field(description="Grid zone.")
    eligible: bool = Field(description="Whether the cluster passed every hard constraint.")
    reason: str = Field(default="", description="Why it was not eligible, if it was not.")
    carbon: float | None = Field(default=None, description="Carbon intensity (gCO2e/kWh).")
    price: float | None = Field(default=None, description="Price (USD/MWh equivalent).")
    score: float | None = Field(default=None, description="Weighted score; lower is better.")


class PlacementRecord(Model):
    time: str = Field(description="When the decision was made (RFC 3339).")
    cluster: str | None = Field(default=None, description="Chosen cluster, if any.")
    reason: str = Field(description="Why this cluster (or none) was chosen.")
    candidates: list[CandidateScore] = Field(
        default_factory=list, description="Every candidate with its score."
    )


class Deferral(Model):
    planned_start: str = Field(description="Planned start (RFC 3339, grid time).")
    cluster: str = Field(description="Cluster expected to be greenest then.")
    expected_carbon: float = Field(description="Forecast mean intensity over the run.")
    carbon_now: float | None = Field(
        default=None, description="Forecast mean intensity if started now."
    )


EnergySource = Literal["Measured", "Modelled", "Mixed"]


class Segment(Model):
    cluster: str = Field(description="Cluster of this run segment.")
    zone: str = Field(description="Grid zone.")
    start: str = Field(description="Start (RFC 3339, grid time).")
    end: str = Field(description="End (RFC 3339, grid time).")
    energy_kwh: float = Field(description="Energy including PUE.")
    carbon_location_g: float = Field(description="Location-based emissions (grid average).")
    carbon_market_g: float = Field(description="Market-based emissions (contracts first).")
    contract_kwh: float = Field(
        default=0, description="This job's share of the contracts' delivery (hourly matched)."
    )
    grid_cfe_kwh: float = Field(
        default=0, description="Carbon-free energy from the grid mix for the rest."
    )
    cost_usd: float | None = Field(default=None, description="Electricity cost (USD).")
    hourly_load_kwh: list[float] = Field(
        default_factory=list,
        max_length=800,
        description="Energy per hour from the hour of start (for reports).",
    )
    hourly_cfe_kwh: list[float] = Field(
        default_factory=list,
        max_length=800,
        description="Carbon-free energy (contract + grid) per hour from the hour of start.",
    )
    energy_source: EnergySource = Field(
        default="Modelled",
        description="Measured (Prometheus energy counters for every pod), Modelled (the "
        "spec's energy model) or Mixed (measured pods plus the model for the rest).",
    )


class Account(Model):
    """Energy, carbon and cost of the job's actual run, and what it saved against running at
    once in the home cluster. Location- and market-based figures are never mixed."""

    energy_kwh: float = Field(description="Energy including PUE.")
    carbon_location_g: float = Field(description="Location-based gCO2e.")
    carbon_market_g: float = Field(description="Market-based gCO2e.")
    cost_usd: float | None = Field(default=None, description="Electricity cost (USD).")
    home_cluster: str = Field(description="Cluster of the counterfactual.")
    counterfactual_location_g: float | None = Field(
        default=None,
        description="Location-based gCO2e of running at once in the home cluster (absent "
        "when the home zone's signal history is missing: no saving is claimed then).",
    )
    saved_location_g: float | None = Field(
        default=None, description="Counterfactual minus actual, location-based."
    )
    counterfactual_cost_usd: float | None = Field(
        default=None, description="Cost of running at once in the home cluster (USD)."
    )
    carbon_source: str = Field(description="Where the intensities came from.")
    contract_kwh: float = Field(
        default=0, description="Energy met by the clusters' green contracts (hourly matched)."
    )
    grid_cfe_kwh: float = Field(
        default=0, description="Energy met by the grid mix's carbon-free share."
    )
    cfe_percent: float | None = Field(
        default=None, description="Hourly-matched carbon-free share of the energy (%)."
    )
    cfe_estimated: bool = Field(
        default=False,
        description="True when the grid's carbon-free share was estimated from its intensity "
        "(no renewable-share feed for the zone).",
    )
    energy_source: EnergySource = Field(
        default="Modelled",
        description="Measured when every segment's energy came from Prometheus energy "
        "counters, Modelled when none did, Mixed otherwise (carbon, cost and contract shares "
        "all use this energy).",
    )
    energy_note: str | None = Field(
        default=None,
        description="Why (part of) the energy is modelled although measurement is configured "
        "(e.g. Prometheus unreachable).",
    )
    segments: list[Segment] = Field(default_factory=list, description="Run segments.")


class MemberJobRef(Model):
    cluster: str = Field(description="GridCluster holding the member Job.")
    namespace: str = Field(description="Namespace of the member Job.")
    name: str = Field(description="Name of the member Job.")
    uid: str | None = Field(default=None, description="UID of the member Job.")


Phase = Literal["Pending", "Scheduled", "Running", "Paused", "Succeeded", "Failed"]


class GridAwareJobStatus(Model):
    observed_generation: int | None = Field(default=None, description="Last generation acted upon.")
    phase: Phase | None = Field(
        default=None, description="Pending, Scheduled, Running, Paused, Succeeded or Failed."
    )
    conditions: list[Condition] = Field(default_factory=list, description="Conditions.")
    cluster: str | None = Field(default=None, description="Cluster the job runs in.")
    region: str | None = Field(default=None, description="Region of that cluster.")
    zone: str | None = Field(default=None, description="Grid zone of that cluster.")
    member_job: MemberJobRef | None = Field(default=None, description="The member Job.")
    carbon_at_placement: float | None = Field(
        default=None, description="Carbon intensity (gCO2e/kWh) when placed."
    )
    price_at_placement: float | None = Field(
        default=None, description="Price (USD/MWh) when placed."
    )
    placements: list[PlacementRecord] = Field(
        default_factory=list, description="Placement decisions, newest last."
    )
    placed_time: str | None = Field(default=None, description="When placed (RFC 3339).")
    deferral: Deferral | None = Field(default=None, description="The planned deferred start.")
    account: Account | None = Field(default=None, description="Energy, carbon and cost.")
    migration: MigrationState | None = Field(default=None, description="A move in progress.")
    pause: PauseState | None = Field(default=None, description="A pause in progress.")
    pauses: list[PauseRecord] = Field(
        default_factory=list, description="Completed pauses, oldest first (at most 50 kept)."
    )
    spec_hash: str | None = Field(
        default=None,
        description="Digests of the template and placement the member Job was created from "
        "(a placed job keeps them).",
    )
    summary: str | None = Field(
        default=None,
        description="One line for kubectl: deferral with planned start, pause or migration "
        "step, or the phase.",
    )
    migrations: list[MigrationRecord] = Field(
        default_factory=list, description="Completed moves, oldest first."
    )
    run_segments: list[RunRecord] = Field(
        default_factory=list, description="Run segments left behind by moves."
    )
    start_time: str | None = Field(default=None, description="When the member Job started.")
    segment_start: str | None = Field(
        default=None, description="When the current run segment started (after a move/pause)."
    )
    completion_time: str | None = Field(default=None, description="When it finished.")


def now_rfc3339(t: dt.datetime | None = None) -> str:
    return (t or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(epoch: float, ms: bool = False) -> str:
    """An epoch time as RFC 3339 UTC (``Z``), to the second or the millisecond."""
    t = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    if ms:
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class MemberJobState(Model):
    """What the operator observed of a member Job (from the member cluster's watch)."""

    cluster: str
    namespace: str
    name: str
    uid: str
    owner_uid: str | None = None
    owner: str | None = None  # "<namespace>/<name>" of the GridAwareJob on the hub
    active: int = 0
    ready: int = 0
    succeeded: int = 0
    failed: int = 0
    complete: bool = False
    failed_condition: bool = False
    message: str = ""
    start_time: str | None = None
    completion_time: str | None = None
    resource_version: str = ""
    requests: Resources = Field(default_factory=Resources)
    ttl_after_finished: int | None = None
    kind: Literal["Job", "JobSet"] = "Job"  # the template's ttlSecondsAfterFinished

    @property
    def finished(self) -> bool:
        return self.complete or self.failed_condition
