"""The control loop on the lab: the ways a job could be lost, duplicated or stalled, each
reproduced against the real API servers (their in-memory twins are in
tests/unit/test_services.py), and HA with two operator processes under Kopf peering."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gridaware.k8s import hub
from gridaware.lab.operator_process import OperatorProcess, static_feeds
from tests.conftest import REPO, STATIC_SIGNALS, Lab, Operator, cluster_ready, kubectl, wait_for
from tests.e2e.test_operator import apply, condition, gaj, member_jobs, status

pytestmark = pytest.mark.slow


def events(lab: Lab, namespace: str) -> str:
    return kubectl(lab, "-n", namespace, "get", "events", "-o", "json").stdout


@contextlib.contextmanager
def frozen(lab: Lab, cluster: str) -> Iterator[None]:
    """The member's API server stops answering (SIGSTOP) until the block ends."""
    apiserver = next(
        p for p in lab.state.cluster(cluster).processes if p.component == "kube-apiserver"
    )
    os.kill(apiserver.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(apiserver.pid, signal.SIGCONT)


@pytest.fixture
def own(lab: Lab, operator: Operator, tmp_path: Path) -> Iterator[list[OperatorProcess]]:
    """Operators of the test's own (the session operator pauses meanwhile)."""
    started: list[OperatorProcess] = []
    operator.stop()
    try:
        yield started
    finally:
        for op in started:
            op.kill()
        operator.start()
        for m in lab.members:
            wait_for(lambda m=m: cluster_ready(lab, m), f"{m} ready", timeout=90)


def start(
    lab: Lab,
    own: list[OperatorProcess],
    tmp: Path,
    signals: dict[str, dict[str, Any]] | None = None,
    *args: str,
    name: str = "op",
) -> OperatorProcess:
    op = OperatorProcess(
        lab.state,
        tmp,
        static_feeds(signals or STATIC_SIGNALS),
        ["--probe-interval", "1", "--retry-delay", "1", *args],
        name=name,
    )
    op.start()
    own.append(op)
    return op


# --- 1. an over-committed member ----------------------------------------------------------


def test_an_overcommitted_member_does_not_stop_placement(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hog", "namespace": namespace},
        "spec": {
            "containers": [{"name": "c", "image": "x", "resources": {"requests": {"cpu": "20"}}}]
        },
    }
    kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(pod), context="eu-central")
    wait_for(
        lambda: (
            "Running"
            in kubectl(lab, "-n", namespace, "get", "pod", "hog", context="eu-central").stdout
        ),
        "the hog pod to run",
    )
    nodes = kubectl(lab, "get", "nodes", "-o", "name", context="eu-central").stdout.split()
    try:
        for node in nodes:  # cordoned nodes still hold the pod: requests exceed allocatable
            kubectl(lab, "cordon", node, context="eu-central")
        wait_for(
            lambda: (
                (hub.get_cluster(lab.client("hub"), "eu-central") or {})
                .get("status", {})
                .get("free", {})
                .get("cpu", 1)
                == 0
            ),
            "eu-central to report no free capacity",
        )
        apply(lab, namespace, gaj("after-overcommit"))
        wait_for(
            lambda: status(lab, namespace, "after-overcommit").get("cluster") == "us-east",
            "placement in the next greenest cluster",
        )
        assert operator.alive()
    finally:
        for node in nodes:
            kubectl(lab, "uncordon", node, context="eu-central")


# --- 2. a migration whose target holds a same-name Job -------------------------------------


