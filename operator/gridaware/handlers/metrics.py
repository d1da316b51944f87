"""Prometheus metrics of the operator: jobs, placements, deferrals and migrations, carbon and
cost accounted and saved, signal values, ages and errors, reconcile errors and latency.

Gauges that describe state (jobs by phase, signals) are refreshed from the registry by the
cluster daemons; counters are incremented where things happen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram, start_http_server

JOBS = Gauge("gridaware_jobs", "GridAwareJobs by phase and cluster", ["phase", "cluster"])
PLACEMENTS = Counter("gridaware_placements_total", "Placement decisions", ["cluster", "reason"])
DEFERRALS = Counter(
    "gridaware_deferrals_total", "Jobs deferred to a greener start time", ["cluster"]
)
MIGRATIONS = Counter(
    "gridaware_migrations_total", "Jobs moved between clusters", ["source", "target"]
)
TAKEOVER = Histogram(
    "gridaware_migration_takeover_seconds",
    "From the migration decision to the target's pods running",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600),
)
CARBON = Counter(
    "gridaware_carbon_grams_total",
    "Carbon accounted for finished job segments (location- and market-based are "
    "separate series, never summed)",
    ["method", "cluster"],
)
CARBON_SAVED = Counter(
    "gridaware_carbon_saved_grams_total",
    "Carbon saved against running at once in the home cluster",
    ["method"],
)
COST = Counter("gridaware_cost_total", "Electricity cost accounted", ["currency", "cluster"])
SIGNAL = Gauge(
    "gridaware_signal_value", "Current signal value", ["zone", "signal", "source", "unit"]
)
SIGNAL_AGE = Gauge(
    "gridaware_signal_age_seconds", "Age of the current signal value", ["zone", "signal"]
)
SIGNAL_ERRORS = Counter(
    "gridaware_signal_fetch_errors_total", "Failed signal fetches", ["zone", "source"]
)
RECONCILE_ERRORS = Counter("gridaware_reconcile_errors_total", "Handler failures", ["handler"])
RECONCILE = Histogram(
    "gridaware_reconcile_seconds",
    "Handler latency",
    ["handler"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
CLUSTER_REACHABLE = Gauge(
    "gridaware_cluster_reachable", "1 when the member API answers", ["cluster"]
)


@contextmanager
def timed(handler: str) -> Iterator[None]:
    """Observe the latency of a handler and count it as an error if it raises anything but
    the retry signals Kopf uses."""
    start = time.perf_counter()
    try:
        yield
    except Exception as exc:
        if exc.__class__.__name__ != "TemporaryError":  # waiting to retry is not an error
            RECONCILE_ERRORS.labels(handler).inc()
        raise
    finally:
        RECONCILE.labels(handler).observe(time.perf_counter() - start)


def serve(port: int) -> None:
    start_http_server(port)
