"""Joining a member cluster with least privilege: what the operator may do in a member, the
token it does it with, and the registration on the hub.

Why: the hub's credential for a member is the hub's power over it. An admin kubeconfig stored
on the hub makes every tenant who can steer the operator (and everyone who can read that
Secret) a cluster-admin of every member. ``join`` instead creates, on the member, a
ServiceAccount ``gridaware-operator`` in ``gridaware-system`` with exactly what the operator
uses:

- Jobs (batch) and JobSets (jobset.x-k8s.io): get, list, watch everywhere (the member agent
  watches gridaware's workloads in all namespaces); create, delete, patch only in the allowed
  namespaces;
- Pods: get, list, watch (capacity and "is the old copy gone" during a migration);
- Nodes: list, watch (capacity); Namespaces: get, create (a team namespace on first use);
- discovery and health (``/api``, ``/apis``, ``/version``, ``/readyz``...): get.

Nothing else: no Secrets, no Pods create, no RBAC. Which namespaces: either an explicit list
(``--namespace``, repeated: RoleBindings in each, created with Pod Security labels), or "any
namespace but the system ones" (a ClusterRoleBinding). In both modes a member-side
ValidatingAdmissionPolicy fences the identity out of ``kube-*``, ``default`` and
``gridaware-system`` (and, with a list, out of every namespace not on it), because RBAC cannot
express "every namespace except" and cannot restrict which namespace names may be created.

The credential is a long-lived token in a Secret of type ``kubernetes.io/service-account-token``
rather than a TokenRequest token: the hub runs unattended, and a TokenRequest token expires
(at most ``--service-account-max-token-expiration``), so someone holding member credentials
would have to renew it for ever, or the operator would need ``serviceaccounts/token`` and could
mint itself tokens, which is no tighter. The Secret-bound token is revoked by deleting the
Secret (or the ServiceAccount), and ``join --rotate`` replaces it: the old token stops working
at once and the hub's kubeconfig Secret is updated in the same call (the operator reconnects
when the Secret's resourceVersion changes). It is not subject to the legacy token clean-up,
which only removes auto-generated token Secrets.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import kubernetes.client
from kubernetes.client.exceptions import ApiException

from gridaware.api.v1alpha1 import API_VERSION
from gridaware.core import namespaces
from gridaware.core.podsecurity import Level, namespace_labels
from gridaware.k8s.clients import DEFAULT_TIMEOUT, ClusterUnreachableError, request_json

MEMBER_NAMESPACE = "gridaware-system"
SERVICE_ACCOUNT = "gridaware-operator"
TOKEN_PREFIX = "gridaware-operator-token-"  # noqa: S105 - a Secret's name, not a secret
TOKEN_LABEL = "gridaware.dev/member-token"  # noqa: S105 - a label
READ_ROLE = "gridaware-member"
JOBS_ROLE = "gridaware-member-jobs"
FENCE = "gridaware-member-fence"
FIELD_MANAGER = "gridaware-member-join"
HUB_SECRET_NAMESPACE = "gridaware-system"  # noqa: S105 - a namespace name
USERNAME = f"system:serviceaccount:{MEMBER_NAMESPACE}:{SERVICE_ACCOUNT}"
REFUSED_NAMESPACES = ("default", MEMBER_NAMESPACE)
PART_OF = {"app.kubernetes.io/part-of": "gridaware", "app.kubernetes.io/managed-by": "gridaware"}
JOBSET_GROUP = "jobset.x-k8s.io"  # multi-node jobs run as JobSets where the member has them
WRITE_VERBS = ["create", "get", "list", "watch", "delete", "patch"]
DISCOVERY = ["/api", "/api/*", "/apis", "/apis/*", "/version", "/healthz", "/livez", "/readyz"]


class JoinError(ValueError):
    """The member or the hub refused a step of the join, or the request asks for what is never
    allowed; the message says which and why (a ValueError: the CLI prints it as an error)."""


@dataclass(frozen=True)
class JoinRequest:
    """What an admin decides when joining a member."""

    name: str
    region: str
    grid_zone: str
    price_zone: str | None = None
    pue: float = 1.2
    namespaces: tuple[str, ...] = ()  # empty: any namespace but kube-*, default, gridaware-system
    pod_security: Level = "restricted"
    labels: dict[str, str] = field(default_factory=dict)
    hub_secret_namespace: str = HUB_SECRET_NAMESPACE


@dataclass(frozen=True)
class JoinResult:
    """What ``join`` did: the kubeconfig stored on the hub and where."""

    kubeconfig: dict[str, Any]
    secret: str
    secret_namespace: str
    rotated: bool


# ---- what is created on the member (pure) ------------------------------------------------


def _rule(groups: list[str], resources: list[str], verbs: list[str]) -> dict[str, Any]:
    return {"apiGroups": groups, "resources": resources, "verbs": verbs}


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(PART_OF)}
    if namespace:
        meta["namespace"] = namespace
    return meta | extra


def read_role() -> dict[str, Any]:
    """The cluster-wide part of the member role: watch Jobs, read Pods and Nodes, create
    Namespaces, discovery."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(READ_ROLE),
        "rules": [
            _rule(["batch"], ["jobs"], ["get", "list", "watch"]),
            _rule([JOBSET_GROUP], ["jobsets"], ["get", "list", "watch"]),
            _rule([""], ["pods"], ["get", "list", "watch"]),
            _rule([""], ["nodes"], ["list", "watch"]),
            _rule([""], ["namespaces"], ["get", "create"]),
            {"nonResourceURLs": DISCOVERY, "verbs": ["get"]},
        ],
    }


