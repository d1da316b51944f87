"""Pod Security for tenants' pod templates: the Kubernetes Pod Security Standards (``baseline``
and ``restricted``) plus gridaware's own rules, checked on the hub before a Job is created in a
member.

Why here and not only in the members: the operator creates member Jobs with its own credential,
so a tenant's pod template would otherwise reach a member's kubelet with whatever the template
asks for (privileged, hostPath, a control-plane ``nodeName``...). The chart's
ValidatingAdmissionPolicy (``helm/gridaware/templates/admission-policy.yaml``) enforces the same
rules in the hub's API server; this module is the operator's re-check (defence in depth) and the
reference the CEL mirrors. Every violation says what must change, in the words a tenant needs
to fix the manifest.

The rules follow https://kubernetes.io/docs/concepts/security/pod-security-standards/ (as of
Kubernetes v1.37): baseline forbids known privilege escalations; restricted adds hardening
best practices. gridaware's rules on top, at every level: ``serviceAccountName`` only from the
admin's allow list for the namespace, no ``nodeName``, no toleration of control-plane taints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Level = Literal["baseline", "restricted"]
LEVELS: tuple[Level, ...] = ("baseline", "restricted")

# Capabilities baseline allows to add (PSS "Capabilities", baseline).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
SELINUX_TYPES = frozenset({"", "container_t", "container_init_t", "container_kvm_t"})
SELINUX_TYPES_ALL = SELINUX_TYPES | {"container_engine_t"}
RESTRICTED_VOLUMES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
CONTROL_PLANE_TAINTS = frozenset(
    {"node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master"}
)
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Violation:
    """One rule broken: ``path`` into the pod template and a message that says what to change."""

    rule: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class Policy:
    """What the admin configured: the level and the ServiceAccounts allowed per namespace."""

    level: Level = "restricted"
    service_accounts: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def allowed_service_accounts(self, namespace: str) -> frozenset[str]:
        return self.service_accounts.get(namespace, frozenset())


class HasWorkload(Protocol):
    """A GridAwareJobSpec: a batch/v1 JobSpec as ``template`` or a JobSet spec as ``job_set``."""

    @property
    def template(self) -> dict[str, Any] | None: ...

    @property
    def job_set(self) -> dict[str, Any] | None: ...


Obj = Mapping[str, Any]
Check = Callable[[Obj, Level], Iterator[Violation]]


def violations(
    job_spec: Obj | HasWorkload, namespace: str, policy: Policy | None = None
) -> list[Violation]:
    """Every violation of ``policy`` by the pod templates of ``job_spec`` (a batch/v1 JobSpec
    as a dict, or a GridAwareJobSpec: its Job template or every replicated job of its JobSet),
    for a GridAwareJob in ``namespace``; [] when it may run. Paths of a JobSet's pods start
    with ``jobSet.replicatedJobs[i].template.spec.template.`` (where the pod template is, as in
    the admission policy's messages)."""
    policy = policy or Policy()
    found: list[Violation] = []
    for prefix, spec_obj in _job_specs(job_spec):
        found.extend(
            Violation(v.rule, prefix + v.path, v.message)
            for v in _template_violations(spec_obj, namespace, policy)
        )
    return found


def _job_specs(job_spec: Obj | HasWorkload) -> list[tuple[str, Obj]]:
    if isinstance(job_spec, Mapping):
        return [("", job_spec)]
    specs: list[tuple[str, Obj]] = []
    if job_spec.template is not None:
        specs.append(("", job_spec.template))
    for i, rj in enumerate(_list(_map(job_spec.job_set).get("replicatedJobs"))):
        specs.append(
            (
                f"jobSet.replicatedJobs[{i}].template.spec.template.",
                _map(_map(_map(rj).get("template")).get("spec")),
            )
        )
    return specs


def _template_violations(spec_obj: Obj, namespace: str, policy: Policy) -> list[Violation]:
    template = _map(spec_obj.get("template"))
    pod = _map(template.get("spec"))
    meta = _map(template.get("metadata"))
    found: list[Violation] = []
    for check in _POD_CHECKS:
        found.extend(check(pod, policy.level))
    found.extend(_apparmor_annotations(meta))
    found.extend(_gridaware(pod, namespace, policy))
    for path, container in _containers(pod):
        for ccheck in _CONTAINER_CHECKS:
            found.extend(ccheck(path, container, pod, policy.level))
    return found


def namespace_labels(level: Level) -> dict[str, str]:
    """Pod Security Admission labels for a member namespace gridaware creates, so the member's
    own admission enforces the same level on the pods of the Jobs it runs."""
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": level,
        "pod-security.kubernetes.io/audit": level,
    }


def _map(value: Any) -> Obj:
    return value if isinstance(value, Mapping) else {}


def _str(value: Any) -> str:
    """A field that should be a string, as one (a list or map in its place never matches an
    allowed value)."""
    return value if isinstance(value, str) else repr(value)


def _list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else []


def _containers(pod: Obj) -> Iterator[tuple[str, Obj]]:
    for kind in CONTAINER_KINDS:
        for i, container in enumerate(_list(pod.get(kind))):
            yield f"spec.{kind}[{i}]", _map(container)


