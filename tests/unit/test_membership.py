"""k8s.membership (pure parts) and k8s.clients' kubeconfig safety: the member role is exactly
what the operator uses, join refuses system namespaces, and a kubeconfig from a Secret that
would run a program or read a file is refused before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridaware.k8s import clients, membership
from gridaware.k8s.clients import UnsafeKubeconfigError

REQUEST = membership.JoinRequest(name="eu-central", region="eu-central", grid_zone="DE-LU")


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def test_the_member_role_is_exactly_what_the_operator_uses() -> None:
    rules = membership.read_role()["rules"] + membership.jobs_role()["rules"]
    granted = {
        (g, r, v)
        for rule in rules
        for g in rule.get("apiGroups", [])
        for r in rule.get("resources", [])
        for v in rule["verbs"]
    }
    workloads = [("batch", "jobs"), ("jobset.x-k8s.io", "jobsets")]
    writes = {(g, r, v) for g, r in workloads for v in ("create", "delete", "patch")}
    reads = {(g, r, v) for g, r in workloads for v in ("get", "list", "watch")}
    reads |= {("", "pods", v) for v in ("get", "list", "watch")}
    reads |= {("", "nodes", "list"), ("", "nodes", "watch")}
    reads |= {("", "namespaces", "get"), ("", "namespaces", "create")}
    assert granted == writes | reads
    [urls] = [r for r in rules if "nonResourceURLs" in r]
    assert urls["verbs"] == ["get"] and "/readyz" in urls["nonResourceURLs"]


@pytest.mark.parametrize(
    ("namespaces", "cluster_bindings", "role_bindings"),
    [
        pytest.param((), {"gridaware-member", "gridaware-member-jobs"}, [], id="any-namespace"),
        pytest.param(("team-a", "team-b"), {"gridaware-member"}, ["team-a", "team-b"], id="listed"),
    ],
)
def test_member_manifests(
    namespaces: tuple[str, ...], cluster_bindings: set[str], role_bindings: list[str]
) -> None:
    request = membership.JoinRequest(
        name="m", region="r", grid_zone="Z", namespaces=namespaces, pod_security="baseline"
    )
    docs = membership.member_manifests(request)
    assert {d["metadata"]["name"] for d in kinds(docs, "ClusterRoleBinding")} == cluster_bindings
    assert [d["metadata"]["namespace"] for d in kinds(docs, "RoleBinding")] == role_bindings
    for ns in kinds(docs, "Namespace")[1:]:
        assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "baseline"
    [policy] = kinds(docs, "ValidatingAdmissionPolicy")
    assert membership.USERNAME in policy["spec"]["matchConditions"][0]["expression"]
    assert not kinds(docs, "Secret"), "the token Secret is made apart, once per token"


@pytest.mark.parametrize("namespace", ["kube-system", "default", "gridaware-system", "Bad_Name"])
def test_join_refuses_namespaces_that_never_hold_jobs(namespace: str) -> None:
    request = membership.JoinRequest(name="m", region="r", grid_zone="Z", namespaces=(namespace,))
    with pytest.raises(membership.JoinError, match=f"--namespace {namespace}"):
        membership.member_manifests(request)


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        pytest.param(
            membership.read_role(),
            "/apis/rbac.authorization.k8s.io/v1/clusterroles/gridaware-member",
            id="cluster-role",
        ),
        pytest.param(
            membership.token_secret("t"),
            "/api/v1/namespaces/gridaware-system/secrets/t",
            id="secret",
        ),
        pytest.param(
            membership.fence(())[0],
            "/apis/admissionregistration.k8s.io/v1/"
            "validatingadmissionpolicies/gridaware-member-fence",
            id="policy",
        ),
        pytest.param(
            membership.hub_manifests(REQUEST, {})[2],
            "/apis/gridaware.dev/v1alpha1/gridclusters/eu-central",
            id="gridcluster",
        ),
    ],
)
def test_resource_path(doc: dict[str, Any], path: str) -> None:
    assert membership.resource_path(doc) == path


def test_the_token_kubeconfig_is_inline_only() -> None:
    config = membership.token_kubeconfig("m", "https://10.0.0.1:6443", b"CA", "tok")
    assert clients.unsafe_fields(config) == []
    assert config["users"][0]["user"] == {"token": "tok"}


USER = {"token": "t"}
CLUSTER = {"server": "https://127.0.0.1:1", "certificate-authority-data": "Q0E="}


def config(user: dict[str, Any], cluster: dict[str, Any] = CLUSTER) -> dict[str, Any]:
    return {
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }


@pytest.mark.parametrize(
    ("kubeconfig", "words"),
    [
        pytest.param(config({"exec": {"command": "sh"}}), "user 'u' uses exec", id="exec"),
        pytest.param(
            config({"auth-provider": {"name": "oidc"}}), "uses auth-provider", id="auth-provider"
        ),
        pytest.param(
            config({"tokenFile": "/var/run/secrets/token"}),
            "tokenFile: replace it with token",
            id="token-file",
        ),
        pytest.param(
            config({"client-certificate": "/c", "client-key": "/k"}),
            "client-certificate: replace it with client-certificate-data",
            id="cert-files",
        ),
        pytest.param(
            config(USER, {"server": "https://x", "certificate-authority": "/ca"}),
            "cluster 'c' uses certificate-authority",
            id="ca-file",
        ),
    ],
)
def test_unsafe_kubeconfigs_are_refused(kubeconfig: dict[str, Any], words: str) -> None:
    with pytest.raises(UnsafeKubeconfigError, match="kubeconfig refused") as err:
        clients.from_kubeconfig(kubeconfig)
    assert words in str(err.value)


def test_an_exec_plugin_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": "touch",
        "args": [str(marker)],
    }
    with pytest.raises(UnsafeKubeconfigError):
        clients.from_kubeconfig(config({"exec": plugin}))
    assert not marker.exists()


def test_a_safe_inline_kubeconfig_loads() -> None:
    client = clients.from_kubeconfig(config(USER))
    assert client.configuration.host == "https://127.0.0.1:1"


FIELDS = st.sampled_from(
    [*clients.REFUSED_USER_FIELDS, *clients.REFUSED_CLUSTER_FIELDS, "token", "server"]
)
leaf: st.SearchStrategy[Any] = (
    st.none() | st.booleans() | st.text(max_size=3) | st.just({}) | st.just([])
)
entry = st.fixed_dictionaries(
    {"name": leaf}, optional={"user": st.dictionaries(FIELDS, leaf, max_size=3), "cluster": leaf}
)
section = st.lists(entry | leaf, max_size=3) | leaf


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({}, optional={"users": section, "clusters": section}))
def test_unsafe_fields_never_raises_and_names_each_refused_field(
    kubeconfig: dict[str, Any],
) -> None:
    problems = clients.unsafe_fields(kubeconfig)
    users = kubeconfig.get("users")
    refused = [
        f
        for e in (users if isinstance(users, list) else [])
        if isinstance(e, dict) and isinstance(e.get("user"), dict)
        for f, v in e["user"].items()
        if f in clients.REFUSED_USER_FIELDS and v not in (None, "", {})
    ]
    assert len([p for p in problems if p.startswith("user ")]) == len(refused)
