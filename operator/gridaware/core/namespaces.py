"""Which member namespace a hub namespace's jobs run in.

Why a mapping at all: a tenant who may create GridAwareJobs in a hub namespace must not get
pods in a member namespace of the same name that belongs to someone else (``ingress-nginx``,
``kube-system``...), where they would run under that namespace's ServiceAccounts and quotas.
Admins decide the mapping (default 1:1); whatever the mapping says, gridaware never runs a
tenant's job in ``kube-*``, ``default`` or the operator's own namespace.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ALWAYS_REFUSED = frozenset({"default"})
REFUSED_PREFIX = "kube-"


class NamespaceRefusedError(ValueError):
    """Jobs of this hub namespace may not run in any member namespace; the message says why
    and what an admin can change."""


@dataclass(frozen=True)
class NamespaceMapping:
    """The admin's configuration: explicit hub -> member pairs, whether unmapped namespaces
    run 1:1, and the operator's own namespace (always refused)."""

    operator_namespace: str = "gridaware-system"
    mapping: Mapping[str, str] = field(default_factory=dict)
    identity_default: bool = True


def refused_reason(member_namespace: str, operator_namespace: str) -> str | None:
    """Why ``member_namespace`` may never hold tenants' jobs, or None when it may."""
    if member_namespace in ALWAYS_REFUSED:
        return f"'{member_namespace}' is shared by everything in a cluster"
    if member_namespace.startswith(REFUSED_PREFIX):
        return f"'{member_namespace}' is a Kubernetes system namespace (kube-*)"
    if member_namespace == operator_namespace:
        return f"'{member_namespace}' is gridaware's own namespace"
    if not DNS_LABEL.match(member_namespace):
        return f"'{member_namespace}' is not a valid namespace name"
    return None


def member_namespace(hub_namespace: str, config: NamespaceMapping | None = None) -> str:
    """The member namespace for jobs of ``hub_namespace``; raises NamespaceRefusedError."""
    config = config or NamespaceMapping()
    target = config.mapping.get(hub_namespace)
    if target is None:
        if not config.identity_default:
            raise NamespaceRefusedError(
                f"hub namespace {hub_namespace} is not mapped to a member namespace; "
                "ask an admin to add it to the namespace mapping"
            )
        target = hub_namespace
    reason = refused_reason(target, config.operator_namespace)
    if reason is not None:
        via = "" if target == hub_namespace else f" (mapped from {hub_namespace})"
        raise NamespaceRefusedError(
            f"jobs cannot run in member namespace {target}{via}: {reason}; submit the job in "
            "a team namespace or ask an admin to map this namespace to another one"
        )
    return target


def validate(config: NamespaceMapping) -> list[str]:
    """Problems of an admin configuration (targets that would always be refused)."""
    return [
        f"mapping {hub} -> {target}: {reason}"
        for hub, target in sorted(config.mapping.items())
        if (reason := refused_reason(target, config.operator_namespace)) is not None
    ]