# ---- pod-level checks -------------------------------------------------------------------


def _host_namespaces(pod: Obj, _level: Level) -> Iterator[Violation]:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key) is True:
            yield Violation("host-namespaces", f"spec.{key}", f"remove {key} or set it to false")


def _host_process(pod: Obj, _level: Level) -> Iterator[Violation]:
    win = _map(_map(pod.get("securityContext")).get("windowsOptions"))
    if win.get("hostProcess") is True:
        yield Violation(
            "host-process",
            "spec.securityContext.windowsOptions.hostProcess",
            "remove hostProcess or set it to false",
        )


def _host_path(pod: Obj, level: Level) -> Iterator[Violation]:
    for i, volume in enumerate(_list(pod.get("volumes"))):
        vol = _map(volume)
        name = vol.get("name", i)
        if "hostPath" in vol:
            yield Violation(
                "host-path",
                f"spec.volumes[{i}].hostPath",
                f"volume '{name}' must not be a hostPath; use an emptyDir, a configMap or a "
                "persistentVolumeClaim",
            )
        elif level == "restricted":
            kinds = sorted(k for k in vol if k != "name" and k not in RESTRICTED_VOLUMES)
            if kinds:
                yield Violation(
                    "volume-types",
                    f"spec.volumes[{i}].{kinds[0]}",
                    f"volume '{name}' of type {kinds[0]} is not allowed under restricted; use "
                    f"one of {', '.join(sorted(RESTRICTED_VOLUMES))}",
                )


def _sysctls(pod: Obj, _level: Level) -> Iterator[Violation]:
    for i, sysctl in enumerate(_list(_map(pod.get("securityContext")).get("sysctls"))):
        name = _str(_map(sysctl).get("name"))
        if name not in SAFE_SYSCTLS:
            yield Violation(
                "sysctls",
                f"spec.securityContext.sysctls[{i}]",
                f"sysctl '{name}' is not allowed; use only {', '.join(sorted(SAFE_SYSCTLS))}",
            )


def _pod_security_context(pod: Obj, level: Level) -> Iterator[Violation]:
    sc = _map(pod.get("securityContext"))
    yield from _selinux("spec.securityContext", sc)
    yield from _seccomp_unconfined("spec.securityContext", sc)
    yield from _apparmor_field("spec.securityContext", sc)
    if level != "restricted":
        return
    if sc.get("runAsNonRoot") is False:
        yield Violation(
            "run-as-non-root",
            "spec.securityContext.runAsNonRoot",
            "set runAsNonRoot to true (restricted)",
        )
    if sc.get("runAsUser") == 0:
        yield Violation(
            "run-as-user",
            "spec.securityContext.runAsUser",
            "set runAsUser to a non-zero user id or remove it (restricted)",
        )


_POD_CHECKS: tuple[Check, ...] = (
    _host_namespaces,
    _host_process,
    _host_path,
    _sysctls,
    _pod_security_context,
)


def _apparmor_annotations(meta: Obj) -> Iterator[Violation]:
    for key, value in sorted(_map(meta.get("annotations")).items()):
        if not str(key).startswith(APPARMOR_ANNOTATION):
            continue
        if value != "runtime/default" and not str(value).startswith("localhost/"):
            yield Violation(
                "apparmor",
                f"metadata.annotations[{key}]",
                "set the AppArmor profile to runtime/default or localhost/<profile>",
            )


# ---- shared security-context checks (pod and container level) ---------------------------


def _selinux(path: str, sc: Obj) -> Iterator[Violation]:
    opts = _map(sc.get("seLinuxOptions"))
    if _str(opts.get("type", "")) not in SELINUX_TYPES_ALL:
        yield Violation(
            "selinux",
            f"{path}.seLinuxOptions.type",
            f"set seLinuxOptions.type to one of {', '.join(sorted(SELINUX_TYPES_ALL - {''}))} "
            "or remove it",
        )
    for key in ("user", "role"):
        if opts.get(key):
            yield Violation(
                "selinux", f"{path}.seLinuxOptions.{key}", f"remove seLinuxOptions.{key}"
            )


def _seccomp_unconfined(path: str, sc: Obj) -> Iterator[Violation]:
    if _map(sc.get("seccompProfile")).get("type") == "Unconfined":
        yield Violation(
            "seccomp",
            f"{path}.seccompProfile.type",
            "set seccompProfile.type to RuntimeDefault or Localhost (Unconfined is refused)",
        )


def _apparmor_field(path: str, sc: Obj) -> Iterator[Violation]:
    if _map(sc.get("appArmorProfile")).get("type") == "Unconfined":
        yield Violation(
            "apparmor",
            f"{path}.appArmorProfile.type",
            "set appArmorProfile.type to RuntimeDefault or Localhost (Unconfined is refused)",
        )


# ---- container-level checks -------------------------------------------------------------

ContainerCheck = Callable[[str, Obj, Obj, Level], Iterator[Violation]]


