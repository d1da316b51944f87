"""The operator on the lab: placement, status, deletion, restarts, unreachable members.

Signals are a static table (eu-central greenest at 100 g/kWh, then us-east 200, us-west 300)
so every expected placement is known in advance.
"""

from __future__ import annotations

import json
import os
import signal
import time
from typing import Any

import pytest
import yaml

from gridaware.k8s import hub
from tests.conftest import Lab, Operator, kubectl, wait_for

pytestmark = pytest.mark.slow


RESTRICTED_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
}


def gaj(name: str, *, gpu: int = 0, cpu: str = "1", run: str = "3s", **spec: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {"requests": {"cpu": cpu, "memory": "1Gi"}}
    if gpu:
        resources["limits"] = {"nvidia.com/gpu": str(gpu)}
    return {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridAwareJob",
        "metadata": {"name": name},
        "spec": {
            **spec,
            "template": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": {"lab.gridaware.dev/complete-after": run}},
                    "spec": {
                        "restartPolicy": "Never",
                        # Pod Security "restricted", which the chart's admission policy enforces
                        "securityContext": RESTRICTED_POD_SECURITY,
                        "containers": [
                            {
                                "name": "main",
                                "image": "example/train:1",
                                "resources": resources,
                                "securityContext": RESTRICTED_CONTAINER_SECURITY,
                            }
                        ],
                    },
                },
            },
        },
    }


def apply(lab: Lab, namespace: str, *docs: dict[str, Any]) -> None:
    kubectl(lab, "-n", namespace, "apply", "-f", "-", stdin=yaml.safe_dump_all(docs))


def status(lab: Lab, namespace: str, name: str) -> dict[str, Any]:
    body = hub.get_job(lab.client("hub"), namespace, name)
    return dict((body or {}).get("status") or {})


def condition(st: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in st.get("conditions", []) if c["type"] == type_), {})


def member_jobs(lab: Lab, owner: str) -> dict[str, list[str]]:
    """Cluster -> names of member Jobs labelled for ``owner`` (namespace.name)."""
    out = {}
    for member in lab.members:
        res = kubectl(
            lab,
            "get",
            "jobs",
            "-A",
            "-l",
            f"gridaware.dev/job={owner}",
            "-o",
            "jsonpath={.items[*].metadata.name}",
            context=member,
        )
        names = res.stdout.split()
        if names:
            out[member] = names
    return out


def test_places_in_the_greenest_cluster_and_follows_the_job(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    apply(lab, namespace, gaj("train", gpu=1))
    wait_for(
        lambda: status(lab, namespace, "train").get("phase") == "Succeeded",
        "the job to succeed",
        timeout=90,
    )
    st = status(lab, namespace, "train")
    assert (st["cluster"], st["region"], st["zone"]) == ("eu-central", "eu-central", "DE-LU")
    assert st["carbonAtPlacement"] == 100
    assert st["memberJob"]["cluster"] == "eu-central" and st["memberJob"]["uid"]
    assert condition(st, "Scheduled")["reason"] == "Placed"
    assert condition(st, "Succeeded")["status"] == "True"
    assert st["startTime"] <= st["completionTime"]
    candidates = {c["cluster"]: c for c in st["placements"][0]["candidates"]}
    assert set(candidates) == set(lab.members)
    assert candidates["eu-central"]["score"] < candidates["us-east"]["score"]
    assert member_jobs(lab, f"{namespace}.train") == {"eu-central": ["train"]}
    events = kubectl(lab, "-n", namespace, "get", "events", "-o", "json").stdout
    assert "placed in eu-central" in events
    printed = kubectl(lab, "-n", namespace, "get", "gaj", "train").stdout
    assert "eu-central" in printed and "Succeeded" in printed


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        pytest.param(
            {"placement": {"clusters": ["us-west", "us-east"]}}, "us-east", id="allowed-clusters"
        ),
        pytest.param(
            {"placement": {"excludedZones": ["DE-LU", "US-MIDA-PJM"]}},
            "us-west",
            id="excluded-zones",
        ),
        pytest.param(
            {
                "placement": {
                    "clusterSelector": {"matchLabels": {"topology.kubernetes.io/region": "us-west"}}
                }
            },
            "us-west",
            id="label-selector",
        ),
        pytest.param(
            {"objective": {"carbonWeight": 0, "priceWeight": 1}}, "us-east", id="cheapest"
        ),
    ],
)
def test_constraints_and_objectives(
    lab: Lab, operator: Operator, namespace: str, spec: dict[str, Any], expected: str
) -> None:
    apply(lab, namespace, gaj("c", **spec))
    wait_for(lambda: status(lab, namespace, "c").get("cluster"), "placement")
    assert status(lab, namespace, "c")["cluster"] == expected


