"""Tenants on a shared hub, on the lab: the chart's ValidatingAdmissionPolicy (rendered with
the lab's helm and installed on the hub) makes the hub's API server reject every pod-template
escape with a message that says what must change (Job-form jobs and each replicated job of a
JobSet-form job, whose messages name the path of the pod spec to fix), a tenant's RBAC keeps it
in its namespace, nothing reaches any member, and a compliant job from the same tenant runs end
to end.

The tenant is a real identity: a ServiceAccount of hub namespace ``team-a`` with a Role that
allows GridAwareJobs there only, using a TokenRequest token (no impersonation)."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import kubernetes.client
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

from gridaware.api import crd
from gridaware.api.v1alpha1 import GROUP, JOB_LABEL, VERSION
from gridaware.k8s import clients, objects
from tests.conftest import REPO, Lab, Operator, kubectl, wait_for
from tests.e2e.test_helm import helm_cli
from tests.e2e.test_operator import status

pytestmark = pytest.mark.slow
TEAM = "team-a"
CHART = REPO / "helm" / "gridaware"
POD: dict[str, Any] = {
    "restartPolicy": "Never",
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "main",
            "image": "example/train:1",
            "resources": {"requests": {"cpu": "1", "memory": "1Gi"}},
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}
C = "containers.0.securityContext"


def escape(path: str, value: Any) -> dict[str, Any]:
    """The compliant pod spec with ``value`` at dotted ``path`` (digits index lists)."""
    pod = copy.deepcopy(POD)
    node: Any = pod
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[keys[-1]] = value
    return pod


def body(
    name: str, pod: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    meta = {"annotations": {"lab.gridaware.dev/complete-after": "2s", **(annotations or {})}}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GridAwareJob",
        "metadata": {"name": name},
        "spec": {"template": {"backoffLimit": 0, "template": {"metadata": meta, "spec": pod}}},
    }


# (pod spec, pod annotations, words of the message that says what must change)
ESCAPES = [
    pytest.param(
        escape(f"{C}.privileged", True), None, "remove securityContext.privileged", id="privileged"
    ),
    pytest.param(
        escape(
            "initContainers",
            [{"name": "init", "image": "x:1", "securityContext": {"privileged": True}}],
        ),
        None,
        "containers init: remove securityContext.privileged",
        id="privileged-init-container",
    ),
    pytest.param(
        escape(f"{C}.capabilities", {"drop": ["ALL"], "add": ["SYS_ADMIN"]}),
        None,
        "remove the added capabilities",
        id="cap-sys-admin",
    ),
    pytest.param(
        escape(f"{C}.capabilities", {"drop": ["ALL"], "add": ["NET_RAW"]}),
        None,
        "allows adding only NET_BIND_SERVICE",
        id="cap-net-raw",
    ),
    pytest.param(
        escape(f"{C}.capabilities", {}),
        None,
        'capabilities.drop to ["ALL"]',
        id="capabilities-not-dropped",
    ),
    pytest.param(
        escape("volumes", [{"name": "root", "hostPath": {"path": "/"}}]),
        None,
        "volumes root: must not be hostPath",
        id="host-path-root",
    ),
    pytest.param(escape("hostPID", True), None, "remove hostPID", id="host-pid"),
    pytest.param(escape("hostIPC", True), None, "remove hostIPC", id="host-ipc"),
    pytest.param(escape("hostNetwork", True), None, "remove hostNetwork", id="host-network"),
    pytest.param(
        escape("containers.0.ports", [{"containerPort": 22, "hostPort": 2222}]),
        None,
        "remove hostPort",
        id="host-port",
    ),
    pytest.param(escape("nodeName", "us-west-node-0"), None, "remove nodeName", id="node-name"),
    pytest.param(
        escape(
            "tolerations",
            [
                {
                    "key": "node-role.kubernetes.io/control-plane",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
        ),
        None,
        "remove tolerations of control-plane taints",
        id="control-plane-toleration",
    ),
    pytest.param(
        escape("tolerations", [{"operator": "Exists"}]),
        None,
        "tolerations with an empty key and operator Exists",
        id="tolerate-every-taint",
    ),
    pytest.param(
        escape("serviceAccountName", "gridaware"),
        None,
        "ServiceAccount gridaware is not allowed in namespace team-a: remove "
        "serviceAccountName or use one of: trainer",
        id="foreign-service-account",
    ),
    pytest.param(escape(f"{C}.runAsUser", 0), None, "non-zero user id", id="run-as-root"),
    pytest.param(
        escape("securityContext.runAsNonRoot", False),
        None,
        "runAsNonRoot to true",
        id="run-as-non-root-false",
    ),
    pytest.param(
        escape(f"{C}.allowPrivilegeEscalation", True),
        None,
        "allowPrivilegeEscalation to false",
        id="privilege-escalation",
    ),
    pytest.param(
        escape("securityContext.seccompProfile", {"type": "Unconfined"}),
        None,
        "seccompProfile.type to RuntimeDefault or Localhost",
        id="seccomp-unconfined",
    ),
    pytest.param(
        escape(f"{C}.procMount", "Unmasked"),
        None,
        "procMount or set it to Default",
        id="proc-mount-unmasked",
    ),
    pytest.param(
        escape("securityContext.sysctls", [{"name": "kernel.core_pattern", "value": "|/bin/sh"}]),
        None,
        "use only the safe sysctls",
        id="unsafe-sysctl",
    ),
    pytest.param(
        escape(f"{C}.seLinuxOptions", {"type": "spc_t"}),
        None,
        "seLinuxOptions: set type to container_t",
        id="selinux-super-privileged",
    ),
    pytest.param(
        POD,
        {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"},
        "AppArmor profile to RuntimeDefault or Localhost",
        id="apparmor-unconfined",
    ),
    pytest.param(
        escape("volumes", [{"name": "nfs", "nfs": {"server": "10.0.0.1", "path": "/"}}]),
        None,
        "volumes nfs: use only configMap",
        id="nfs-volume",
    ),
]


JOBSET_POD = "spec.jobSet.replicatedJobs[1].template.spec.template.spec"


def jobset_body(name: str, pod: dict[str, Any], leader: dict[str, Any] = POD) -> dict[str, Any]:
    """A JobSet-form GridAwareJob: a compliant leader and ``pod`` as its workers' pod spec."""

    def replicated(rname: str, replicas: int, spec: dict[str, Any]) -> dict[str, Any]:
        meta = {"annotations": {"lab.gridaware.dev/complete-after": "2s"}}
        job = {"backoffLimit": 0, "template": {"metadata": meta, "spec": spec}}
        return {"name": rname, "replicas": replicas, "template": {"spec": job}}

    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "GridAwareJob",
        "metadata": {"name": name},
        "spec": {
            "jobSet": {
                "replicatedJobs": [replicated("leader", 1, leader), replicated("workers", 2, pod)]
            }
        },
    }


