"""GridAwareJobs the lab can run: one container under the restricted Pod Security profile
(what the chart's admission policy enforces), whose life the lab's KWOK stages play from pod
annotations: how long it runs, and how long it takes to checkpoint when told to stop.

Benchmarks build their jobs here, so that each says only what it varies."""

from __future__ import annotations

import copy
from typing import Any

from gridaware.api.v1alpha1 import GROUP, VERSION

RESTRICTED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def grid_aware_job(
    name: str,
    namespace: str,
    *,
    runs_for: str = "2h",
    checkpoint_takes: str | None = None,
    cpu: str = "100m",
    memory: str = "128Mi",
    grace_seconds: int | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A GridAwareJob body; ``spec`` adds top-level spec fields (``schedule``, ``migration``,
    ``flexibility``, ``energy`` ...). ``runs_for`` and ``checkpoint_takes`` are durations
    such as ``30m`` or ``1s``; ``grace_seconds`` is the pods' termination grace period."""
    annotations = {"lab.gridaware.dev/complete-after": runs_for}
    if checkpoint_takes is not None:
        annotations["lab.gridaware.dev/shutdown-after"] = checkpoint_takes
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": copy.deepcopy(RESTRICTED_POD),
        "containers": [
            {
                "name": "main",
                "image": "train:1",
                "securityContext": copy.deepcopy(RESTRICTED_CONTAINER),
                "resources": {"requests": {"cpu": cpu, "memory": memory}},
            }
        ],
    }
    if grace_seconds is not None:
        pod["terminationGracePeriodSeconds"] = grace_seconds
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GridAwareJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            **spec,
            "template": {"template": {"metadata": {"annotations": annotations}, "spec": pod}},
        },
    }