def test_a_taken_migration_target_sends_the_job_home(
    lab: Lab, own: list[OperatorProcess], namespace: str, tmp_path: Path
) -> None:
    first = start(lab, own, tmp_path, None, "--speedup", "60", name="before")
    for m in lab.members:
        wait_for(lambda m=m: cluster_ready(lab, m), f"{m} ready", timeout=60)
    job = gaj(
        "train",
        run="10m",
        migration={"policy": "Checkpoint", "minDwellSeconds": 0, "overheadSeconds": 60},
        schedule={"expectedDurationSeconds": 36000},
    )
    apply(lab, namespace, job)
    wait_for(lambda: status(lab, namespace, "train").get("phase") == "Running", "running")
    assert status(lab, namespace, "train")["cluster"] == "eu-central"
    foreign = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "train", "namespace": namespace},
        "spec": {
            "template": {
                "metadata": {"annotations": {"lab.gridaware.dev/complete-after": "10m"}},
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]},
            }
        },
    }
    kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(foreign), context="us-west")
    first.stop()
    greener_west = {**STATIC_SIGNALS, "US-CAL-CISO": {"carbon": 10, "price": 80, "currency": "USD"}}
    start(lab, own, tmp_path, greener_west, "--speedup", "60", name="after")
    wait_for(
        lambda: "MigrationTargetTaken" in events(lab, namespace), "the move to be refused", 120
    )
    wait_for(
        lambda: (
            status(lab, namespace, "train").get("phase") == "Running"
            and not status(lab, namespace, "train").get("migration")
        ),
        "running again at home",
        90,
    )
    st = status(lab, namespace, "train")
    assert st["cluster"] == "eu-central"
    assert member_jobs(lab, f"{namespace}.train") == {"eu-central": ["train"]}
    kept = kubectl(lab, "-n", namespace, "get", "job", "train", "-o", "json", context="us-west")
    assert "gridaware.dev/owner-uid" not in kept.stdout  # the foreign Job is untouched


# --- 4. a member Job deleted out of band ----------------------------------------------------