# (the workers' pod spec, words of the message: the path of the pod spec, then what to change)
JOBSET_ESCAPES = [
    pytest.param(
        escape(f"{C}.privileged", True),
        f"{JOBSET_POD}: containers main: remove securityContext.privileged or set it to false",
        id="jobset-privileged",
    ),
    pytest.param(
        escape("volumes", [{"name": "root", "hostPath": {"path": "/"}}]),
        f"{JOBSET_POD}: volumes root: must not be hostPath",
        id="jobset-host-path-root",
    ),
    pytest.param(
        escape("hostNetwork", True),
        f"{JOBSET_POD}: remove hostNetwork or set it to false",
        id="jobset-host-network",
    ),
    pytest.param(
        escape("nodeName", "us-west-node-0"),
        f"{JOBSET_POD}: remove nodeName",
        id="jobset-node-name",
    ),
    pytest.param(
        escape(
            "tolerations",
            [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}],
        ),
        f"{JOBSET_POD}: remove tolerations of control-plane taints",
        id="jobset-control-plane-toleration",
    ),
    pytest.param(
        escape("serviceAccountName", "gridaware"),
        f"{JOBSET_POD}: ServiceAccount gridaware is not allowed in namespace team-a: remove "
        "serviceAccountName or use one of: trainer",
        id="jobset-foreign-service-account",
    ),
    pytest.param(
        escape(f"{C}.runAsUser", 0),
        f"{JOBSET_POD}: set runAsUser to a non-zero user id",
        id="jobset-run-as-root",
    ),
]


def render(*sets: str) -> str:
    return str(
        helm_cli(
            "template",
            "gw",
            str(CHART),
            "--namespace",
            "gridaware",
            "--show-only",
            "templates/admission-policy.yaml",
            *sets,
        ).stdout
    )


def install(lab: Lab, manifest: str) -> None:
    """Apply the rendered policy (the API server picks it up asynchronously: see enforced)."""
    kubectl(lab, "apply", "-f", "-", stdin=manifest)