def jobs_role() -> dict[str, Any]:
    """Writing Jobs; bound per allowed namespace (or cluster-wide, fenced by the policy)."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": _meta(JOBS_ROLE),
        "rules": [
            _rule(["batch"], ["jobs"], WRITE_VERBS),
            _rule([JOBSET_GROUP], ["jobsets"], WRITE_VERBS),
        ],
    }


def _subject() -> list[dict[str, str]]:
    return [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": MEMBER_NAMESPACE}]


def _binding(kind: str, name: str, role: str, namespace: str | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": _meta(name, namespace),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": _subject(),
    }


def fence(namespaces: Sequence[str]) -> list[dict[str, Any]]:
    """A member-side ValidatingAdmissionPolicy (and its binding) that refuses the operator's
    identity any Job write or Namespace creation outside its allowance."""
    allowed = json.dumps(list(namespaces))
    refused = json.dumps(list(REFUSED_NAMESPACES))
    rule = (
        f"{allowed}.size() > 0 ? variables.ns in {allowed} : "
        f"!(variables.ns.startsWith('kube-') || variables.ns in {refused})"
    )
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": _meta(FENCE),
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": ["batch"],
                        "apiVersions": ["*"],
                        "resources": ["jobs"],
                        "operations": ["CREATE", "UPDATE", "DELETE"],
                    },
                    {
                        "apiGroups": [JOBSET_GROUP],
                        "apiVersions": ["*"],
                        "resources": ["jobsets"],
                        "operations": ["CREATE", "UPDATE", "DELETE"],
                    },
                    {
                        "apiGroups": [""],
                        "apiVersions": ["*"],
                        "resources": ["namespaces"],
                        "operations": ["CREATE"],
                    },
                ]
            },
            "matchConditions": [
                {
                    "name": "operator-identity",
                    "expression": f"request.userInfo.username == '{USERNAME}'",
                }
            ],
            "variables": [
                {
                    "name": "ns",
                    "expression": "request.resource.resource == 'namespaces' ? "
                    "object.metadata.name : request.namespace",
                }
            ],
            "validations": [
                {
                    "expression": rule,
                    "messageExpression": f"variables.ns.startsWith('kube-') || variables.ns in "
                    f"{refused} ? 'gridaware never uses namespace ' + variables.ns + ' (kube-*, "
                    "default and gridaware-system are refused)' : 'gridaware may not use "
                    "namespace ' + variables.ns + ' in this member: ask the member admin to "
                    "re-run gridaware member join with --namespace ' + variables.ns",
                    "reason": "Forbidden",
                }
            ],
        },
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": _meta(FENCE),
        "spec": {"policyName": FENCE, "validationActions": ["Deny"]},
    }
    return [policy, binding]


def refused_namespaces(request: JoinRequest) -> list[str]:
    """Why requested namespaces can never be allowed (pure); [] when all may be."""
    return [
        f"--namespace {ns}: {why}"
        for ns in request.namespaces
        if (why := namespaces.refused_reason(ns, MEMBER_NAMESPACE)) is not None
    ]


def member_manifests(request: JoinRequest) -> list[dict[str, Any]]:
    """Everything ``join`` creates on the member, in order (pure); JoinError for a namespace
    that may never hold tenants' jobs."""
    problems = refused_namespaces(request)
    if problems:
        raise JoinError("; ".join(problems))
    docs: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(MEMBER_NAMESPACE)},
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(SERVICE_ACCOUNT, MEMBER_NAMESPACE),
        },
        read_role(),
        jobs_role(),
        _binding("ClusterRoleBinding", READ_ROLE, READ_ROLE),
        *fence(request.namespaces),
    ]
    if not request.namespaces:
        docs.append(_binding("ClusterRoleBinding", JOBS_ROLE, JOBS_ROLE))
    for ns in request.namespaces:
        meta = _meta(ns)
        meta["labels"] |= namespace_labels(request.pod_security)
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": meta})
        docs.append(_binding("RoleBinding", JOBS_ROLE, JOBS_ROLE, ns))
    return docs


