"""The operator as an OpenADR 3 VEN, end to end: a real VTN (openleadr-vtn with its own
PostgreSQL, tools/openadr/vtn.sh) and the lab's hub. The operator runs with ``--openadr-*``
options; the utility enrols the VEN that the operator registered, publishes an event, and the
event becomes a GridEvent on the hub; while it is active, and once at its end, the operator
posts reports of the achieved kW, which the utility reads back from the VTN. An event the
utility deletes before it starts is cancelled on the hub. A PRICE event for the zone is the
GridCluster's price while it lasts, and the configured one again once it is withdrawn.

Real time (no replay): the VTN's event times are wall-clock times. The chart's ``openadr.*``
values are checked here too, with ``helm template`` (no cluster).
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes.client
import pytest

from gridaware.api.v1alpha1 import parse_time
from gridaware.signals.openadr import parse_duration, parse_start
from tests.conftest import Lab, Operator, cluster_ready, kubectl, wait_for
from tests.e2e.test_helm import CHART, helm_cli, kinds, operator_container, rendered
from tests.e2e.test_openadr import Vtn, vtn  # noqa: F401 - the real VTN, a session fixture
from tests.e2e.test_operator import apply, gaj, status

pytestmark = pytest.mark.slow
VEN = "gridaware-operator-e2e"
INTERVAL = 2.0  # wall seconds between polls and reports
WINDOW = 24  # seconds the event lasts
KW = 1.2  # 1000 W per replica x PUE 1.2 (the lab's default)


@pytest.fixture
def ven_operator(
    lab: Lab,
    operator: Operator,
    vtn: Vtn,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> Iterator[Operator]:
    """The lab's operator with the VEN options (the session operator is stopped meanwhile)."""
    creds = tmp_path / "openadr"
    creds.mkdir()
    (creds / "clientId").write_text(vtn.ven[0])
    (creds / "clientSecret").write_text(vtn.ven[1])
    creds.chmod(0o700)
    args = ["--probe-interval", "2", "--retry-delay", "2", "--openadr-url", vtn.url]
    args += ["--openadr-credentials", str(creds), "--openadr-ven-name", VEN]
    args += ["--openadr-interval", str(INTERVAL)]
    op = Operator(lab, tmp_path / "operator", args=args, name="ven")
    operator.stop()
    try:
        op.start()
        for m in lab.members:
            wait_for(lambda m=m: cluster_ready(lab, m), f"{m} ready", timeout=60)
        yield op
    finally:
        op.stop()
        kubectl(
            lab,
            "delete",
            "gridevents",
            "-l",
            "gridaware.dev/source=openadr",
            "--wait=false",
            check=False,
        )  # the session operator lets them go (its finalizer)
        operator.start()


def gridevent(lab: Lab, name: str) -> dict[str, Any] | None:
    api = kubernetes.client.CustomObjectsApi(lab.client("hub"))
    try:
        body = api.get_cluster_custom_object("gridaware.dev", "v1alpha1", "gridevents", name)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return dict(body)


def enrolled(utility: Vtn, targets: list[str]) -> bool:
    """Enrol the VEN the operator registered for ``targets``; False until it has registered."""
    vens = utility.bl("GET", "/vens", venName=VEN)
    if not vens:
        return False
    ven = vens[0]
    body = {"objectType": "BL_VEN_REQUEST", "clientID": ven["clientID"], "venName": VEN}
    utility.bl("PUT", f"/vens/{ven['id']}", {**body, "targets": targets})
    return True


def publish(
    utility: Vtn, program_id: str, start: dt.datetime, seconds: int, level: int
) -> dict[str, Any]:
    """The utility publishes a SIMPLE event for DE-LU; the VTN's answer."""
    body = {
        "objectType": "EVENT",
        "programID": program_id,
        "eventName": f"level {level}",
        "targets": ["zone_DE-LU"],
        "intervalPeriod": {"start": start.isoformat(), "duration": f"PT{seconds}S"},
        "intervals": [{"id": 0, "payloads": [{"type": "SIMPLE", "values": [level]}]}],
    }
    return dict(utility.bl("POST", "/events", body))


