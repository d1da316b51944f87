"""gridaware's VEN against a real OpenADR 3.1 VTN (openleadr-vtn with its own PostgreSQL,
started by tools/openadr/vtn.sh): the utility's side creates a program and events, the VEN
registers, takes them in and maps them to GridEvent specs, posts a report of the achieved
load, and the utility reads that report back."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from gridaware.signals.errors import FeedAuthError
from gridaware.signals.openadr import MappedEvent, MappingConfig, OpenAdrVen, VenConfig

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "tools" / "openadr" / "vtn.sh"


def _script_env() -> dict[str, str]:
    # the script's Python is this interpreter (the venv's), as under ./dev
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


@dataclass
class Vtn:
    url: str
    business: tuple[str, str]
    ven: tuple[str, str]

    def business_token(self) -> str:
        cid, secret = self.business
        resp = requests.post(
            f"{self.url}/auth/token",
            data={"grant_type": "client_credentials", "client_id": cid, "client_secret": secret},
            timeout=10,
        )
        resp.raise_for_status()
        return str(resp.json()["access_token"])

    def bl(self, method: str, path: str, body: object = None, **params: str) -> Any:
        """A request of the utility's business logic; its JSON answer."""
        resp = requests.request(
            method,
            self.url + path,
            json=body,
            params=params or None,
            headers={"Authorization": f"Bearer {self.business_token()}"},
            timeout=10,
        )
        assert resp.ok, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp.json()


@pytest.fixture(scope="session")
def vtn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vtn]:
    if subprocess.run(["bash", str(SCRIPT), "--check"], check=False).returncode != 0:
        pytest.fail(
            "openleadr-vtn is not built: run `bash tools/openadr/vtn.sh build` (./dev does)"
        )
    state = tmp_path_factory.mktemp("vtn")
    env = _script_env()
    started = subprocess.run(
        ["bash", str(SCRIPT), "start", str(state)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    try:
        assert started.returncode == 0, f"vtn.sh start failed:\n{started.stderr}"
        doc = json.loads((state / "vtn.json").read_text())
        yield Vtn(
            url=doc["url"],
            business=(doc["business"]["clientId"], doc["business"]["clientSecret"]),
            ven=(doc["ven"]["clientId"], doc["ven"]["clientSecret"]),
        )
    finally:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], env=env, timeout=60, check=False)


def _at(hours: float) -> str:
    t = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _program(vtn: Vtn) -> dict[str, Any]:
    return vtn.bl(  # type: ignore[no-any-return]
        "POST",
        "/programs",
        {
            "objectType": "PROGRAM",
            "programName": f"peak-relief-{uuid.uuid4().hex[:8]}",
            "payloadDescriptors": [
                {
                    "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                    "payloadType": "PRICE",
                    "units": "KWH",
                    "currency": "EUR",
                }
            ],
        },
    )


def _event(vtn: Vtn, program_id: str, name: str, targets: list[str], payloads: list[Any]) -> str:
    event = vtn.bl(
        "POST",
        "/events",
        {
            "objectType": "EVENT",
            "programID": program_id,
            "eventName": name,
            "priority": 1,
            "targets": targets,
            "intervalPeriod": {"start": _at(1), "duration": "PT3H"},
            "intervals": [{"id": 0, "payloads": payloads}],
        },
    )
    return str(event["id"])


def _enrol(vtn: Vtn, ven_id: str, targets: list[str]) -> None:
    """The utility enrols the VEN for some targets (only the business side may set them)."""
    ven = vtn.bl("GET", f"/vens/{ven_id}")
    vtn.bl(
        "PUT",
        f"/vens/{ven_id}",
        {
            "objectType": "BL_VEN_REQUEST",
            "clientID": ven["clientID"],
            "venName": ven["venName"],
            "targets": targets,
        },
    )


def _ven(vtn: Vtn, name: str, **mapping: Any) -> OpenAdrVen:
    cid, secret = vtn.ven
    return OpenAdrVen(
        VenConfig(
            url=vtn.url,
            client_id=cid,
            client_secret=secret,
            ven_name=name,
            mapping=MappingConfig(**mapping),
        )
    )


def test_event_on_the_vtn_becomes_a_grid_event_and_the_report_comes_back(vtn: Vtn) -> None:
    ven = _ven(vtn, "gridaware-e2e", mandatory_programs=frozenset())
    ven_id = ven.register()
    assert _ven(vtn, "gridaware-e2e").register() == ven_id  # registering again finds it
    _enrol(vtn, ven_id, ["zone_DE-LU"])

    program = _program(vtn)
    curtail = _event(
        vtn, program["id"], "evening peak", ["zone_DE-LU"], [{"type": "SIMPLE", "values": [2]}]
    )
    cap = _event(
        vtn,
        program["id"],
        "capacity",
        ["zone_DE-LU"],
        [{"type": "IMPORT_CAPACITY_LIMIT", "values": [750]}],
    )
    price = _event(vtn, program["id"], "tariff", [], [{"type": "PRICE", "values": [0.42]}])
    elsewhere = _event(
        vtn, program["id"], "not ours", ["zone_GB"], [{"type": "SIMPLE", "values": [3]}]
    )

    poll = ven.poll()
    by_event = {m.spec.source.open_adr.event_id: m for m in poll.events if m.spec.source.open_adr}
    assert elsewhere not in by_event, "the VTN showed us an event targeted at another zone"
    assert {curtail, cap} <= set(by_event)

    mapped: MappedEvent = by_event[curtail]
    assert mapped.spec.kind == "Curtail" and mapped.spec.curtail is not None
    assert mapped.spec.curtail.reduce_percent == 50.0  # SIMPLE 2
    assert mapped.spec.targets.zones == ["DE-LU"]
    window = mapped.spec.window
    assert window.end_epoch - window.start_epoch == 3 * 3600  # P0Y0M0DT3H0M0S from the VTN
    src = mapped.spec.source.open_adr
    assert src is not None and src.program_name == program["programName"]
    capped = by_event[cap].spec.curtail
    assert capped is not None and capped.cap_kw == 750.0

    prices = [p for p in poll.prices if p.event_id == price]
    assert [(p.value, p.currency) for p in prices] == [(0.42, "EUR")]

    report_id = ven.post_report(
        src, window.start_epoch, window.start_epoch + 900, achieved_kw=300.0, baseline_kw=600.0
    )
    reports = vtn.bl("GET", "/reports", eventID=curtail)
    ours = [r for r in reports if r["id"] == report_id]
    assert len(ours) == 1, reports
    report = ours[0]
    assert report["clientName"] == "gridaware-e2e"
    payloads = {p["type"]: p["values"] for p in report["resources"][0]["intervals"][0]["payloads"]}
    assert payloads["DEMAND"] == [300.0]
    assert payloads["USAGE"] == [75.0]  # 300 kW for 15 minutes
    assert payloads["BASELINE"] == [600.0]


def test_wrong_credentials_are_an_auth_error(vtn: Vtn) -> None:
    ven = OpenAdrVen(VenConfig(url=vtn.url, client_id=vtn.ven[0], client_secret="wrong"))
    with pytest.raises(FeedAuthError, match="client id, secret and scopes"):
        ven.register()