def test_capacity_is_a_hard_constraint(lab: Lab, operator: Operator, namespace: str) -> None:
    # each member has 2 nodes x 4 GPUs: a 6-GPU job fills eu-central, the next must go elsewhere
    apply(lab, namespace, gaj("big-1", gpu=6, run="60s"))
    wait_for(lambda: status(lab, namespace, "big-1").get("cluster"), "first placement")
    apply(lab, namespace, gaj("big-2", gpu=6, run="60s"))
    wait_for(lambda: status(lab, namespace, "big-2").get("cluster"), "second placement")
    assert status(lab, namespace, "big-1")["cluster"] == "eu-central"
    assert status(lab, namespace, "big-2")["cluster"] == "us-east"
    second = {
        c["cluster"]: c for c in status(lab, namespace, "big-2")["placements"][-1]["candidates"]
    }
    assert "capacity" in second["eu-central"]["reason"]


def test_a_job_that_fits_nowhere_says_why(lab: Lab, operator: Operator, namespace: str) -> None:
    apply(lab, namespace, gaj("huge", gpu=64))
    wait_for(
        lambda: condition(status(lab, namespace, "huge"), "Scheduled").get("reason"),
        "a Scheduled condition",
    )
    st = status(lab, namespace, "huge")
    cond = condition(st, "Scheduled")
    assert (cond["status"], cond["reason"]) == ("False", "NoEligibleCluster")
    assert "more than the cluster has in total" in cond["message"]
    assert st["phase"] == "Pending" and "cluster" not in st
    events = kubectl(lab, "-n", namespace, "get", "events", "-o", "json").stdout
    assert "NoEligibleCluster" in events
    assert member_jobs(lab, f"{namespace}.huge") == {}


def test_deletion_removes_the_member_job(lab: Lab, operator: Operator, namespace: str) -> None:
    apply(lab, namespace, gaj("short-lived", run="1h"))
    wait_for(lambda: status(lab, namespace, "short-lived").get("phase") == "Running", "running")
    assert member_jobs(lab, f"{namespace}.short-lived") == {"eu-central": ["short-lived"]}
    kubectl(lab, "-n", namespace, "delete", "gaj", "short-lived", "--wait=true", "--timeout=60s")
    wait_for(lambda: member_jobs(lab, f"{namespace}.short-lived") == {}, "member Job deleted")
    assert hub.get_job(lab.client("hub"), namespace, "short-lived") is None


def test_spec_change_of_a_placed_job_is_refused_with_a_condition(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    apply(lab, namespace, gaj("fixed", run="1h"))
    wait_for(lambda: status(lab, namespace, "fixed").get("phase") == "Running", "running")
    kubectl(
        lab,
        "-n",
        namespace,
        "patch",
        "gaj",
        "fixed",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"placement": {"clusters": ["us-west"]}}}),
    )
    wait_for(lambda: condition(status(lab, namespace, "fixed"), "SpecApplied"), "condition")
    cond = condition(status(lab, namespace, "fixed"), "SpecApplied")
    assert (cond["status"], cond["reason"]) == ("False", "SpecChangeRefused")
    assert "spec.placement cannot change" in cond["message"]
    assert cond["observedGeneration"] == 2
    assert status(lab, namespace, "fixed")["cluster"] == "eu-central"


