"""``gridaware report``: green electricity accounting a facility can publish, per cluster and
for the fleet, from the accounts in the hub's job statuses (``core.reporting``).

The same figures as a table on the terminal, CSV or JSON for tools, and PNG charts for
people: hourly load against carbon-free supply, and monthly emissions by method (location-
and market-based side by side, never summed).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

from gridaware.api.regions import REGIONS
from gridaware.api.v1alpha1 import GridAwareJobStatus, GridClusterSpec, parse_time, rfc3339
from gridaware.cli.output import table
from gridaware.core import cfe, reporting

HOUR = 3600.0


def views(bodies: list[dict[str, Any]]) -> list[reporting.JobView]:
    """Job views of GridAwareJob bodies (as the hub or ``kubectl get -o json`` gives them)."""
    out = []
    for body in bodies:
        meta = body.get("metadata") or {}
        out.append(
            reporting.JobView(
                str(meta.get("namespace", "")),
                str(meta.get("name", "")),
                dict(meta.get("labels") or {}),
                GridAwareJobStatus.model_validate(body.get("status") or {}),
            )
        )
    return out


def clusters_of(bodies: list[dict[str, Any]]) -> dict[str, GridClusterSpec]:
    return {
        str(b["metadata"]["name"]): GridClusterSpec.model_validate(b.get("spec") or {})
        for b in bodies
    }


def _span(jobs: list[reporting.JobView], wanted: reporting.Scope) -> tuple[float, float]:
    """The hours the accounts the filters select cover (the default period)."""
    starts, ends = [], []
    for j in jobs:
        if not wanted.wants(j):
            continue
        for s in j.status.account.segments if j.status.account else []:
            if wanted.cluster is None or s.cluster == wanted.cluster:
                starts.append(parse_time(s.start))
                ends.append(parse_time(s.end))
    if not starts:
        return 0.0, 0.0
    return math.floor(min(starts) / HOUR) * HOUR, math.ceil(max(ends) / HOUR) * HOUR


def scope_of(args: argparse.Namespace, jobs: list[reporting.JobView]) -> reporting.Scope:
    wanted = reporting.Scope(
        0.0,
        0.0,
        args.namespace,
        args.cluster,
        tuple(reporting.parse_selector(args.selector or "")),
    )
    first, last = _span(jobs, wanted)
    start = parse_time(args.start) if args.start else first
    end = parse_time(args.end) if args.end else max(last, start + HOUR)
    if end <= start:
        raise ValueError("--to must be after --from")
    if (end - start) / HOUR > 24 * 400:
        raise ValueError("a report covers at most 400 days; choose a period with --from and --to")
    return dataclasses.replace(wanted, start=start, end=end)


def make(
    job_bodies: list[dict[str, Any]],
    cluster_bodies: list[dict[str, Any]],
    args: argparse.Namespace,
) -> reporting.Report:
    jobs = views(job_bodies)
    scope = scope_of(args, jobs)
    specs = clusters_of(cluster_bodies)
    offsets = {
        name: REGIONS[s.region].timezone_offset_hours
        for name, s in specs.items()
        if s.region in REGIONS
    }
    traces = {}
    for name, s in specs.items():
        for c in s.green_contracts:
            if c.trace is not None and c.trace.file is not None:
                path = Path(c.trace.file)
                if path.is_file():
                    traces[(name, c.name)] = cfe.parse_trace_csv(path.read_text(encoding="utf-8"))
    delivered = reporting.contracts_delivered(specs, scope, offsets, traces)
    return reporting.build(scope, jobs, delivered)


# --- output ---------------------------------------------------------------------------------


def rows(report: reporting.Report) -> list[dict[str, Any]]:
    return [
        *(report.clusters[k].as_dict() for k in sorted(report.clusters)),
        report.fleet.as_dict(),
    ]


def _num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def text(report: reporting.Report) -> str:
    s = report.scope
    lines = [
        f"period {rfc3339(s.start)} to {rfc3339(s.end)} (grid time)"
        + (f", namespace {s.namespace}" if s.namespace else "")
        + (f", cluster {s.cluster}" if s.cluster else "")
    ]
    shown = []
    for r in rows(report):
        cfe_text = _num(r["cfe_percent"]) + ("*" if r["cfe_estimated"] else "")
        shown.append(
            {
                "CLUSTER": str(r["cluster"]),
                "JOBS": str(r["jobs"]),
                "ENERGY kWh": _num(r["energy_kwh"], 2),
                "CFE %": cfe_text,
                "CONTRACT kWh (UNUSED)": f"{_num(r['contract_kwh'], 2)} "
                f"({_num(r['contract_unused_kwh'], 2)})",
                "LOCATION kgCO2e": _num(r["carbon_location_kg"], 3),
                "MARKET kgCO2e": _num(r["carbon_market_kg"], 3),
                "COST USD": _num(r["cost_usd"], 2),
                "SAVED kgCO2e / USD": f"{_num(r['saved_location_kg'], 3)} / "
                f"{_num(r['saved_cost_usd'], 2)}",
                "DEFER/MOVE/PAUSE/EVENT": f"{r['deferrals']}/{r['migrations']}/{r['pauses']}/"
                f"{r['grid_events_served']}",
            }
        )
    lines.append(table(shown))
    lines.append(
        "location- and market-based emissions are two methods, never added; "
        "saved: against running at once in each job's home cluster"
    )
    if report.fleet.cfe_estimated:
        lines.append(
            "* the grid's carbon-free share is estimated from its intensity for some hours "
            "(no renewable-share feed)"
        )
    return "\n".join(lines)


def to_csv(report: reporting.Report) -> str:
    out = io.StringIO()
    data = rows(report)
    writer = csv.DictWriter(out, fieldnames=list(data[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(data)
    return out.getvalue()


def to_json(report: reporting.Report) -> str:
    s = report.scope
    doc = {
        "period": {"start": rfc3339(s.start), "end": rfc3339(s.end)},
        "filters": {
            "namespace": s.namespace,
            "cluster": s.cluster,
            "selector": [f"{r.key}{r.op}{r.value}" for r in s.selector],
        },
        "clusters": rows(report)[:-1],
        "fleet": report.fleet.as_dict(),
        "hourly": {
            "start": rfc3339(s.hour0),
            "load_kwh": [round(float(v), 6) for v in report.hourly_load_kwh],
            "cfe_kwh": [round(float(v), 6) for v in report.hourly_cfe_kwh],
            "contracts_delivered_kwh": [round(float(v), 6) for v in report.hourly_delivered_kwh],
        },
        "monthly_kg": {
            m: {"location": round(loc / 1000, 6), "market": round(mkt / 1000, 6)}
            for m, (loc, mkt) in sorted(report.monthly.items())
        },
    }
    return json.dumps(doc, indent=2)


def plots(report: reporting.Report, directory: Path) -> list[Path]:
    """hourly.png (load against carbon-free supply) and monthly.png (emissions by method)."""
    import matplotlib  # noqa: PLC0415 - only for --plots

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    directory.mkdir(parents=True, exist_ok=True)
    hours = report.hourly_load_kwh.size
    x = [report.scope.hour0 / HOUR + i for i in range(hours)]
    x0 = x[0] if x else 0.0
    fig, ax = plt.subplots(figsize=(10, 4))
    rel = [(v - x0) for v in x]
    ax.bar(rel, report.hourly_load_kwh, width=1.0, align="edge", color="#bbbbbb", label="load")
    ax.bar(
        rel, report.hourly_cfe_kwh, width=1.0, align="edge", color="#2e8b57", label="carbon-free"
    )
    if report.hourly_delivered_kwh.any():
        ax.step(
            [*rel, rel[-1] + 1],
            [*report.hourly_delivered_kwh, report.hourly_delivered_kwh[-1]],
            where="post",
            color="#daa520",
            label="contracts delivered",
        )
    ax.set_xlabel(f"hours from {rfc3339(report.scope.hour0)} (UTC, grid time)")
    ax.set_ylabel("kWh per hour")
    pct = report.fleet.cfe_percent
    ax.set_title(f"Hourly load and carbon-free supply (CFE {_num(pct)} %)")
    ax.legend()
    fig.tight_layout()
    hourly = directory / "hourly.png"
    fig.savefig(hourly, dpi=100)
    plt.close(fig)

    months = sorted(report.monthly)
    fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(months) + 2), 4))
    idx = list(range(len(months)))
    loc = [report.monthly[m][0] / 1000 for m in months]
    mkt = [report.monthly[m][1] / 1000 for m in months]
    ax.bar([i - 0.2 for i in idx], loc, width=0.4, color="#8b4513", label="location-based")
    ax.bar([i + 0.2 for i in idx], mkt, width=0.4, color="#4682b4", label="market-based")
    ax.set_xticks(idx, months)
    ax.set_xlim(-0.8, len(months) - 0.2)
    ax.set_ylabel("kgCO2e")
    ax.set_title("Emissions by month and method (never added)")
    ax.legend()
    fig.tight_layout()
    monthly = directory / "monthly.png"
    fig.savefig(monthly, dpi=100)
    plt.close(fig)
    return [hourly, monthly]


def _load(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if args.jobs_file is not None:
        jobs = json.loads(Path(args.jobs_file).read_text(encoding="utf-8")).get("items", [])
        clusters = []
        if args.clusters_file is not None:
            doc = json.loads(Path(args.clusters_file).read_text(encoding="utf-8"))
            clusters = doc.get("items", [])
        return list(jobs), list(clusters)
    from gridaware.k8s import archive, clients, hub  # noqa: PLC0415

    client = clients.client_for(clients.hub_configuration(args.kubeconfig, args.context))
    live = hub.list_jobs(client)
    kept: list[dict[str, Any]] = [] if args.no_archive else archive.load(client, args.archive)
    jobs = [dict(b) for b in reporting.merge_archive([*live], [*kept])]
    return jobs, hub.list_clusters(client)


def _report(args: argparse.Namespace) -> int:
    jobs, clusters = _load(args)
    report = make(jobs, clusters, args)
    rendered = {"table": text, "csv": to_csv, "json": to_json}[args.output](report)
    if args.file is not None:
        Path(args.file).write_text(rendered + ("" if rendered.endswith("\n") else "\n"))
    else:
        sys.stdout.write(rendered + ("" if rendered.endswith("\n") else "\n"))
    if args.plots is not None:
        for path in plots(report, Path(args.plots)):
            print(f"wrote {path}", file=sys.stderr)
    return 0


def add(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="energy, CFE %, emissions (location/market), cost and savings per cluster",
        description="Green electricity accounting from the job accounts on the hub: per "
        "cluster and for the fleet. A run segment counts in the period in which it started.",
    )
    p.add_argument("--from", dest="start", help="period start, RFC 3339 (default: first account)")
    p.add_argument("--to", dest="end", help="period end, RFC 3339 (default: last account)")
    p.add_argument("-n", "--namespace", help="only jobs in this namespace")
    p.add_argument("--cluster", help="only this member cluster")
    p.add_argument("-l", "--selector", help="only jobs with these labels, e.g. team=ml,tier!=x")
    p.add_argument("-o", "--output", choices=("table", "csv", "json"), default="table")
    p.add_argument("--file", type=Path, help="write the output here instead of stdout")
    p.add_argument("--plots", type=Path, help="directory for hourly.png and monthly.png")
    p.add_argument("--kubeconfig", type=Path, help="hub kubeconfig")
    p.add_argument("--context", help="kubeconfig context of the hub")
    p.add_argument(
        "--jobs-file", type=Path, help="read GridAwareJobs from a JSON list (kubectl get -o json)"
    )
    p.add_argument(
        "--clusters-file", type=Path, help="GridClusters as a JSON list, with --jobs-file"
    )
    p.add_argument(
        "--archive",
        default="gridaware-system",
        help="namespace of the account archive (jobs deleted since they finished)",
    )
    p.add_argument("--no-archive", action="store_true", help="only the GridAwareJobs that exist")
    p.set_defaults(func=_report)
