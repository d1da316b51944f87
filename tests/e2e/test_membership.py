"""Member-side least privilege on the lab: the hub holds only the join token (no admin
certificates), and with that token the operator can run Jobs where it is allowed and nothing
else: no Secrets, no Pods created directly, no system namespaces, no namespaces outside an
explicit list; a rotation revokes the old token while the operator keeps working.

The session operator (tests/conftest.py) is registered by ``gridaware lab register``, which
uses ``member join``, so every other e2e test (place, defer, migrate, delete) already runs the
operator with exactly this role."""

from __future__ import annotations

import base64
import dataclasses
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes.client
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from gridaware.k8s import clients, membership
from gridaware.lab import register
from tests.conftest import Lab, Operator, cluster_ready, kubectl, wait_for

pytestmark = pytest.mark.slow

JOB_BODY: dict[str, Any] = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "probe"},
    "spec": {
        "template": {
            "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "x:1"}]}
        }
    },
}
JOB = kubernetes.client.V1Job.model_validate(JOB_BODY)
POD = kubernetes.client.V1Pod.model_validate(
    {"metadata": {"name": "direct"}, "spec": {"containers": [{"name": "m", "image": "x:1"}]}}
)


def ns_body(name: str) -> kubernetes.client.V1Namespace:
    return kubernetes.client.V1Namespace.model_validate({"metadata": {"name": name}})


def hub_kubeconfig(lab: Lab, member: str) -> dict[str, Any]:
    """The kubeconfig the hub stores for ``member`` (what the operator uses)."""
    out = kubectl(
        lab, "-n", "gridaware-system", "get", "secret", f"{member}-kubeconfig", "-o", "yaml"
    ).stdout
    data = yaml.safe_load(out)["data"]["kubeconfig"]
    return dict(yaml.safe_load(base64.b64decode(data)))


@pytest.fixture
def operator_client(lab: Lab, operator: Operator) -> Iterator[kubernetes.client.ApiClient]:
    """The operator's identity in the first member, from the hub's Secret."""
    client = clients.from_kubeconfig(hub_kubeconfig(lab, lab.members[0]))
    yield client
    client.close()  # type: ignore[no-untyped-call]


def status_of(call: Callable[[], object]) -> int:
    """The HTTP status a call ends with (200 when it succeeds)."""
    try:
        call()
    except ApiException as exc:
        return int(exc.status or 0)
    return 200


def message_of(call: Callable[[], object]) -> str:
    with pytest.raises(ApiException) as err:
        call()
    return str(err.value.body)


def test_the_hub_stores_a_token_not_an_admin_credential(lab: Lab, operator: Operator) -> None:
    for member in lab.members:
        config = hub_kubeconfig(lab, member)
        [user] = config["users"]
        assert set(user["user"]) == {"token"}, f"{member}: only a token, no certificates"
        assert clients.unsafe_fields(config) == []
        claims = user["user"]["token"].split(".")[1]
        subject = yaml.safe_load(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
        assert subject["sub"] == membership.USERNAME


def test_the_operator_identity_runs_jobs_and_nothing_else(
    lab: Lab, operator_client: kubernetes.client.ApiClient, namespace: str
) -> None:
    batch = kubernetes.client.BatchV1Api(operator_client)
    core = kubernetes.client.CoreV1Api(operator_client)
    # what the operator needs
    batch.create_namespaced_job(namespace, JOB)
    batch.patch_namespaced_job("probe", namespace, {"spec": {"suspend": True}})
    assert [j.metadata.name for j in batch.list_job_for_all_namespaces().items if j.metadata]
    assert core.list_node().items
    core.list_pod_for_all_namespaces(field_selector="status.phase!=Succeeded")
    batch.delete_namespaced_job("probe", namespace, propagation_policy="Background")
    # what it must not do
    denied = {
        "read a Secret in its namespace": lambda: core.list_namespaced_secret(namespace),
        "read its own token": lambda: core.list_namespaced_secret("gridaware-system"),
        "read Secrets anywhere": core.list_secret_for_all_namespaces,
        "create a Pod directly": lambda: core.create_namespaced_pod(namespace, POD),
        "bind cluster-admin to itself": lambda: kubernetes.client.RbacAuthorizationV1Api(
            operator_client
        ).create_cluster_role_binding(
            kubernetes.client.V1ClusterRoleBinding.model_validate(
                {
                    "metadata": {"name": "escalate"},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": "cluster-admin",
                    },
                    "subjects": [{"kind": "User", "name": membership.USERNAME}],
                }
            )
        ),
        "delete a Node": lambda: core.delete_node(
            str(core.list_node().items[0].to_dict()["metadata"]["name"])
        ),
        "create a Job in kube-system": lambda: batch.create_namespaced_job("kube-system", JOB),
        "create a Job in default": lambda: batch.create_namespaced_job("default", JOB),
        "create a Job in gridaware-system": lambda: batch.create_namespaced_job(
            "gridaware-system", JOB
        ),
        "create a kube-* namespace": lambda: core.create_namespace(
            ns_body(f"kube-{uuid.uuid4().hex[:6]}")
        ),
        "create a ServiceAccount token": lambda: core.create_namespaced_service_account_token(
            membership.SERVICE_ACCOUNT,
            "gridaware-system",
            kubernetes.client.AuthenticationV1TokenRequest.model_validate({"spec": {}}),
        ),
    }
    allowed = {what: code for what, call in denied.items() if (code := status_of(call)) != 403}
    assert allowed == {}, f"the operator identity could: {allowed}"
    fenced = message_of(lambda: batch.create_namespaced_job("kube-system", JOB))
    assert "gridaware never uses namespace kube-system" in fenced