def _privileged(path: str, c: Obj, _pod: Obj, _level: Level) -> Iterator[Violation]:
    sc = _map(c.get("securityContext"))
    if sc.get("privileged") is True:
        yield Violation(
            "privileged",
            f"{path}.securityContext.privileged",
            "remove privileged or set it to false",
        )
    if _map(sc.get("windowsOptions")).get("hostProcess") is True:
        yield Violation(
            "host-process",
            f"{path}.securityContext.windowsOptions.hostProcess",
            "remove hostProcess or set it to false",
        )
    if sc.get("procMount", "Default") != "Default":
        yield Violation(
            "proc-mount",
            f"{path}.securityContext.procMount",
            "remove procMount or set it to Default",
        )


def _host_ports(path: str, c: Obj, _pod: Obj, _level: Level) -> Iterator[Violation]:
    for i, port in enumerate(_list(c.get("ports"))):
        if _map(port).get("hostPort", 0) not in (0, None):
            yield Violation(
                "host-ports", f"{path}.ports[{i}].hostPort", "remove hostPort or set it to 0"
            )


def _capabilities(path: str, c: Obj, _pod: Obj, level: Level) -> Iterator[Violation]:
    caps = _map(_map(c.get("securityContext")).get("capabilities"))
    allowed = RESTRICTED_CAPABILITIES if level == "restricted" else BASELINE_CAPABILITIES
    for i, cap in enumerate(_list(caps.get("add"))):
        if _str(cap) not in allowed:
            yield Violation(
                "capabilities",
                f"{path}.securityContext.capabilities.add[{i}]",
                f"remove capability '{cap}'; {level} allows adding only "
                f"{', '.join(sorted(allowed))}",
            )
    if level == "restricted" and "ALL" not in _list(caps.get("drop")):
        yield Violation(
            "capabilities",
            f"{path}.securityContext.capabilities.drop",
            'set capabilities.drop to ["ALL"] (restricted)',
        )


def _container_context(path: str, c: Obj, pod: Obj, level: Level) -> Iterator[Violation]:
    sc = _map(c.get("securityContext"))
    where = f"{path}.securityContext"
    yield from _selinux(where, sc)
    yield from _seccomp_unconfined(where, sc)
    yield from _apparmor_field(where, sc)
    if level == "restricted":
        yield from _restricted_container(where, sc, _map(pod.get("securityContext")))


def _restricted_container(where: str, sc: Obj, pod_sc: Obj) -> Iterator[Violation]:
    if sc.get("allowPrivilegeEscalation") is not False:
        yield Violation(
            "allow-privilege-escalation",
            f"{where}.allowPrivilegeEscalation",
            "set allowPrivilegeEscalation to false (restricted)",
        )
    non_root = sc.get("runAsNonRoot")
    if non_root is False or (non_root is None and pod_sc.get("runAsNonRoot") is not True):
        yield Violation(
            "run-as-non-root",
            f"{where}.runAsNonRoot",
            "set runAsNonRoot to true in the container or the pod securityContext (restricted)",
        )
    if sc.get("runAsUser") == 0:
        yield Violation(
            "run-as-user",
            f"{where}.runAsUser",
            "set runAsUser to a non-zero user id or remove it (restricted)",
        )
    seccomp = _map(sc.get("seccompProfile")).get("type") or _map(pod_sc.get("seccompProfile")).get(
        "type"
    )
    if seccomp not in ("RuntimeDefault", "Localhost"):
        yield Violation(
            "seccomp",
            f"{where}.seccompProfile.type",
            "set seccompProfile.type to RuntimeDefault or Localhost in the container or the "
            "pod securityContext (restricted)",
        )


_CONTAINER_CHECKS: tuple[ContainerCheck, ...] = (
    _privileged,
    _host_ports,
    _capabilities,
    _container_context,
)


# ---- gridaware's rules ------------------------------------------------------------------


def _gridaware(pod: Obj, namespace: str, policy: Policy) -> Iterator[Violation]:
    if pod.get("nodeName"):
        yield Violation(
            "node-name",
            "spec.nodeName",
            "remove nodeName; use nodeSelector or affinity, gridaware chooses the cluster",
        )
    account = _str(pod.get("serviceAccountName") or pod.get("serviceAccount") or "")
    allowed = policy.allowed_service_accounts(namespace)
    if account and account != "default" and account not in allowed:
        yield Violation(
            "service-account",
            "spec.serviceAccountName",
            f"ServiceAccount '{account}' is not allowed in namespace {namespace}; remove "
            "serviceAccountName or use one of: "
            + (", ".join(sorted(allowed)) if allowed else "(none allowed, ask an admin)"),
        )
    for i, toleration in enumerate(_list(pod.get("tolerations"))):
        tol = _map(toleration)
        key = _str(tol.get("key") or "")
        if key in CONTROL_PLANE_TAINTS or (not key and tol.get("operator") == "Exists"):
            yield Violation(
                "control-plane-toleration",
                f"spec.tolerations[{i}]",
                "remove the toleration: control-plane taints (and tolerating every taint "
                "with an empty key and operator Exists) are refused",
            )
