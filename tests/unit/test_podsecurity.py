"""core.podsecurity: every Pod Security Standards rule (baseline and restricted) and
gridaware's own rules, table-driven; hypothesis for invariants (compliant templates stay
compliant, restricted is never looser than baseline, messages always say what to change)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridaware.api.v1alpha1 import GridAwareJobSpec
from gridaware.core.podsecurity import Level, Policy, Violation, namespace_labels, violations

RESTRICTED_POD: dict[str, Any] = {
    "restartPolicy": "Never",
    "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
    "containers": [
        {
            "name": "main",
            "image": "example/x:1",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            },
        }
    ],
}
BASELINE_POD: dict[str, Any] = {
    "restartPolicy": "Never",
    "containers": [{"name": "main", "image": "example/x:1"}],
}


def job(pod: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"template": {"metadata": meta, "spec": pod}}


def with_(pod: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``pod`` with ``value`` at dotted ``path`` (``containers.0.x`` indexes lists)."""
    doc = copy.deepcopy(pod)
    node: Any = doc
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    node[keys[-1]] = value
    return doc


C0 = "containers.0.securityContext"
# (pod, level, rule, path, words the message must contain)
CASES = [
    pytest.param(
        with_(RESTRICTED_POD, "hostNetwork", True),
        "baseline",
        "host-namespaces",
        "spec.hostNetwork",
        "set it to false",
        id="host-network",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "hostPID", True),
        "baseline",
        "host-namespaces",
        "spec.hostPID",
        "remove hostPID",
        id="host-pid",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "hostIPC", True),
        "baseline",
        "host-namespaces",
        "spec.hostIPC",
        "remove hostIPC",
        id="host-ipc",
    ),
    pytest.param(
        with_(BASELINE_POD, "containers.0.securityContext", {"privileged": True}),
        "baseline",
        "privileged",
        "spec.containers[0].securityContext.privileged",
        "set it to false",
        id="privileged",
    ),
    pytest.param(
        with_(
            BASELINE_POD,
            "initContainers",
            [{"name": "i", "image": "x", "securityContext": {"privileged": True}}],
        ),
        "baseline",
        "privileged",
        "spec.initContainers[0].securityContext.privileged",
        "privileged",
        id="privileged-init-container",
    ),
    pytest.param(
        with_(
            BASELINE_POD, "containers.0.securityContext", {"capabilities": {"add": ["SYS_ADMIN"]}}
        ),
        "baseline",
        "capabilities",
        "spec.containers[0].securityContext.capabilities.add[0]",
        "SYS_ADMIN",
        id="cap-sys-admin",
    ),
    pytest.param(
        with_(RESTRICTED_POD, f"{C0}.capabilities", {"drop": ["ALL"], "add": ["CHOWN"]}),
        "restricted",
        "capabilities",
        "spec.containers[0].securityContext.capabilities.add[0]",
        "NET_BIND_SERVICE",
        id="cap-chown-restricted",
    ),
    pytest.param(
        with_(RESTRICTED_POD, f"{C0}.capabilities", {}),
        "restricted",
        "capabilities",
        "spec.containers[0].securityContext.capabilities.drop",
        '["ALL"]',
        id="no-drop-all",
    ),
    pytest.param(
        with_(BASELINE_POD, "volumes", [{"name": "root", "hostPath": {"path": "/"}}]),
        "baseline",
        "host-path",
        "spec.volumes[0].hostPath",
        "emptyDir",
        id="host-path-root",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "volumes", [{"name": "n", "nfs": {"server": "s", "path": "/"}}]),
        "restricted",
        "volume-types",
        "spec.volumes[0].nfs",
        "persistentVolumeClaim",
        id="nfs-volume-restricted",
    ),
    pytest.param(
        with_(BASELINE_POD, "containers.0.ports", [{"containerPort": 80, "hostPort": 80}]),
        "baseline",
        "host-ports",
        "spec.containers[0].ports[0].hostPort",
        "set it to 0",
        id="host-port",
    ),
    pytest.param(
        with_(
            BASELINE_POD, "securityContext", {"sysctls": [{"name": "kernel.msgmax", "value": "1"}]}
        ),
        "baseline",
        "sysctls",
        "spec.securityContext.sysctls[0]",
        "kernel.msgmax",
        id="unsafe-sysctl",
    ),
    pytest.param(
        with_(BASELINE_POD, C0, {"procMount": "Unmasked"}),
        "baseline",
        "proc-mount",
        "spec.containers[0].securityContext.procMount",
        "Default",
        id="proc-mount",
    ),
    pytest.param(
        with_(BASELINE_POD, "securityContext", {"seccompProfile": {"type": "Unconfined"}}),
        "baseline",
        "seccomp",
        "spec.securityContext.seccompProfile.type",
        "RuntimeDefault",
        id="seccomp-unconfined",
    ),
    pytest.param(
        with_(BASELINE_POD, C0, {"appArmorProfile": {"type": "Unconfined"}}),
        "baseline",
        "apparmor",
        "spec.containers[0].securityContext.appArmorProfile.type",
        "RuntimeDefault",
        id="apparmor-unconfined",
    ),
    pytest.param(
        with_(BASELINE_POD, C0, {"seLinuxOptions": {"type": "spc_t"}}),
        "baseline",
        "selinux",
        "spec.containers[0].securityContext.seLinuxOptions.type",
        "container_t",
        id="selinux-spc",
    ),
    pytest.param(
        with_(BASELINE_POD, "securityContext", {"seLinuxOptions": {"user": "root"}}),
        "baseline",
        "selinux",
        "spec.securityContext.seLinuxOptions.user",
        "remove seLinuxOptions.user",
        id="selinux-user",
    ),
    pytest.param(
        with_(BASELINE_POD, "securityContext", {"windowsOptions": {"hostProcess": True}}),
        "baseline",
        "host-process",
        "spec.securityContext.windowsOptions.hostProcess",
        "false",
        id="host-process",
    ),
    pytest.param(
        with_(RESTRICTED_POD, f"{C0}.allowPrivilegeEscalation", True),
        "restricted",
        "allow-privilege-escalation",
        "spec.containers[0].securityContext.allowPrivilegeEscalation",
        "false",
        id="privilege-escalation",
    ),
    pytest.param(
        with_(RESTRICTED_POD, f"{C0}.runAsUser", 0),
        "restricted",
        "run-as-user",
        "spec.containers[0].securityContext.runAsUser",
        "non-zero",
        id="run-as-root",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "securityContext.runAsUser", 0),
        "restricted",
        "run-as-user",
        "spec.securityContext.runAsUser",
        "non-zero",
        id="pod-run-as-root",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "securityContext.runAsNonRoot", False),
        "restricted",
        "run-as-non-root",
        "spec.securityContext.runAsNonRoot",
        "true",
        id="run-as-non-root-false",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "securityContext", {"runAsNonRoot": True}),
        "restricted",
        "seccomp",
        "spec.containers[0].securityContext.seccompProfile.type",
        "RuntimeDefault",
        id="seccomp-unset-restricted",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "nodeName", "hub-control-plane"),
        "baseline",
        "node-name",
        "spec.nodeName",
        "nodeSelector",
        id="node-name",
    ),
    pytest.param(
        with_(
            RESTRICTED_POD,
            "tolerations",
            [
                {
                    "key": "node-role.kubernetes.io/control-plane",
                    "operator": "Exists",
                    "effect": "NoSchedule",
                }
            ],
        ),
        "baseline",
        "control-plane-toleration",
        "spec.tolerations[0]",
        "remove the toleration",
        id="control-plane-toleration",
    ),
    pytest.param(
        with_(
            RESTRICTED_POD,
            "tolerations",
            [{"key": "node-role.kubernetes.io/master", "operator": "Exists"}],
        ),
        "baseline",
        "control-plane-toleration",
        "spec.tolerations[0]",
        "control-plane",
        id="master-toleration",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "tolerations", [{"operator": "Exists"}]),
        "baseline",
        "control-plane-toleration",
        "spec.tolerations[0]",
        "every taint",
        id="tolerate-everything",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "serviceAccountName", "cluster-admin"),
        "baseline",
        "service-account",
        "spec.serviceAccountName",
        "trainer",
        id="foreign-service-account",
    ),
    pytest.param(
        with_(RESTRICTED_POD, "serviceAccount", "cluster-admin"),
        "baseline",
        "service-account",
        "spec.serviceAccountName",
        "not allowed",
        id="deprecated-service-account-field",
    ),
]