def token_secret(name: str) -> dict[str, Any]:
    """A long-lived token Secret (the token controller fills in ``token`` and ``ca.crt``).

    Each token gets a new name: a legacy token is a JWT of (ServiceAccount, Secret name), so a
    Secret re-created under the same name would carry the very same token."""
    annotations = {"kubernetes.io/service-account.name": SERVICE_ACCOUNT}
    meta = _meta(name, MEMBER_NAMESPACE, annotations=annotations)
    meta["labels"][TOKEN_LABEL] = "true"
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/service-account-token",
        "metadata": meta,
    }


def token_kubeconfig(name: str, server: str, ca_pem: bytes, token: str) -> dict[str, Any]:
    """A kubeconfig with the server, its CA and the token inline: nothing to run, no files."""
    user = f"{name}-gridaware"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }


def hub_manifests(request: JoinRequest, kubeconfig: dict[str, Any]) -> list[dict[str, Any]]:
    """The hub side: its secrets namespace, the kubeconfig Secret and the GridCluster (pure)."""
    secret = f"{request.name}-kubeconfig"
    encoded = base64.b64encode(json.dumps(kubeconfig).encode()).decode()
    spec: dict[str, Any] = {
        "region": request.region,
        "gridZone": request.grid_zone,
        "pue": request.pue,
        "kubeconfigSecretRef": {
            "namespace": request.hub_secret_namespace,
            "name": secret,
            "key": "kubeconfig",
        },
    }
    if request.price_zone:
        spec["priceZone"] = request.price_zone
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(request.hub_secret_namespace)},
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": _meta(secret, request.hub_secret_namespace),
            "data": {"kubeconfig": encoded},
        },
        {
            "apiVersion": API_VERSION,
            "kind": "GridCluster",
            "metadata": {"name": request.name, "labels": dict(request.labels)},
            "spec": spec,
        },
    ]


# ---- applying (k8s) -------------------------------------------------------------------


def resource_path(doc: dict[str, Any]) -> str:
    """The REST path of a manifest's object (pure)."""
    api_version, kind = doc["apiVersion"], doc["kind"]
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    plural = kind.lower()
    plural = plural[:-1] + "ies" if plural.endswith("y") else plural + "s"
    ns = doc["metadata"].get("namespace")
    scope = f"/namespaces/{ns}" if ns else ""
    return f"{base}{scope}/{plural}/{doc['metadata']['name']}"


def apply(client: kubernetes.client.ApiClient, doc: dict[str, Any]) -> None:
    """Server-side apply of one manifest (create or update; idempotent)."""
    try:
        request_json(
            client,
            "PATCH",
            resource_path(doc),
            doc,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
            content_type="application/apply-patch+yaml",  # JSON is YAML
            answer=False,
        )
    except ApiException as exc:
        raise JoinError(
            f"cannot apply {doc['kind']} {doc['metadata']['name']}: {_why(exc)}"
        ) from None