def publish_price(
    utility: Vtn, program_id: str, start: dt.datetime, seconds: int, eur_per_kwh: float
) -> dict[str, Any]:
    """The utility publishes a PRICE event (EUR per kWh) for DE-LU; the VTN's answer."""
    body = {
        "objectType": "EVENT",
        "programID": program_id,
        "eventName": "tariff",
        "targets": ["zone_DE-LU"],
        "payloadDescriptors": [
            {
                "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                "payloadType": "PRICE",
                "units": "KWH",
                "currency": "EUR",
            }
        ],
        "intervalPeriod": {"start": start.isoformat(), "duration": f"PT{seconds}S"},
        "intervals": [{"id": 0, "payloads": [{"type": "PRICE", "values": [eur_per_kwh]}]}],
    }
    return dict(utility.bl("POST", "/events", body))


def cluster_price(lab: Lab, name: str) -> tuple[float, str, str] | None:
    """(value, unit, source) of a GridCluster's current price in its status."""
    api = kubernetes.client.CustomObjectsApi(lab.client("hub"))
    body = dict(api.get_cluster_custom_object("gridaware.dev", "v1alpha1", "gridclusters", name))
    price = (body.get("status") or {}).get("price")
    return None if not price else (price["value"], price["unit"], price["source"])


def reports(utility: Vtn, event_id: str) -> list[tuple[float, float, dict[str, list[float]]]]:
    """(start, end, payloads by type) of each report for the event, oldest first."""
    out = []
    for report in utility.bl("GET", "/reports", eventID=event_id):
        assert report["clientName"] == VEN
        resource = report["resources"][0]
        period = resource["intervalPeriod"]
        start = parse_start(period["start"], time.time()).timestamp()
        end = start + parse_duration(period["duration"]).total_seconds()
        payloads = {p["type"]: p["values"] for p in resource["intervals"][0]["payloads"]}
        out.append((start, end, payloads))
    return sorted(out, key=lambda r: (r[1], r[0]))


def test_a_vtn_event_becomes_a_grid_event_and_reports_of_achieved_kw_reach_the_vtn(
    lab: Lab,
    ven_operator: Operator,
    vtn: Vtn,  # noqa: F811
    namespace: str,
) -> None:
    apply(lab, namespace, gaj("steady", cpu="100m", run="600s", energy={"wattsPerReplica": 1000}))
    wait_for(lambda: status(lab, namespace, "steady").get("phase") == "Running", "job running")
    assert status(lab, namespace, "steady")["cluster"] == "eu-central"  # DE-LU, the greenest
    wait_for(lambda: enrolled(vtn, ["zone_DE-LU"]), "the operator's VEN registered", timeout=30)

    program = vtn.bl(
        "POST", "/programs", {"objectType": "PROGRAM", "programName": f"p-{uuid.uuid4().hex[:8]}"}
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    tariff = publish_price(vtn, program["id"], now, 600, eur_per_kwh=0.42)
    vtn_price = (420.0, "EUR/MWh", "openadr")  # the lab's static DE-LU price is 150 USD/MWh
    wait_for(lambda: cluster_price(lab, "eu-central") == vtn_price, "the VTN's price", timeout=30)
    vtn.bl("DELETE", f"/events/{tariff['id']}")
    wait_for(
        lambda: (cluster_price(lab, "eu-central") or (0, "", ""))[2] == "static",
        "the configured price again once the utility withdrew its tariff",
        timeout=30,
    )
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=10)
    event = publish(vtn, program["id"], start, WINDOW, level=1)
    later = publish(vtn, program["id"], start + dt.timedelta(hours=1), 3600, level=2)
    name = f"openadr-{event['id']}-0-simple".lower()
    withdrawn = f"openadr-{later['id']}-0-simple".lower()
    for n in (name, withdrawn):
        wait_for(lambda n=n: gridevent(lab, n) is not None, f"GridEvent {n}", timeout=30)
    body = gridevent(lab, name)
    assert body is not None
    spec = body["spec"]
    assert spec["kind"] == "Curtail" and spec["curtail"] == {"reducePercent": 25.0}  # SIMPLE 1
    assert spec["targets"]["zones"] == ["DE-LU"]
    assert spec["source"]["openAdr"]["eventId"] == event["id"]
    assert spec["source"]["openAdr"]["vtn"] == vtn.url

    vtn.bl("DELETE", f"/events/{later['id']}")  # the utility calls the later one off
    wait_for(
        lambda: ((gridevent(lab, withdrawn) or {}).get("status") or {}).get("phase") == "Cancelled",
        "the withdrawn event cancelled",
        timeout=30,
    )

    t0 = start.timestamp()
    wait_for(lambda: reports(vtn, event["id"]), "a report while active", timeout=WINDOW)
    first_start, first_end, payloads = reports(vtn, event["id"])[0]
    assert first_start == t0 and t0 < first_end < t0 + WINDOW
    assert payloads["DEMAND"][0] == pytest.approx(KW, abs=0.01)  # the job was never paused
    assert payloads["BASELINE"] == [pytest.approx(KW)]

    def completed() -> bool:
        st = (gridevent(lab, name) or {}).get("status") or {}
        done = [c for c in st.get("conditions", []) if c.get("reason") == "FinalReport"]
        return st.get("phase") == "Completed" and bool(done)

    wait_for(completed, "the event over and reported", timeout=WINDOW + 60)
    final = reports(vtn, event["id"])[-1]
    assert final[:2] == (t0, t0 + WINDOW), "the final report covers the whole window"
    st = (gridevent(lab, name) or {})["status"]
    assert final[2]["DEMAND"] == [pytest.approx(st["achievedKw"], abs=1e-6)]
    assert parse_time(st["lastReportTime"]) >= t0 + WINDOW
    count = len(reports(vtn, event["id"]))
    assert count <= WINDOW / INTERVAL + 2, "about one report per interval"
    time.sleep(3 * INTERVAL)
    assert len(reports(vtn, event["id"])) == count, "the final report is sent once"


