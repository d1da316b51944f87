"""JobSet workloads through the operator on the lab (every member runs the real JobSet
controller): placed whole where the grid is greenest, a suspended JobSet not taken for a lost
one, deleted whole."""

from __future__ import annotations

from typing import Any

import pytest

from gridaware.api.v1alpha1 import job_label_value
from tests.conftest import Lab, Operator, kubectl, wait_for
from tests.e2e.test_operator import apply, status

pytestmark = pytest.mark.slow


def pods(lab: Lab, cluster: str, namespace: str, name: str) -> list[str]:
    out = kubectl(
        lab,
        "-n",
        namespace,
        "get",
        "pods",
        "-l",
        f"gridaware.dev/job={job_label_value(namespace, name)}",
        "-o",
        "jsonpath={.items[*].status.phase}",
        context=cluster,
    )
    return out.stdout.split()


def training(name: str, run: str, **spec: Any) -> dict[str, Any]:
    def job(cpu: str, replicas: int) -> dict[str, Any]:
        return {
            "replicas": replicas,
            "template": {
                "spec": {
                    "parallelism": 1,
                    "completions": 1,
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {"annotations": {"lab.gridaware.dev/complete-after": run}},
                        "spec": {
                            "restartPolicy": "Never",
                            "securityContext": {
                                "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"},
                            },
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "example/train:1",
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]},
                                    },
                                    "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}},
                                }
                            ],
                        },
                    },
                }
            },
        }

    return {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridAwareJob",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "jobSet": {
                "replicatedJobs": [
                    {"name": "leader", **job("1", 1)},
                    {"name": "workers", **job("2", 2)},
                ]
            },
        },
    }


def test_a_jobset_runs_whole_in_the_greenest_cluster(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    apply(lab, namespace, training("ddp", "5s"))
    wait_for(lambda: status(lab, namespace, "ddp").get("phase") == "Succeeded", "success", 120)
    st = status(lab, namespace, "ddp")
    assert st["cluster"] == "eu-central"
    listed = kubectl(lab, "-n", namespace, "get", "jobsets", "-o", "name", context="eu-central")
    assert listed.stdout.strip() == "jobset.jobset.x-k8s.io/ddp"


def test_a_suspended_jobset_is_not_taken_for_lost_and_is_deleted_whole(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    apply(lab, namespace, training("long", "10m", migration={"policy": "Checkpoint"}))
    wait_for(lambda: status(lab, namespace, "long").get("phase") == "Running", "running", 120)
    wait_for(lambda: len(pods(lab, "eu-central", namespace, "long")) == 3, "three pods")
    kubectl(
        lab,
        "-n",
        namespace,
        "patch",
        "jobset",
        "long",
        "--type=merge",
        "-p",
        '{"spec":{"suspend":true}}',
        context="eu-central",
    )
    wait_for(lambda: pods(lab, "eu-central", namespace, "long") == [], "pods stopped", 90)
    assert status(lab, namespace, "long")["phase"] == "Running"  # no Job lost, no copy made
    kubectl(
        lab,
        "-n",
        namespace,
        "patch",
        "jobset",
        "long",
        "--type=merge",
        "-p",
        '{"spec":{"suspend":false}}',
        context="eu-central",
    )
    wait_for(lambda: len(pods(lab, "eu-central", namespace, "long")) == 3, "pods again", 90)
    kubectl(lab, "-n", namespace, "delete", "gaj", "long", "--wait=true", "--timeout=60s")
    wait_for(
        lambda: (
            kubectl(
                lab, "-n", namespace, "get", "jobsets", "-o", "name", context="eu-central"
            ).stdout.strip()
            == ""
        ),
        "the JobSet deleted",
        90,
    )