def rejection(
    client: kubernetes.client.ApiClient, namespace: str, doc: dict[str, Any]
) -> str | None:
    """The API server's message when it refuses ``doc``, None when it stores it (dry run)."""
    try:
        kubernetes.client.CustomObjectsApi(client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "gridawarejobs", doc, dry_run="All"
        )
    except ApiException as exc:
        assert exc.status in (403, 422), exc
        return str(yaml.safe_load(exc.body or "{}").get("message"))
    return None


def enforced(lab: Lab, words: str, pod: dict[str, Any]) -> None:
    wait_for(
        lambda: words in (rejection(lab.client("hub"), TEAM, body("probe", pod)) or ""),
        f"the admission policy to reject with '{words}'",
    )


@pytest.fixture(scope="module")
def policy(lab: Lab, operator: Operator) -> Iterator[str]:
    """The rendered policy, installed (after the CRDs, which the session operator installs)."""
    objects.ensure_namespace(lab.client("hub"), TEAM)
    manifest = render("--set", f"admissionPolicy.serviceAccounts.{TEAM}={{trainer}}")
    install(lab, manifest)
    enforced(lab, "remove securityContext.privileged", escape(f"{C}.privileged", True))
    yield manifest
    kubectl(lab, "delete", "--ignore-not-found", "-f", "-", stdin=manifest)
    for cluster in lab.names:
        objects.delete_namespace(lab.client(cluster), TEAM)
    objects.delete_namespace(lab.client("hub"), "team-b")


@pytest.fixture(scope="module")
def tenant(lab: Lab, policy: str) -> Iterator[kubernetes.client.ApiClient]:
    """A ServiceAccount of hub namespace team-a that may manage GridAwareJobs there only."""
    hub = lab.client("hub")
    core = kubernetes.client.CoreV1Api(hub)
    rbac = kubernetes.client.RbacAuthorizationV1Api(hub)
    core.create_namespaced_service_account(
        TEAM, kubernetes.client.V1ServiceAccount.model_validate({"metadata": {"name": "alice"}})
    )
    rbac.create_namespaced_role(
        TEAM,
        kubernetes.client.V1Role.model_validate(
            {
                "metadata": {"name": "gridawarejob-submitter"},
                "rules": [
                    {
                        "apiGroups": [GROUP],
                        "resources": ["gridawarejobs"],
                        "verbs": ["create", "get", "list", "watch", "update", "patch", "delete"],
                    }
                ],
            }
        ),
    )
    rbac.create_namespaced_role_binding(
        TEAM,
        kubernetes.client.V1RoleBinding.model_validate(
            {
                "metadata": {"name": "alice-submits"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "gridawarejob-submitter",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": TEAM}],
            }
        ),
    )
    request = kubernetes.client.AuthenticationV1TokenRequest.model_validate(
        {"spec": {"expirationSeconds": 3600}}
    )
    answer = core.create_namespaced_service_account_token("alice", TEAM, request).status
    assert answer is not None
    token = answer.token
    admin = yaml.safe_load(lab.state.cluster("hub").kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "alice", "user": {"token": token}}],
        "contexts": [
            {"name": "alice", "context": {"cluster": admin["clusters"][0]["name"], "user": "alice"}}
        ],
        "current-context": "alice",
    }
    client = clients.from_kubeconfig(config)
    yield client
    client.close()  # type: ignore[no-untyped-call]


def create(client: kubernetes.client.ApiClient, namespace: str, doc: dict[str, Any]) -> str | None:
    """Create for real; the API server's message when it refuses."""
    try:
        kubernetes.client.CustomObjectsApi(client).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "gridawarejobs", doc
        )
    except ApiException as exc:
        return str(yaml.safe_load(exc.body or "{}").get("message"))
    return None


@pytest.mark.parametrize(("pod", "annotations", "words"), ESCAPES)
def test_pod_template_escapes_are_rejected_with_what_to_change(
    tenant: kubernetes.client.ApiClient,
    pod: dict[str, Any],
    annotations: dict[str, str] | None,
    words: str,
) -> None:
    message = create(tenant, TEAM, body("escape", pod, annotations))
    assert message is not None, "the escape was stored"
    assert "ValidatingAdmissionPolicy 'gw-gridaware-pod-security'" in message
    assert words in message, message


@pytest.mark.parametrize(("pod", "words"), JOBSET_ESCAPES)
def test_jobset_escapes_are_rejected_with_the_path_to_change(
    tenant: kubernetes.client.ApiClient, pod: dict[str, Any], words: str
) -> None:
    message = create(tenant, TEAM, jobset_body("escape-set", pod))
    assert message is not None, "the escape was stored"
    assert "ValidatingAdmissionPolicy 'gw-gridaware-pod-security'" in message
    assert words in message, message
    assert "replicatedJobs[0]" not in message, "the compliant leader is not blamed"


