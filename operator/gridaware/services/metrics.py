"""Prometheus metrics of the operator: jobs, placements, deferrals and migrations, carbon and
cost accounted and saved, signal values, ages and errors, reconcile errors and latency, and
how each grid event is being met (compliance, target, achieved and current kW).

Gauges that describe state (jobs by phase, signals) are refreshed by the member agents;
counters are incremented where things happen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    """The operator's metric families, in a registry of their own (one per operator, so tests
    and several operators in one process never share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.jobs = Gauge(
            "gridaware_jobs",
            "GridAwareJobs by phase and cluster",
            ["phase", "cluster"],
            registry=self.registry,
        )
        self.placements = Counter(
            "gridaware_placements_total",
            "Placement decisions",
            ["cluster", "reason"],
            registry=self.registry,
        )
        self.deferrals = Counter(
            "gridaware_deferrals_total",
            "Jobs deferred to a greener start time",
            ["cluster"],
            registry=self.registry,
        )
        self.migrations = Counter(
            "gridaware_migrations_total",
            "Jobs moved between clusters",
            ["source", "target"],
            registry=self.registry,
        )
        self.takeover = Histogram(
            "gridaware_migration_takeover_seconds",
            "From the migration decision to the target's pods running",
            buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
            registry=self.registry,
        )
        self.carbon = Counter(
            "gridaware_carbon_grams_total",
            "Carbon accounted for finished job segments (location- and market-based are "
            "separate series, never summed)",
            ["method", "cluster"],
            registry=self.registry,
        )
        self.carbon_saved = Counter(
            "gridaware_carbon_saved_grams_total",
            "Carbon saved against running at once in the home cluster",
            ["method"],
            registry=self.registry,
        )
        self.cost = Counter(
            "gridaware_cost_total",
            "Electricity cost accounted",
            ["currency", "cluster"],
            registry=self.registry,
        )
        self.signal = Gauge(
            "gridaware_signal_value",
            "Current signal value",
            ["zone", "signal", "source", "unit"],
            registry=self.registry,
        )
        self.signal_age = Gauge(
            "gridaware_signal_age_seconds",
            "Age of the current signal value",
            ["zone", "signal"],
            registry=self.registry,
        )
        self.signal_errors = Counter(
            "gridaware_signal_fetch_errors_total",
            "Failed signal fetches",
            ["zone", "source"],
            registry=self.registry,
        )
        self.reconcile_errors = Counter(
            "gridaware_reconcile_errors_total",
            "Handler failures",
            ["handler"],
            registry=self.registry,
        )
        self.deadline_slack = Gauge(
            "gridaware_job_deadline_slack_seconds",
            "Grid seconds until the latest start that still meets the job's deadline (for a "
            "running job: until the deadline after its remaining run); negative: at risk",
            ["namespace", "job"],
            registry=self.registry,
        )
        self.reconcile = Histogram(
            "gridaware_reconcile_seconds",
            "Handler latency",
            ["handler"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.cluster_reachable = Gauge(
            "gridaware_cluster_reachable",
            "1 when the member API answers",
            ["cluster"],
            registry=self.registry,
        )
        event = ["event", "kind"]
        self.gridevent_compliance = Gauge(
            "gridaware_gridevent_compliance_ratio",
            "Share of the GridEvent's window so far with its target met (0 to 1)",
            event,
            registry=self.registry,
        )
        self.gridevent_target_kw = Gauge(
            "gridaware_gridevent_target_kw",
            "The load a GridEvent's targets must stay at or below (Curtail) or reach (Absorb)",
            event,
            registry=self.registry,
        )
        self.gridevent_achieved_kw = Gauge(
            "gridaware_gridevent_achieved_kw",
            "Mean load of a GridEvent's targets over its window so far",
            event,
            registry=self.registry,
        )
        self.gridevent_current_kw = Gauge(
            "gridaware_gridevent_current_kw",
            "What a GridEvent's targets draw now (facility kW of gridaware work)",
            event,
            registry=self.registry,
        )

    def start(self, handlers: tuple[str, ...] = ("reconcile", "delete", "migrate")) -> None:
        """Create the labelled series that exist from the start (0, not "no data")."""
        for h in handlers:
            self.reconcile_errors.labels(h)

    @contextmanager
    def timed(self, handler: str) -> Iterator[None]:
        """Observe the latency of a handler and count it as an error if it raises anything but
        the retry signals Kopf uses."""
        start = time.perf_counter()
        try:
            yield
        except Exception as exc:
            if exc.__class__.__name__ != "TemporaryError":  # waiting to retry is not an error
                self.reconcile_errors.labels(handler).inc()
            raise
        finally:
            self.reconcile.labels(handler).observe(time.perf_counter() - start)

    def serve(self, port: int, address: str = "0.0.0.0") -> None:  # noqa: S104 - configurable
        start_http_server(port, addr=address, registry=self.registry)