def test_an_explicit_namespace_list_is_all_the_operator_may_use(
    lab: Lab, operator: Operator, namespace: str
) -> None:
    member = lab.members[-1]
    cluster = lab.state.cluster(member)
    other = f"not-listed-{uuid.uuid4().hex[:6]}"
    listed = dataclasses.replace(register.join_request(cluster), namespaces=(namespace,))
    admin, hub = lab.client(member), lab.client("hub")
    try:
        membership.join(admin, hub, listed, server=cluster.api_url)
        client = clients.from_kubeconfig(hub_kubeconfig(lab, member))
        batch = kubernetes.client.BatchV1Api(client)
        core = kubernetes.client.CoreV1Api(client)
        meta = core.read_namespace(namespace).metadata  # get is allowed
        labels = (meta.labels if meta else None) or {}
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        batch.create_namespaced_job(namespace, JOB)
        batch.delete_namespaced_job("probe", namespace)
        kubernetes.client.CoreV1Api(admin).create_namespace(ns_body(other))
        assert status_of(lambda: batch.create_namespaced_job(other, JOB)) == 403
        # the API server picks up a changed admission policy within a second or so
        wait_for(
            lambda: (
                status_of(lambda: core.create_namespace(ns_body(f"{other}-new"), dry_run="All"))
                != 200
            ),
            "the member fence in force for the new namespace list",
            timeout=20,
        )
        refused = message_of(lambda: core.create_namespace(ns_body(f"{other}-new")))
        assert f"re-run gridaware member join with --namespace {other}-new" in refused
    finally:
        membership.join(admin, hub, register.join_request(cluster), server=cluster.api_url)
        kubernetes.client.CoreV1Api(admin).delete_namespace(other)
    wait_for(lambda: cluster_ready(lab, member), f"GridCluster {member} Ready again")


def test_rotation_revokes_the_old_token_and_the_operator_follows(
    lab: Lab, operator: Operator
) -> None:
    member = lab.members[1]
    cluster = lab.state.cluster(member)
    old = hub_kubeconfig(lab, member)
    admin = lab.client(member)
    result = membership.join(
        admin,
        lab.client("hub"),
        register.join_request(cluster),
        server=cluster.api_url,
        rotate=True,
    )
    assert result.rotated
    new = hub_kubeconfig(lab, member)
    assert new["users"] != old["users"]
    assert len(membership.token_secrets(admin)) == 1
    old_client = clients.from_kubeconfig(old)
    # the API server caches a successful token check for up to 10 s
    deadline = time.monotonic() + 30
    while clients.raw_get(old_client, "/api")[0] != 401 and time.monotonic() < deadline:
        time.sleep(1)
    assert clients.raw_get(old_client, "/api")[0] == 401
    assert clients.raw_get(clients.from_kubeconfig(new), "/api")[0] == 200
    time.sleep(3)  # a probe or two with the new Secret
    wait_for(lambda: cluster_ready(lab, member), f"GridCluster {member} Ready with the new token")