def test_the_policy_reaches_every_replicated_job_the_crd_allows() -> None:
    """CEL before Kubernetes 1.34 has no index range, so the policy lists the indices of
    replicated jobs: as many as the CRD's maxItems, or the last ones would go unchecked."""
    [policy] = [d for d in yaml.safe_load_all(render()) if d["kind"] == "ValidatingAdmissionPolicy"]
    [templates] = [v for v in policy["spec"]["variables"] if v["name"] == "podTemplates"]
    schema = crd.job_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    most = schema["properties"]["spec"]["properties"]["jobSet"]["properties"]["replicatedJobs"]
    indices = list(range(most["maxItems"]))
    assert f"{indices}.filter(i,".replace(" ", "") in templates["expression"].replace(" ", "")


def test_every_breaking_replicated_job_is_named_and_a_compliant_jobset_is_accepted(
    tenant: kubernetes.client.ApiClient,
) -> None:
    privileged = escape(f"{C}.privileged", True)
    message = rejection(tenant, TEAM, jobset_body("both", privileged, leader=privileged)) or ""
    for i in (0, 1):
        where = f"spec.jobSet.replicatedJobs[{i}].template.spec.template.spec"
        assert f"{where}: containers main: remove securityContext.privileged" in message, message
    assert rejection(tenant, TEAM, jobset_body("compliant-set", POD)) is None


@pytest.mark.parametrize(
    ("namespace", "words"),
    [
        pytest.param("team-b", 'cannot create resource "gridawarejobs"', id="another-namespace"),
        pytest.param("kube-system", 'in the namespace "kube-system"', id="kube-system"),
        pytest.param("default", 'in the namespace "default"', id="default-namespace"),
        pytest.param(
            "gridaware-system",
            'in the namespace "gridaware-system"',
            id="operator-secrets-namespace",
        ),
    ],
)
def test_other_namespaces_are_out_of_reach(
    lab: Lab, tenant: kubernetes.client.ApiClient, namespace: str, words: str
) -> None:
    objects.ensure_namespace(lab.client("hub"), namespace)
    message = create(tenant, namespace, body("elsewhere", POD))
    assert message is not None and words in message and "alice" in message, message


def test_system_member_namespaces_are_refused_even_to_admins(lab: Lab, policy: str) -> None:
    """RBAC aside, no GridAwareJob may land in kube-*, default or gridaware's namespaces."""
    hub = lab.client("hub")
    for namespace in ("default", "kube-public", "gridaware-system"):
        message = rejection(hub, namespace, body("system", POD)) or ""
        assert f"would run in member namespace {namespace}, which gridaware refuses" in message
        assert "submit the job in a team namespace or ask an admin to map" in message


def test_nothing_reached_a_member_and_a_compliant_job_runs(
    lab: Lab, operator: Operator, tenant: kubernetes.client.ApiClient
) -> None:
    for member in lab.members:
        jobs = kubernetes.client.BatchV1Api(lab.client(member)).list_job_for_all_namespaces(
            label_selector=JOB_LABEL
        )
        assert not [j for j in jobs.items if j.metadata and j.metadata.namespace == TEAM]
    assert create(tenant, TEAM, body("compliant", POD)) is None
    wait_for(
        lambda: status(lab, TEAM, "compliant").get("phase") == "Succeeded",
        "the tenant's compliant job to run to completion",
        timeout=120,
    )
    cluster = status(lab, TEAM, "compliant")["cluster"]
    jobs = kubernetes.client.BatchV1Api(lab.client(cluster)).list_namespaced_job(TEAM)
    assert [j.metadata.name for j in jobs.items if j.metadata] == ["compliant"]


def test_baseline_level_allows_what_only_restricted_forbids(
    lab: Lab, tenant: kubernetes.client.ApiClient, policy: str
) -> None:
    install(lab, render("--set", "admissionPolicy.level=baseline"))
    try:
        root = escape(f"{C}.runAsUser", 0)
        wait_for(
            lambda: rejection(tenant, TEAM, body("root", root)) is None,
            "the baseline policy to accept runAsUser 0",
        )
        message = rejection(tenant, TEAM, body("priv", escape(f"{C}.privileged", True))) or ""
        assert "remove securityContext.privileged" in message
        refused = rejection(tenant, TEAM, body("sa", escape("serviceAccountName", "trainer")))
        assert refused and "(none allowed, ask an admin)" in refused
    finally:
        install(lab, policy)
        time.sleep(0.5)
        enforced(lab, "non-zero user id", escape(f"{C}.runAsUser", 0))