@pytest.mark.parametrize(("pod", "level", "rule", "path", "words"), CASES)
def test_each_rule_reports_where_and_what_to_change(
    pod: dict[str, Any], level: Level, rule: str, path: str, words: str
) -> None:
    policy = Policy(level=level, service_accounts={"team-a": frozenset({"trainer"})})
    found = violations(job(pod), "team-a", policy)
    assert (rule, path) in [(v.rule, v.path) for v in found], found
    message = next(v.message for v in found if (v.rule, v.path) == (rule, path))
    assert words in message


@pytest.mark.parametrize(
    ("pod", "level"),
    [
        pytest.param(RESTRICTED_POD, "restricted", id="restricted-template"),
        pytest.param(RESTRICTED_POD, "baseline", id="restricted-template-under-baseline"),
        pytest.param(BASELINE_POD, "baseline", id="plain-template-under-baseline"),
        pytest.param(
            with_(RESTRICTED_POD, "serviceAccountName", "trainer"),
            "restricted",
            id="allowed-service-account",
        ),
        pytest.param(
            with_(RESTRICTED_POD, "serviceAccountName", "default"),
            "restricted",
            id="default-service-account",
        ),
        pytest.param(
            with_(
                BASELINE_POD,
                f"{C0}.capabilities",
                {"add": ["NET_BIND_SERVICE", "CHOWN"]},
            ),
            "baseline",
            id="baseline-capabilities",
        ),
        pytest.param(
            with_(
                RESTRICTED_POD,
                "volumes",
                [
                    {"name": "d", "emptyDir": {}},
                    {"name": "p", "persistentVolumeClaim": {"claimName": "c"}},
                ],
            ),
            "restricted",
            id="restricted-volumes",
        ),
        pytest.param(
            with_(RESTRICTED_POD, "tolerations", [{"key": "nvidia.com/gpu", "operator": "Exists"}]),
            "restricted",
            id="gpu-toleration",
        ),
        pytest.param(
            with_(
                BASELINE_POD,
                "securityContext",
                {"sysctls": [{"name": "net.ipv4.tcp_syncookies", "value": "1"}]},
            ),
            "baseline",
            id="safe-sysctl",
        ),
        pytest.param(
            with_(RESTRICTED_POD, f"{C0}.runAsNonRoot", True)
            | {
                "securityContext": {
                    "seccompProfile": {"type": "Localhost", "localhostProfile": "p.json"}
                }
            },
            "restricted",
            id="container-level-non-root",
        ),
    ],
)
def test_compliant_templates_pass(pod: dict[str, Any], level: Level) -> None:
    policy = Policy(level=level, service_accounts={"team-a": frozenset({"trainer"})})
    assert violations(job(pod), "team-a", policy) == []