def test_a_member_job_deleted_out_of_band_is_placed_again(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    apply(lab, namespace, gaj("victim", run="10m"))
    wait_for(lambda: status(lab, namespace, "victim").get("phase") == "Running", "running")
    kubectl(lab, "-n", namespace, "delete", "job", "victim", context="eu-central")
    wait_for(lambda: "MemberJobLost" in events(lab, namespace), "the loss to be noticed")
    wait_for(
        lambda: status(lab, namespace, "victim").get("phase") == "Running",
        "the job running again",
        90,
    )
    st = status(lab, namespace, "victim")
    assert st["runSegments"][0]["cluster"] == "eu-central"
    assert member_jobs(lab, f"{namespace}.victim") == {"eu-central": ["victim"]}


# --- 5. a restart right after recording a placement -----------------------------------------


def test_a_recorded_placement_waits_for_its_frozen_cluster(
    lab: Lab, own: list[OperatorProcess], namespace: str, tmp_path: Path
) -> None:
    apply(lab, namespace, gaj("intent", run="5s"))
    client = lab.client("hub")
    # what an operator killed between recording and creating leaves behind
    hub.patch_job_status(
        client,
        namespace,
        "intent",
        {
            "phase": "Scheduled",
            "cluster": "eu-central",
            "memberJob": {"cluster": "eu-central", "namespace": namespace, "name": "intent"},
        },
    )
    with frozen(lab, "eu-central"):
        start(lab, own, tmp_path)
        time.sleep(15)
        for other in ("us-west", "us-east"):  # never a copy elsewhere
            listed = kubectl(lab, "-n", namespace, "get", "jobs", "-o", "name", context=other)
            assert listed.stdout.strip() == ""
        assert status(lab, namespace, "intent")["cluster"] == "eu-central"
    wait_for(
        lambda: status(lab, namespace, "intent").get("phase") == "Succeeded",
        "the job to run in eu-central once it answers",
        120,
    )
    assert status(lab, namespace, "intent")["cluster"] == "eu-central"


# --- 12. credentials and cluster removal ---------------------------------------------------


def _secret(lab: Lab, name: str) -> dict[str, Any]:
    out = kubectl(lab, "-n", "gridaware-system", "get", "secret", name, "-o", "json").stdout
    return dict(json.loads(out))


def test_a_rotated_credential_is_picked_up_without_a_restart(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    original = _secret(lab, "eu-central-kubeconfig")
    config = yaml.safe_load(base64.b64decode(original["data"]["kubeconfig"]))
    other = yaml.safe_load(
        base64.b64decode(_secret(lab, "us-west-kubeconfig")["data"]["kubeconfig"])
    )
    config["users"] = other["users"]  # a credential eu-central does not accept
    config["contexts"][0]["context"]["user"] = other["users"][0]["name"]
    broken = {
        **original,
        "data": {"kubeconfig": base64.b64encode(yaml.safe_dump(config).encode()).decode()},
    }
    broken["metadata"] = {"name": "eu-central-kubeconfig", "namespace": "gridaware-system"}
    try:
        kubectl(lab, "apply", "-f", "-", stdin=json.dumps(broken))
        wait_for(lambda: not cluster_ready(lab, "eu-central"), "eu-central to refuse us", 120)
    finally:
        restored = {
            **original,
            "metadata": {"name": "eu-central-kubeconfig", "namespace": "gridaware-system"},
        }
        kubectl(lab, "apply", "-f", "-", stdin=json.dumps(restored))
    wait_for(lambda: cluster_ready(lab, "eu-central"), "eu-central ready again", 120)
    assert operator.alive()


def test_deleting_a_gridcluster_waits_for_its_jobs(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    extra = {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridCluster",
        "metadata": {"name": "us-west-b"},
        "spec": {
            "region": "us-west-b",
            "gridZone": "US-CAL-CISO",
            "kubeconfigSecretRef": {"namespace": "gridaware-system", "name": "us-west-kubeconfig"},
        },
    }
    kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(extra))
    try:
        wait_for(lambda: cluster_ready(lab, "us-west-b"), "us-west-b ready", 60)
        apply(lab, namespace, gaj("pinned", run="20s", placement={"clusters": ["us-west-b"]}))
        wait_for(lambda: status(lab, namespace, "pinned").get("phase") == "Running", "running")
        kubectl(lab, "delete", "gridcluster", "us-west-b", "--wait=false")
        time.sleep(3)
        assert hub.get_cluster(lab.client("hub"), "us-west-b") is not None, "deleted too early"
        wait_for(
            lambda: (
                condition(
                    (hub.get_cluster(lab.client("hub"), "us-west-b") or {}).get("status") or {},
                    "Ready",
                ).get("reason")
                == "Draining"
            ),
            "us-west-b draining",
        )
        wait_for(lambda: hub.get_cluster(lab.client("hub"), "us-west-b") is None, "removal", 120)
        assert status(lab, namespace, "pinned")["phase"] == "Succeeded"
    finally:
        kubectl(lab, "delete", "gridcluster", "us-west-b", "--ignore-not-found", "--wait=false")


# --- 13. HA: two replicas, one active --------------------------------------------------------


def role(op: OperatorProcess) -> str | None:
    """What the replica last said it is: active or standby."""
    lines = [ln for ln in op.log.read_text().splitlines() if " replica (peering " in ln]
    return lines[-1].split(" replica (peering ")[0].rsplit(" ", 1)[-1] if lines else None


def test_two_replicas_one_active_and_a_takeover(
    lab: Lab, own: list[OperatorProcess], namespace: str, tmp_path: Path
) -> None:
    crd = REPO / "helm" / "gridaware" / "crds" / "clusterkopfpeerings.kopf.dev.yaml"
    kubectl(lab, "apply", "-f", str(crd))
    peering = {
        "apiVersion": "kopf.dev/v1",
        "kind": "ClusterKopfPeering",
        "metadata": {"name": "gridaware-e2e"},
    }
    wait_for(
        lambda: (
            kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(peering), check=False).returncode
            == 0
        ),
        "the peering CRD",
    )
    a = start(
        lab, own, tmp_path, None, "--peering", "gridaware-e2e", "--priority", "random", name="a"
    )
    b = start(
        lab, own, tmp_path, None, "--peering", "gridaware-e2e", "--priority", "random", name="b"
    )
    wait_for(lambda: {role(a), role(b)} == {"active", "standby"}, "one active, one standby", 60)
    time.sleep(5)  # both have seen each other: still one of each
    assert {role(a), role(b)} == {"active", "standby"}
    active, standby = (a, b) if role(a) == "active" else (b, a)
    apply(lab, namespace, gaj("first", run="3s"))
    wait_for(lambda: status(lab, namespace, "first").get("phase") == "Succeeded", "first job", 90)
    assert f"placed {namespace}/first" in active.log.read_text()
    assert f"placed {namespace}/first" not in standby.log.read_text()
    active.kill()
    apply(lab, namespace, gaj("second", run="3s"))
    wait_for(
        lambda: status(lab, namespace, "second").get("phase") == "Succeeded",
        "the standby to take over",
        180,
    )
    assert f"placed {namespace}/second" in standby.log.read_text()
    assert member_jobs(lab, f"{namespace}.second") == {"eu-central": ["second"]}
