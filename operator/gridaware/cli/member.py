"""``gridaware member join|leave``: an admin's one command to connect a member cluster to the
hub with least privilege (see ``gridaware.k8s.membership`` for what the operator may do there).

Why a command rather than a ``gridaware-member`` chart: joining touches two clusters (the
member side, then a kubeconfig Secret and a GridCluster on the hub) and needs a token that only
exists after the member side is installed; a chart installs into one cluster and cannot carry
the token across. The admin's own kubeconfigs are used once, on this machine, and never
stored: the hub keeps only the member's ServiceAccount token.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from gridaware.api import regions


def _labels(pairs: list[str] | None) -> dict[str, str]:
    labels = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--label {pair}: expected key=value")
        labels[key] = value
    return labels


def _clients(args: argparse.Namespace) -> tuple[Any, Any]:
    from gridaware.k8s import clients  # noqa: PLC0415

    member = clients.client_for(
        clients.hub_configuration(args.member_kubeconfig, args.member_context)
    )
    hub = clients.client_for(clients.hub_configuration(args.hub_kubeconfig, args.hub_context))
    return member, hub


def _join(args: argparse.Namespace) -> int:
    from gridaware.k8s import membership  # noqa: PLC0415

    zone = args.grid_zone or regions.lookup(args.region).grid_zone
    request = membership.JoinRequest(
        name=args.name,
        region=args.region,
        grid_zone=zone,
        price_zone=args.price_zone,
        pue=args.pue,
        namespaces=tuple(args.namespace or ()),
        pod_security=args.pod_security,
        labels={"topology.kubernetes.io/region": args.region} | _labels(args.label),
    )
    member, hub = _clients(args)
    result = membership.join(member, hub, request, server=args.server, rotate=args.rotate)
    where = ", ".join(request.namespaces) or "any namespace but kube-*, default, gridaware-system"
    print(
        f"joined {args.name}: ServiceAccount {membership.MEMBER_NAMESPACE}/"
        f"{membership.SERVICE_ACCOUNT} on the member (Jobs in {where}); "
        f"hub Secret {result.secret_namespace}/{result.secret} and GridCluster {args.name}"
        + ("; the previous token is revoked" if result.rotated else "")
    )
    return 0


def _leave(args: argparse.Namespace) -> int:
    from gridaware.k8s import membership  # noqa: PLC0415

    member, hub = _clients(args)
    membership.leave(member, hub, args.name)
    print(f"{args.name} left: GridCluster, hub Secret and member token removed")
    return 0


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--member-kubeconfig", type=Path, help="an admin kubeconfig of the member")
    parser.add_argument("--member-context", help="context of the member in that kubeconfig")
    parser.add_argument("--hub-kubeconfig", type=Path, help="a kubeconfig of the hub")
    parser.add_argument("--hub-context", help="context of the hub in that kubeconfig")
    parser.add_argument("--name", required=True, help="the GridCluster name")


def add(sub: Any) -> None:
    member = sub.add_parser("member", help="join a member cluster to the hub with least privilege")
    actions = member.add_subparsers(dest="action", required=True)
    join = actions.add_parser(
        "join",
        help="create the operator's ServiceAccount and role on the member, and register its "
        "token kubeconfig and a GridCluster on the hub",
    )
    _common(join)
    join.add_argument("--region", required=True, help="grid region, e.g. eu-central")
    join.add_argument("--grid-zone", help="carbon feed zone (default: the region's)")
    join.add_argument("--price-zone", help="day-ahead market zone (default: the grid zone)")
    join.add_argument("--pue", type=float, default=1.2, help="power usage effectiveness")
    join.add_argument(
        "--namespace",
        action="append",
        help="a member namespace the operator may run Jobs in (repeatable; default: any "
        "namespace but kube-*, default and gridaware-system)",
    )
    join.add_argument(
        "--pod-security",
        choices=["restricted", "baseline"],
        default="restricted",
        help="Pod Security level enforced on the --namespace namespaces",
    )
    join.add_argument("--label", action="append", help="GridCluster label key=value (repeatable)")
    join.add_argument("--server", help="member API URL as the operator reaches it")
    join.add_argument("--rotate", action="store_true", help="replace (revoke) the token")
    join.set_defaults(func=_join)
    leave = actions.add_parser("leave", help="remove the member's registration and token")
    _common(leave)
    leave.set_defaults(func=_leave)
