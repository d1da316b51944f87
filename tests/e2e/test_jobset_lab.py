"""The real JobSet controller in every lab member: JobSets become Jobs and pods on KWOK nodes,
complete, are defaulted and validated by the controller's own webhooks, and ``suspend`` stops
their pods (what the operator relies on to place, pause and move JobSet workloads)."""

from __future__ import annotations

import json
from typing import Any

import kubernetes.client
import pytest
from kubernetes.client.exceptions import ApiException

from tests.conftest import Lab, wait_for

pytestmark = pytest.mark.slow

GROUP, VERSION, PLURAL = "jobset.x-k8s.io", "v1alpha2", "jobsets"


def _jobset(name: str, complete_after: str, **spec: Any) -> dict[str, Any]:
    def replicated(rname: str, replicas: int, cpu: str) -> dict[str, Any]:
        return {
            "name": rname,
            "replicas": replicas,
            "template": {
                "spec": {
                    "parallelism": 1,
                    "completions": 1,
                    "backoffLimit": 0,
                    "template": {
                        "metadata": {
                            "annotations": {"lab.gridaware.dev/complete-after": complete_after}
                        },
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [
                                {
                                    "name": "main",
                                    "image": "train:latest",
                                    "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}},
                                }
                            ],
                        },
                    },
                }
            },
        }

    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "JobSet",
        "metadata": {"name": name},
        "spec": {
            "replicatedJobs": [replicated("driver", 1, "1"), replicated("workers", 2, "2")],
            **spec,
        },
    }


class _JobSets:
    def __init__(self, client: kubernetes.client.ApiClient, namespace: str) -> None:
        self.api = kubernetes.client.CustomObjectsApi(client)
        self.core = kubernetes.client.CoreV1Api(client)
        self.ns = namespace

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        out = self.api.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)
        assert isinstance(out, dict)
        return out

    def get(self, name: str) -> dict[str, Any]:
        out = self.api.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)
        assert isinstance(out, dict)
        return out

    def patch(self, name: str, spec: dict[str, Any]) -> None:
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec}
        )

    def condition(self, name: str, kind: str) -> bool:
        conds = self.get(name).get("status", {}).get("conditions", [])
        return any(c["type"] == kind and c["status"] == "True" for c in conds)

    def pods(self, name: str, phase: str | None = None) -> list[kubernetes.client.V1Pod]:
        selector = f"jobset.sigs.k8s.io/jobset-name={name}"
        pods = self.core.list_namespaced_pod(self.ns, label_selector=selector).items
        return [p for p in pods if phase is None or (p.status and p.status.phase == phase)]


def test_jobset_with_two_replicated_jobs_runs_on_kwok_nodes_and_completes(
    lab: Lab, namespace: str
) -> None:
    member = "us-west"
    js = _JobSets(lab.client(member), namespace)
    created = js.create(_jobset("train", "6s"))
    # defaulted by the controller's mutating webhook (not by the CRD schema)
    assert created["spec"]["successPolicy"]["operator"] == "All"
    assert created["spec"]["network"]["enableDNSHostnames"] is True

    wait_for(lambda: len(js.pods("train", "Running")) == 3, "3 Running pods of the JobSet")
    running = js.pods("train", "Running")
    assert {p.spec.node_name for p in running} <= {f"{member}-node-0", f"{member}-node-1"}
    jobs = {p.metadata.labels["jobset.sigs.k8s.io/replicatedjob-name"] for p in running}
    assert jobs == {"driver", "workers"}
    wait_for(lambda: js.condition("train", "Completed"), "the JobSet to complete", timeout=90)
    assert js.pods("train", "Running") == []


def test_jobset_validation_webhook_rejects_unknown_replicated_job(lab: Lab, namespace: str) -> None:
    js = _JobSets(lab.client("eu-central"), namespace)
    bad = _jobset("bad", "5s", successPolicy={"operator": "All", "targetReplicatedJobs": ["nope"]})
    with pytest.raises(ApiException) as err:
        js.create(bad)
    assert err.value.status == 403  # a webhook denial, not a schema error (422)
    message = json.loads(err.value.body)["message"]
    assert 'admission webhook "vjobset.kb.io" denied' in message
    assert "does not appear in .spec.ReplicatedJobs" in message


def test_suspend_stops_jobset_pods_and_resume_restarts_them(lab: Lab, namespace: str) -> None:
    js = _JobSets(lab.client("us-east"), namespace)
    js.create(_jobset("long", "10m"))
    wait_for(lambda: len(js.pods("long", "Running")) == 3, "3 Running pods")

    js.patch("long", {"suspend": True})
    wait_for(lambda: js.pods("long") == [], "the suspended JobSet's pods to go", timeout=90)
    wait_for(lambda: js.condition("long", "Suspended"), "condition Suspended")
    assert not js.condition("long", "Completed")

    js.patch("long", {"suspend": False})
    wait_for(lambda: len(js.pods("long", "Running")) == 3, "3 Running pods after resume")
