"""Measured energy per pod from Prometheus: Kepler's container counters and DCGM's GPU counters.

Platform teams already measure energy, and an account built from a guessed ``wattsPerGpu`` is
not credible where a measurement exists. This client asks Prometheus (``/api/v1/query``) for
the raw samples of the two counter families exporters publish for pods:

- Kepler: ``kepler_container_joules_total{container_namespace, pod_name, ...}`` (joules, one
  series per container and mode, counting from when Kepler first saw the container);
- NVIDIA DCGM exporter: ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{namespace, pod, ...}``
  (millijoules since the GPU booted; the pod labels are present while the pod holds the GPU).

and computes each series' increase over ``[start, end]`` exactly at sample resolution, with
counter resets handled as PromQL does. Prometheus' own ``increase()`` extrapolates to the
window edges, which over- or under-counts a pod that starts or stops inside the window by up
to a scrape interval's worth; the raw samples avoid that. The baseline of a series is its last
sample at or before ``start``; a series born inside the window starts from 0 for Kepler (its
counter starts with the container) and from its first sample for DCGM (a GPU's counter starts
at boot, long before the pod got it).

The result is joules per pod, or ``None`` when no selected pod has a series at all (nothing is
measured there, and the caller falls back to its power model). In the lab, Kepler's family
carries CPU-side energy only and GPU energy comes from DCGM, so the two are added; against a
Kepler configured to attribute GPU power too, pass ``dcgm_metric=None`` to avoid counting GPUs
twice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from gridaware.signals.errors import FeedDataError
from gridaware.signals.http import HttpClient, RetryPolicy

KEPLER_METRIC = "kepler_container_joules_total"
DCGM_METRIC = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"
# how far before ``start`` to look for each series' baseline sample
LOOKBACK_SECONDS = 300
_NAME_SAFE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")

Sample = tuple[float, float]  # (unix seconds, counter value)


@dataclass(frozen=True)
class _Family:
    metric: str
    namespace_label: str
    pod_label: str
    scale: float  # to joules
    born_at_zero: bool


_KEPLER = _Family(KEPLER_METRIC, "container_namespace", "pod_name", 1.0, born_at_zero=True)
_DCGM = _Family(DCGM_METRIC, "namespace", "pod", 1e-3, born_at_zero=False)


def pods_regex(names: Iterable[str]) -> str:
    """A PromQL regex matching exactly these pod names."""
    return "|".join(_quote_name(n) for n in sorted(set(names)))


def prefix_regex(prefix: str) -> str:
    """A PromQL regex for pods named ``<prefix>-...`` (a Job's or a JobSet's pods)."""
    return f"{_quote_name(prefix)}-.+"


def job_pods_regex(job: str) -> str:
    """The pods of a batch/v1 Job: ``<job>-<5 chars>``, or ``<job>-<index>-<5 chars>`` when
    Indexed (so a Job named ``train`` does not match the pods of ``train-gpu``)."""
    return f"{_quote_name(job)}-([0-9]+-)?[a-z0-9]{{5}}"


def jobset_pods_regex(jobset: str, replicated_jobs: Iterable[str]) -> str:
    """The pods of a JobSet: ``<jobset>-<replicatedJob>-<job index>-<pod index>-<5 chars>``."""
    names = "|".join(_quote_name(r) for r in sorted(set(replicated_jobs)))
    return f"{_quote_name(jobset)}-({names})-[0-9]+-[0-9]+-[a-z0-9]{{5}}"


def _quote_name(name: str) -> str:
    if not _NAME_SAFE.match(name):
        raise ValueError(f"not a Kubernetes object name: {name!r}")
    return name.replace(".", "\\\\.")


def counter_increase(
    samples: Sequence[Sample], start: float, end: float, born_at_zero: bool
) -> float:
    """The increase of one counter series over ``[start, end]`` from its raw samples.

    Resets (a value below the previous one) count the new value as increase, as PromQL does."""
    ordered = sorted(samples)
    before = [v for t, v in ordered if t <= start]
    inside = [v for t, v in ordered if start < t <= end]
    if before:
        previous = before[-1]
    elif inside:
        previous = 0.0 if born_at_zero else inside[0]
    else:
        return 0.0
    total = 0.0
    for value in inside:
        total += value - previous if value >= previous else value
        previous = value
    return total


class PrometheusEnergy:
    """Measured joules per pod from a Prometheus server (``url`` without ``/api/v1``)."""

    def __init__(
        self,
        url: str,
        *,
        kepler_metric: str | None = KEPLER_METRIC,
        dcgm_metric: str | None = DCGM_METRIC,
        cluster_label: str = "cluster",
        http: HttpClient | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.cluster_label = cluster_label
        self.families: list[_Family] = []
        if kepler_metric is not None:
            self.families.append(replace(_KEPLER, metric=kepler_metric))
        if dcgm_metric is not None:
            self.families.append(replace(_DCGM, metric=dcgm_metric))
        self.http = http or HttpClient(
            "prometheus", RetryPolicy(attempts=2, total_timeout=10.0, request_timeout=(2.0, 8.0))
        )

    def joules(
        self,
        namespace: str,
        pod_regex: str,
        start: dt.datetime,
        end: dt.datetime,
        cluster: str | None = None,
    ) -> dict[str, float] | None:
        """Measured joules per pod over ``[start, end]`` for pods in ``namespace`` whose name
        matches ``pod_regex`` (see ``pods_regex``/``prefix_regex``), optionally in one
        ``cluster`` (the scrape's ``cluster`` label); ``None`` when nothing is measured.
        Raises ``SignalError`` when Prometheus cannot be asked."""
        t0, t1 = start.timestamp(), end.timestamp()
        if t1 <= t0:
            raise ValueError("end must be after start")
        per_pod: dict[str, float] = {}
        for family in self.families:
            for pod, samples in self._series(family, namespace, pod_regex, t0, t1, cluster):
                inc = counter_increase(samples, t0, t1, family.born_at_zero) * family.scale
                per_pod[pod] = per_pod.get(pod, 0.0) + inc
        return per_pod or None

    def _selector(
        self, family: _Family, namespace: str, pod_regex: str, cluster: str | None
    ) -> str:
        matchers = [
            f'{family.namespace_label}="{_escape(namespace)}"',
            f'{family.pod_label}=~"{pod_regex}"',
        ]
        if cluster is not None:
            matchers.append(f'{self.cluster_label}="{_escape(cluster)}"')
        return f"{family.metric}{{{','.join(matchers)}}}"

    def _series(
        self,
        family: _Family,
        namespace: str,
        pod_regex: str,
        t0: float,
        t1: float,
        cluster: str | None,
    ) -> list[tuple[str, list[Sample]]]:
        window = int(t1 - t0) + 1 + LOOKBACK_SECONDS
        query = f"{self._selector(family, namespace, pod_regex, cluster)}[{window}s]"
        # Prometheus answers a bad query with 400/422 and a JSON error body: read it
        resp = self.http.get(
            f"{self.url}/api/v1/query",
            params={"query": query, "time": f"{t1:.3f}"},
            accept=(400, 422),
        )
        try:
            body = resp.json()
        except ValueError as exc:
            raise FeedDataError(f"prometheus: not JSON for {query!r}") from exc
        if body.get("status") != "success":
            raise FeedDataError(f"prometheus: {body.get('errorType')}: {body.get('error')}")
        data = body.get("data", {})
        if data.get("resultType") != "matrix":
            raise FeedDataError(f"prometheus: expected a matrix, got {data.get('resultType')}")
        out = []
        for series in data.get("result", []):
            pod = series.get("metric", {}).get(family.pod_label)
            if not pod:
                continue
            samples = [(float(t), float(v)) for t, v in series.get("values", [])]
            out.append((pod, samples))
        return out


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')