def _why(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except ValueError:
        return str(exc.reason)


def _token(client: kubernetes.client.ApiClient, name: str, timeout: float) -> tuple[str, bytes]:
    """The token and CA the token controller put into token Secret ``name``."""
    core = kubernetes.client.CoreV1Api(client)
    deadline = time.monotonic() + timeout
    while True:
        secret = core.read_namespaced_secret(
            name, MEMBER_NAMESPACE, _request_timeout=DEFAULT_TIMEOUT
        )
        data = secret.data or {}
        if data.get("token") and data.get("ca.crt"):
            return base64.b64decode(data["token"]).decode(), base64.b64decode(data["ca.crt"])
        if time.monotonic() > deadline:
            raise JoinError(
                f"the member's token controller did not fill Secret {MEMBER_NAMESPACE}/{name} "
                f"within {timeout:.0f}s; is kube-controller-manager running with "
                "--service-account-private-key-file?"
            )
        time.sleep(0.3)


def token_secrets(client: kubernetes.client.ApiClient) -> list[str]:
    """Names of the operator's token Secrets on the member, oldest first."""
    items = (
        kubernetes.client.CoreV1Api(client)
        .list_namespaced_secret(
            MEMBER_NAMESPACE, label_selector=TOKEN_LABEL, _request_timeout=DEFAULT_TIMEOUT
        )
        .items
    )
    items.sort(key=lambda s: str(s.metadata.creation_timestamp if s.metadata else ""))
    return [str(s.metadata.name) for s in items if s.metadata]


def _delete_secret(client: kubernetes.client.ApiClient, name: str) -> None:
    try:
        kubernetes.client.CoreV1Api(client).delete_namespaced_secret(
            name, MEMBER_NAMESPACE, _request_timeout=DEFAULT_TIMEOUT
        )
    except ApiException as exc:
        if exc.status != 404:
            raise


@dataclass(frozen=True)
class MemberToken:
    """The token to store on the hub, its CA, and the token Secrets it replaces."""

    token: str
    ca: bytes
    replaced: tuple[str, ...]


def install_member(
    client: kubernetes.client.ApiClient, request: JoinRequest, rotate: bool = False
) -> MemberToken:
    """Create the member side (idempotent). The existing token is kept unless ``rotate``: then
    a new token Secret is made and the old ones are returned, to be deleted (revoked) once the
    hub holds the new token."""
    for doc in member_manifests(request):
        apply(client, doc)
    if request.namespaces:  # switching from "any namespace": drop the cluster-wide write grant
        _ignore_404(
            lambda: kubernetes.client.RbacAuthorizationV1Api(client).delete_cluster_role_binding(
                JOBS_ROLE, _request_timeout=DEFAULT_TIMEOUT
            )
        )
    existing = token_secrets(client)
    if existing and not rotate:
        name, replaced = existing[-1], existing[:-1]
    else:
        name, replaced = TOKEN_PREFIX + secrets.token_hex(3), existing
        apply(client, token_secret(name))
    token, ca = _token(client, name, timeout=30)
    return MemberToken(token, ca, tuple(replaced))


def join(
    member: kubernetes.client.ApiClient,
    hub: kubernetes.client.ApiClient,
    request: JoinRequest,
    server: str | None = None,
    rotate: bool = False,
) -> JoinResult:
    """Least-privilege member side, then its token kubeconfig and GridCluster on the hub.
    ``server`` is the member API URL as the operator reaches it (default: as this client)."""
    member_token = install_member(member, request, rotate)
    url = server or str(member.configuration.host)
    kubeconfig = token_kubeconfig(request.name, url, member_token.ca, member_token.token)
    if not _token_works(url, member_token.ca, member_token.token):
        raise JoinError(f"the new token is refused by {url}; check --server")
    for doc in hub_manifests(request, kubeconfig):
        apply(hub, doc)
    for name in member_token.replaced:  # the hub has the new token: revoke the old ones
        _delete_secret(member, name)
    return JoinResult(
        kubeconfig=kubeconfig,
        secret=f"{request.name}-kubeconfig",
        secret_namespace=request.hub_secret_namespace,
        rotated=bool(member_token.replaced),
    )


def token_client(kubeconfig: dict[str, Any]) -> kubernetes.client.ApiClient:
    """A client from a token kubeconfig built by ``token_kubeconfig`` (for checks and tests)."""
    from gridaware.k8s import clients  # noqa: PLC0415

    return clients.from_kubeconfig(kubeconfig)


def _token_works(server: str, ca: bytes, token: str) -> bool:
    """True when the member accepts the token (a discovery call)."""
    from gridaware.k8s import clients  # noqa: PLC0415

    client = token_client(token_kubeconfig("check", server, ca, token))
    try:
        status, _ = clients.raw_get(client, "/api")
    except ClusterUnreachableError:
        return False
    finally:
        client.close()  # type: ignore[no-untyped-call]
    return status == 200


def leave(member: kubernetes.client.ApiClient, hub: kubernetes.client.ApiClient, name: str) -> None:
    """Undo ``join``: the GridCluster and kubeconfig Secret on the hub, then the member side
    (the token stops working with its Secret)."""
    custom = kubernetes.client.CustomObjectsApi(hub)
    core_hub = kubernetes.client.CoreV1Api(hub)
    group, version = API_VERSION.split("/")
    _ignore_404(lambda: custom.delete_cluster_custom_object(group, version, "gridclusters", name))
    _ignore_404(
        lambda: core_hub.delete_namespaced_secret(f"{name}-kubeconfig", HUB_SECRET_NAMESPACE)
    )
    rbac = kubernetes.client.RbacAuthorizationV1Api(member)
    admission = kubernetes.client.AdmissionregistrationV1Api(member)
    for token in token_secrets(member):
        _delete_secret(member, token)
    for role in (READ_ROLE, JOBS_ROLE):
        _ignore_404(lambda r=role: rbac.delete_cluster_role_binding(r))
        _ignore_404(lambda r=role: rbac.delete_cluster_role(r))
    _ignore_404(lambda: admission.delete_validating_admission_policy_binding(FENCE))
    _ignore_404(lambda: admission.delete_validating_admission_policy(FENCE))
    _ignore_404(
        lambda: kubernetes.client.CoreV1Api(member).delete_namespaced_service_account(
            SERVICE_ACCOUNT, MEMBER_NAMESPACE
        )
    )


def _ignore_404(call: Any) -> None:
    try:
        call()
    except ApiException as exc:
        if exc.status != 404:
            raise