# --- the chart's VEN settings (helm template; no cluster) ------------------------------------

ENABLED = [
    "openadr.enabled=true",
    "openadr.url=https://vtn.example/openadr3/3.1.0",
    "openadr.credentialsSecret=ven-credentials",
    "openadr.defaultZones={DE-LU,GB}",
]


def _gridevent_verbs(docs: list[dict[str, Any]]) -> set[str]:
    rules = kinds(docs)["ClusterRole"][0]["rules"]
    return {v for r in rules if "gridevents" in r["resources"] for v in r["verbs"]}


def test_the_chart_runs_no_ven_by_default() -> None:
    docs = rendered()
    assert not [a for a in operator_container(docs)["args"] if a.startswith("--openadr")]
    assert "create" not in _gridevent_verbs(docs), "GridEvents are only made by the VEN"


def test_the_chart_passes_the_ven_settings_and_mounts_its_secret() -> None:
    docs = rendered(*(arg for s in ENABLED for arg in ("--set", s)))
    container = operator_container(docs)
    args = [a for a in container["args"] if a.startswith("--openadr")]
    assert args == [
        "--openadr-url=https://vtn.example/openadr3/3.1.0",
        "--openadr-credentials=/var/run/secrets/gridaware/openadr",
        "--openadr-ven-name=gridaware",
        "--openadr-interval=30",
        "--openadr-zones=DE-LU,GB",
    ]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "openadr")
    assert mount == {
        "name": "openadr",
        "mountPath": "/var/run/secrets/gridaware/openadr",
        "readOnly": True,
    }
    pod = kinds(docs)["Deployment"][0]["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "openadr")
    assert volume["secret"] == {"secretName": "ven-credentials"}
    assert "create" in _gridevent_verbs(docs)


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        pytest.param(["openadr.enabled=true"], "needs openadr.url", id="enabled-without-a-vtn"),
        pytest.param(ENABLED[:2], "credentialsSecret", id="enabled-without-credentials"),
        pytest.param(["openadr.url=vtn.example"], "/openadr/url", id="url-without-scheme"),
        pytest.param(["openadr.intervalSeconds=0"], "/openadr/intervalSeconds", id="zero-interval"),
    ],
)
def test_the_chart_refuses_incomplete_ven_settings(sets: list[str], message: str) -> None:
    flags = [arg for s in sets for arg in ("--set", s)]
    result = helm_cli("template", "gw", str(CHART), *flags, check=False)
    assert result.returncode != 0 and message in result.stderr