def test_restart_mid_way_reconciles_without_duplicates(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    names = [f"r{i}" for i in range(12)]
    operator.kill()
    try:
        apply(lab, namespace, *[gaj(n, run="2s") for n in names[:6]])
        operator.start()
        time.sleep(1.0)  # let it start placing, then kill it mid-way
        apply(lab, namespace, *[gaj(n, run="2s") for n in names[6:]])
        time.sleep(0.5)
        operator.kill()
    finally:
        operator.start()
    for n in names:
        wait_for(
            lambda n=n: status(lab, namespace, n).get("phase") == "Succeeded",
            f"{n} to succeed",
            timeout=120,
        )
    for n in names:
        copies = member_jobs(lab, f"{namespace}.{n}")
        assert sum(len(v) for v in copies.values()) == 1, f"{n}: {copies}"
        assert list(copies) == [status(lab, namespace, n)["cluster"]]


def test_unreachable_member_is_reported_and_its_job_deleted_when_back(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    apply(lab, namespace, gaj("stuck", run="1h", placement={"clusters": ["us-east"]}))
    wait_for(lambda: status(lab, namespace, "stuck").get("phase") == "Running", "running")
    apiserver = next(
        p for p in lab.state.cluster("us-east").processes if p.component == "kube-apiserver"
    )
    os.kill(apiserver.pid, signal.SIGSTOP)
    try:
        wait_for(
            lambda: (
                condition(status(lab, namespace, "stuck"), "ClusterReachable").get("status")
                == "False"
            ),
            "the job to be marked",
            timeout=90,
        )
        reach = kubectl(
            lab,
            "get",
            "gridcluster",
            "us-east",
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Reachable")].reason}',
        ).stdout
        assert reach == "ClusterUnreachable"
        events = kubectl(lab, "-n", namespace, "get", "events", "-o", "json").stdout
        assert "ClusterUnreachable" in events
        # no finalizer: the hub object goes at once; the member Job once us-east answers
        kubectl(lab, "-n", namespace, "delete", "gaj", "stuck", "--wait=true", "--timeout=30s")
    finally:
        os.kill(apiserver.pid, signal.SIGCONT)
    wait_for(
        lambda: member_jobs(lab, f"{namespace}.stuck") == {},
        "the member Job deleted once the member is back",
        timeout=90,
    )
    wait_for(lambda: cluster_reachable(lab, "us-east"), "us-east reachable again", timeout=60)


def cluster_reachable(lab: Lab, name: str) -> bool:
    out = kubectl(
        lab,
        "get",
        "gridcluster",
        name,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Reachable")].status}',
    )
    return out.stdout == "True"


def test_member_rejection_is_reported_and_a_fixed_spec_is_placed(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    bad = gaj("gpu-request-only")
    bad["spec"]["template"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"nvidia.com/gpu": "1"}
    }  # Kubernetes needs GPU limits, not only requests
    apply(lab, namespace, bad)
    wait_for(
        lambda: condition(status(lab, namespace, "gpu-request-only"), "Scheduled"),
        "a Scheduled condition",
    )
    cond = condition(status(lab, namespace, "gpu-request-only"), "Scheduled")
    assert (cond["status"], cond["reason"]) == ("False", "InvalidSpec")
    assert "refused the Job" in cond["message"] and "Limit must be set" in cond["message"]
    assert member_jobs(lab, f"{namespace}.gpu-request-only") == {}
    fixed = gaj("gpu-request-only", gpu=1)
    apply(lab, namespace, fixed)
    wait_for(lambda: status(lab, namespace, "gpu-request-only").get("cluster"), "placement")
    assert condition(status(lab, namespace, "gpu-request-only"), "Scheduled")["reason"] == "Placed"
