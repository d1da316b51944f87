"""``gridaware status``: clusters (signals, capacity) and jobs (where, why), from the hub."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path
from typing import Any

from gridaware.cli.output import age, table


def _since(stamp: str | None) -> str:
    if not stamp:
        return "-"
    then = dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return age((dt.datetime.now(dt.UTC) - then).total_seconds())


def _job_state(st: dict[str, Any], why: str) -> str:
    """Phase plus what is going on: a deferral with its planned start, a migration step."""
    mig = st.get("migration")
    if mig:
        return f"Migrating ({mig['step']}: {mig['source']} -> {mig['target']})"
    deferral = st.get("deferral")
    if deferral and _condition(st, "Deferred").get("status") == "True":
        return (
            f"Deferred (until {deferral['plannedStart']} in {deferral['cluster']}, "
            f"{deferral['expectedCarbon']:.0f} g/kWh)"
        )
    return str(st.get("phase", "Pending")) + (f" ({why})" if why else "")


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def _status(args: argparse.Namespace) -> int:
    from gridaware.k8s import clients, hub  # noqa: PLC0415

    client = clients.client_for(clients.hub_configuration(args.kubeconfig, args.context))
    jobs = []
    for body in sorted(
        hub.list_jobs(client), key=lambda b: (b["metadata"]["namespace"], b["metadata"]["name"])
    ):
        st = body.get("status") or {}
        sched: dict[str, Any] = next(
            (c for c in st.get("conditions", []) if c["type"] == "Scheduled"), {}
        )
        why = "" if sched.get("reason") in (None, "Placed", "Adopted") else sched["reason"]
        carbon = st.get("carbonAtPlacement")
        jobs.append(
            {
                "JOB": f"{body['metadata']['namespace']}/{body['metadata']['name']}",
                "CLUSTER": st.get("cluster", "-"),
                "REGION": st.get("region", "-"),
                "STATE": _job_state(st, why),
                "gCO2/kWh AT PLACEMENT": "-" if carbon is None else f"{carbon:.0f}",
                "MOVES": str(len(st.get("migrations") or [])),
                "AGE": _since(body["metadata"].get("creationTimestamp")),
            }
        )
    clusters = []
    for body in sorted(hub.list_clusters(client), key=lambda b: b["metadata"]["name"]):
        spec, st = body.get("spec") or {}, body.get("status") or {}
        reach: dict[str, Any] = next(
            (c for c in st.get("conditions", []) if c["type"] == "Reachable"), {}
        )
        free = st.get("free") or {}
        carbon, price = st.get("carbon") or {}, st.get("price") or {}
        clusters.append(
            {
                "CLUSTER": body["metadata"]["name"],
                "REGION": spec.get("region", "-"),
                "ZONE": spec.get("gridZone", "-"),
                "REACHABLE": reach.get("status", "Unknown"),
                "FREE CPU/MEM/GPU": (
                    f"{free.get('cpu', 0):g}/{free.get('memory', 0) / 2**30:.0f}Gi/"
                    f"{free.get('gpu', 0):g}"
                )
                if free
                else "-",
                "gCO2/kWh": f"{carbon['value']:.0f}{' (stale)' if carbon.get('stale') else ''}"
                if carbon
                else "-",
                "PRICE": f"{price['value']:.1f} {price['unit']}" if price else "-",
                "JOBS": str(st.get("jobs", 0)),
            }
        )
    print(table(clusters) if clusters else "no GridClusters registered")
    print()
    print(table(jobs) if jobs else "no GridAwareJobs")
    return 0


def add(sub: Any) -> None:
    status = sub.add_parser("status", help="clusters (signals, capacity) and jobs (where, why)")
    status.add_argument("--kubeconfig", type=Path, help="hub kubeconfig")
    status.add_argument("--context", help="kubeconfig context of the hub")
    status.set_defaults(func=_status)
