"""Kubernetes resource quantities (``500m``, ``2``, ``128Gi``, ``1e3``) as floats, and the total
resources a batch/v1 JobSpec asks for."""

from __future__ import annotations

import re
from typing import Any

from gridaware.api.v1alpha1 import GridAwareJobSpec, Resources

_SUFFIX = {
    "": 1.0,
    "m": 1e-3,
    "u": 1e-6,
    "n": 1e-9,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QTY = re.compile(r"^([+-]?[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]?)$")


def parse(value: Any) -> float:
    """A quantity as a float in base units; raises ValueError with the offending text."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    m = _QTY.match(str(value).strip())
    if not m:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]


def pod_requests(pod_spec: dict[str, Any]) -> Resources:
    """What one pod asks for: sum over containers (requests, else limits), and the largest
    init container if that is more (as the scheduler computes it)."""

    def one(container: dict[str, Any]) -> Resources:
        res = container.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        return Resources(
            cpu=parse(req.get("cpu", 0)),
            memory=parse(req.get("memory", 0)),
            gpu=parse(req.get("nvidia.com/gpu", 0)),
        )

    total = Resources()
    for c in pod_spec.get("containers") or []:
        total = total.plus(one(c))
    for c in pod_spec.get("initContainers") or []:
        init = one(c)
        total = Resources(
            cpu=max(total.cpu, init.cpu),
            memory=max(total.memory, init.memory),
            gpu=max(total.gpu, init.gpu),
        )
    return total


def job_requests(job_spec: dict[str, Any]) -> tuple[Resources, int]:
    """(resources of all pods running at once, parallelism) of a batch/v1 JobSpec."""
    parallelism = int(job_spec.get("parallelism") or 1)
    completions = job_spec.get("completions")
    if completions is not None:
        parallelism = min(parallelism, int(completions))
    per_pod = pod_requests(((job_spec.get("template") or {}).get("spec")) or {})
    return Resources(
        cpu=per_pod.cpu * parallelism,
        memory=per_pod.memory * parallelism,
        gpu=per_pod.gpu * parallelism,
    ), parallelism


def jobset_requests(jobset_spec: dict[str, Any]) -> tuple[Resources, int]:
    """(resources of all pods running at once, pods) of a JobSet: every replicated job's
    replicas times its Job's parallelism."""
    cpu = memory = gpu = 0.0
    pods = 0
    for rj in jobset_spec.get("replicatedJobs") or []:
        replicas = int(rj.get("replicas") or 1)
        r, n = job_requests(((rj.get("template") or {}).get("spec")) or {})
        cpu, memory, gpu = (
            cpu + r.cpu * replicas,
            memory + r.memory * replicas,
            gpu + r.gpu * replicas,
        )
        pods += n * replicas
    return Resources(cpu=cpu, memory=memory, gpu=gpu), pods


def workload_requests(spec: GridAwareJobSpec) -> tuple[Resources, int]:
    """What a GridAwareJob's workload (a Job or a JobSet) asks for at once, and its pods."""
    if spec.job_set is not None:
        return jobset_requests(spec.job_set)
    return job_requests(spec.template or {})
