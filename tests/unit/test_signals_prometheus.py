"""The measured-energy client against a local HTTP server playing Prometheus' query API: the
queries it sends, per-pod joules from Kepler and DCGM counters (resets, births inside the
window, mJ), "nothing measured", and Prometheus errors; the counter arithmetic by hypothesis."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridaware.signals.errors import FeedDataError, FeedUnavailableError
from gridaware.signals.http import HttpClient, RetryPolicy
from gridaware.signals.prometheus import (
    PrometheusEnergy,
    counter_increase,
    job_pods_regex,
    jobset_pods_regex,
    pods_regex,
    prefix_regex,
)
from tests.feedserver import Answer, FeedServer

T0 = 1_700_000_000.0
START = dt.datetime.fromtimestamp(T0 + 100, dt.UTC)
END = dt.datetime.fromtimestamp(T0 + 200, dt.UTC)
FAST = RetryPolicy(attempts=2, base_delay=0.01, total_timeout=3.0, request_timeout=(0.5, 0.5))


def _matrix(*series: tuple[dict[str, str], list[tuple[float, float]]]) -> dict[str, Any]:
    return {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": m, "values": [[t, str(v)] for t, v in vals]} for m, vals in series
            ],
        },
    }


EMPTY = _matrix()


def _client(server: FeedServer, **kw: Any) -> PrometheusEnergy:
    return PrometheusEnergy(server.url, http=HttpClient("prometheus", FAST), **kw)


def _kepler(pod: str, container: str = "main") -> dict[str, str]:
    return {
        "__name__": "kepler_container_joules_total",
        "container_namespace": "ml",
        "pod_name": pod,
        "container_name": container,
        "mode": "dynamic",
    }


def _dcgm(pod: str, gpu: str = "0") -> dict[str, str]:
    return {
        "__name__": "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
        "namespace": "ml",
        "pod": pod,
        "gpu": gpu,
    }


@pytest.mark.parametrize(
    ("kepler", "dcgm", "expected"),
    [
        pytest.param(
            _matrix((_kepler("a-x1"), [(T0 + 90, 50), (T0 + 150, 80), (T0 + 200, 100)])),
            EMPTY,
            {"a-x1": 50.0},
            id="kepler-baseline-before-window",
        ),
        pytest.param(
            _matrix((_kepler("a-x1"), [(T0 + 120, 10), (T0 + 180, 40)])),
            EMPTY,
            {"a-x1": 40.0},
            id="kepler-born-inside-window-counts-from-zero",
        ),
        pytest.param(
            _matrix(
                (_kepler("a-x1", "main"), [(T0 + 90, 0), (T0 + 200, 30)]),
                (_kepler("a-x1", "side"), [(T0 + 90, 0), (T0 + 200, 5)]),
            ),
            EMPTY,
            {"a-x1": 35.0},
            id="containers-summed-per-pod",
        ),
        pytest.param(
            _matrix((_kepler("a-x1"), [(T0 + 90, 100), (T0 + 150, 130), (T0 + 160, 20)])),
            EMPTY,
            {"a-x1": 50.0},
            id="kepler-reset-counts-new-value",
        ),
        pytest.param(
            EMPTY,
            _matrix((_dcgm("a-x1"), [(T0 + 110, 9_000_000), (T0 + 190, 9_030_000)])),
            {"a-x1": 30.0},
            id="dcgm-millijoules-born-inside-window-from-first-sample",
        ),
        pytest.param(
            _matrix((_kepler("a-x1"), [(T0 + 90, 0), (T0 + 200, 20)])),
            _matrix(
                (_dcgm("a-x1", "0"), [(T0 + 90, 1000), (T0 + 200, 11_000)]),
                (_dcgm("a-x1", "1"), [(T0 + 90, 1000), (T0 + 200, 11_000)]),
                (_dcgm("b-x2", "2"), [(T0 + 90, 0), (T0 + 200, 4000)]),
            ),
            {"a-x1": 40.0, "b-x2": 4.0},
            id="kepler-plus-two-gpus",
        ),
        pytest.param(EMPTY, EMPTY, None, id="nothing-measured-is-none"),
    ],
)
def test_joules_per_pod(
    feed_server: FeedServer,
    kepler: dict[str, Any],
    dcgm: dict[str, Any],
    expected: dict[str, float] | None,
) -> None:
    feed_server.route("/api/v1/query", kepler, dcgm)
    got = _client(feed_server).joules("ml", prefix_regex("a"), START, END)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected)


def test_queries_are_raw_samples_at_end_with_namespace_pod_and_cluster(
    feed_server: FeedServer,
) -> None:
    feed_server.route("/api/v1/query", EMPTY)
    _client(feed_server).joules("ml", pods_regex(["a-1", "a.b-2"]), START, END, cluster="us-west")
    kepler, dcgm = (r.query for r in feed_server.hits("/api/v1/query"))
    assert kepler["time"] == [f"{T0 + 200:.3f}"]
    assert kepler["query"] == [
        'kepler_container_joules_total{container_namespace="ml",pod_name=~"a-1|a\\\\.b-2",'
        'cluster="us-west"}[401s]'
    ]
    assert dcgm["query"][0].startswith(
        'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{namespace="ml",pod=~"a-1|a\\\\.b-2",'
    )


def test_dcgm_can_be_left_out_when_kepler_counts_gpus(feed_server: FeedServer) -> None:
    feed_server.route("/api/v1/query", EMPTY)
    _client(feed_server, dcgm_metric=None).joules("ml", "a", START, END)
    assert len(feed_server.hits("/api/v1/query")) == 1


@pytest.mark.parametrize(
    ("answer", "error", "match"),
    [
        pytest.param(
            Answer(400, {"status": "error", "errorType": "bad_data", "error": "parse error"}),
            FeedDataError,
            "bad_data",
            id="promql-error",
        ),
        pytest.param(Answer(200, "<html>"), FeedDataError, "not JSON", id="not-json"),
        pytest.param(
            Answer(200, {"status": "success", "data": {"resultType": "vector", "result": []}}),
            FeedDataError,
            "matrix",
            id="wrong-result-type",
        ),
        pytest.param(Answer(503, "down"), FeedUnavailableError, "503", id="unavailable"),
    ],
)
def test_prometheus_failures_are_signal_errors(
    feed_server: FeedServer, answer: Answer, error: type[Exception], match: str
) -> None:
    feed_server.route("/api/v1/query", answer)
    with pytest.raises(error, match=match):
        _client(feed_server).joules("ml", "a", START, END)


@pytest.mark.parametrize(
    ("pattern", "pod", "matches"),
    [
        pytest.param(job_pods_regex("train"), "train-x7k2p", True, id="job-pod"),
        pytest.param(job_pods_regex("train"), "train-3-x7k2p", True, id="indexed-job-pod"),
        pytest.param(job_pods_regex("train"), "train-gpu-x7k2p", False, id="other-job"),
        pytest.param(
            jobset_pods_regex("llm", ["workers", "driver"]),
            "llm-workers-1-0-ab3cd",
            True,
            id="jobset-pod",
        ),
        pytest.param(
            jobset_pods_regex("llm", ["workers"]),
            "llm-driver-0-0-ab3cd",
            False,
            id="jobset-other-replicated-job",
        ),
        pytest.param(prefix_regex("a.b"), "a.b-1", True, id="dot-is-literal"),
        pytest.param(prefix_regex("a.b"), "axb-1", False, id="dot-not-wildcard"),
    ],
)
def test_pod_patterns_match_as_prometheus_would(pattern: str, pod: str, matches: bool) -> None:
    # PromQL regexes are fully anchored RE2; the string literal's escapes are undone first
    regex = pattern.replace("\\\\", "\\")
    assert bool(re.fullmatch(regex, pod)) is matches


def test_pod_names_are_validated() -> None:
    with pytest.raises(ValueError, match="not a Kubernetes object name"):
        pods_regex(['a"}) or vector(1'])


def test_end_must_follow_start(feed_server: FeedServer) -> None:
    with pytest.raises(ValueError, match="end must be after start"):
        _client(feed_server).joules("ml", "a", END, START)


_steps = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=30)


@given(steps=_steps, base=st.floats(min_value=0, max_value=1e9, allow_nan=False))
def test_monotonic_counter_increase_is_last_minus_baseline(steps: list[float], base: float) -> None:
    values = [base]
    for s in steps:
        values.append(values[-1] + s)
    samples = [(T0 + i, v) for i, v in enumerate(values)]
    got = counter_increase(samples, T0, T0 + len(values), born_at_zero=True)
    assert got == pytest.approx(values[-1] - values[0], rel=1e-9, abs=1e-6)


@given(values=st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), max_size=30))
def test_increase_is_never_negative_and_bounded_by_sum_of_values(values: list[float]) -> None:
    samples = [(T0 + i, v) for i, v in enumerate(values)]
    got = counter_increase(samples, T0 - 1, T0 + len(values), born_at_zero=True)
    assert 0 <= got <= sum(values) + 1e-6