def test_service_accounts_are_per_namespace() -> None:
    policy = Policy(service_accounts={"team-a": frozenset({"trainer"})})
    pod = with_(RESTRICTED_POD, "serviceAccountName", "trainer")
    assert violations(job(pod), "team-a", policy) == []
    [v] = violations(job(pod), "team-b", policy)
    assert v.rule == "service-account" and "ask an admin" in v.message


def test_apparmor_annotation() -> None:
    meta = {"annotations": {"container.apparmor.security.beta.kubernetes.io/main": "unconfined"}}
    [v] = violations(job(RESTRICTED_POD, **meta), "team-a")
    assert v.rule == "apparmor" and "runtime/default" in v.message


def test_accepts_the_gridawarejob_model() -> None:
    spec = GridAwareJobSpec.model_validate(
        {"template": job(with_(RESTRICTED_POD, "hostPID", True))}
    )
    assert [v.rule for v in violations(spec, "team-a")] == ["host-namespaces"]
    assert str(violations(spec, "team-a")[0]).startswith("spec.hostPID: ")


def test_checks_every_replicated_job_of_a_jobset() -> None:
    replicated = [
        {"name": "leader", "template": {"spec": job(RESTRICTED_POD)}},
        {"name": "workers", "template": {"spec": job(with_(RESTRICTED_POD, "nodeName", "n"))}},
    ]
    spec = GridAwareJobSpec.model_validate({"jobSet": {"replicatedJobs": replicated}})
    [v] = violations(spec, "team-a")
    path = "jobSet.replicatedJobs[1].template.spec.template.spec.nodeName"
    assert (v.rule, v.path) == ("node-name", path)


def test_namespace_labels() -> None:
    assert namespace_labels("baseline")["pod-security.kubernetes.io/enforce"] == "baseline"
    assert namespace_labels("restricted")["pod-security.kubernetes.io/warn"] == "restricted"


# ---- properties ---------------------------------------------------------------------------

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=12)
json_leaf = st.none() | st.booleans() | st.integers(-2, 70000) | names
json = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
    max_leaves=8,
)
RISKY_KEYS = st.sampled_from(
    [
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "nodeName",
        "securityContext",
        "volumes",
        "tolerations",
        "serviceAccountName",
        "containers",
        "initContainers",
    ]
)

# generation of nested documents is slow on a loaded machine, not wrong
RELAXED = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@RELAXED
@given(st.dictionaries(RISKY_KEYS, json, max_size=5), st.sampled_from(["baseline", "restricted"]))
def test_any_input_gives_violations_not_exceptions(pod: dict[str, Any], level: Level) -> None:
    found = violations(job(pod), "team-a", Policy(level=level))
    assert all(isinstance(v, Violation) and v.message and v.path for v in found)


@RELAXED
@given(st.dictionaries(RISKY_KEYS, json, max_size=5))
def test_restricted_is_never_looser_than_baseline(pod: dict[str, Any]) -> None:
    base = {(v.rule, v.path) for v in violations(job(pod), "ns", Policy(level="baseline"))}
    strict = {(v.rule, v.path) for v in violations(job(pod), "ns", Policy(level="restricted"))}
    assert base <= strict


@given(st.sampled_from([c.values[0] for c in CASES]))
def test_fixing_the_reported_field_removes_the_violation(pod: dict[str, Any]) -> None:
    """Removing what a violation points at never leaves that same violation."""
    found = violations(job(pod), "team-a", Policy())
    assert found
    fixed = copy.deepcopy(pod)
    for key in (
        "hostNetwork",
        "hostPID",
        "hostIPC",
        "nodeName",
        "tolerations",
        "volumes",
        "serviceAccountName",
        "serviceAccount",
        "initContainers",
    ):
        fixed.pop(key, None)
    fixed["securityContext"] = RESTRICTED_POD["securityContext"]
    fixed["containers"] = RESTRICTED_POD["containers"]
    assert violations(job(fixed), "team-a", Policy()) == []
