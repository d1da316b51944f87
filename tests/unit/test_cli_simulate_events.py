"""``gridaware simulate --events``: event files (the grid-events CSV, YAML of GridEvents) read
with errors that name the line, and replays whose figures are computed here by hand."""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridaware.api.gridevents import Absorb
from gridaware.cli import main
from gridaware.sim import eventfile
from gridaware.sim import events as ev
from gridaware.sim.engine import WATTS_PER_CPU
from gridaware.sim.eventfile import YEAR0, EventFileError
from gridaware.sim.scenario import Regions, Workload
from tests.conftest import SHARED_DATA

HEADER = "zone,start_utc,end_utc,type,requested_reduction,source_name,source_ref,notes\n"
HOUR = 3600.0


def event_yaml(**spec: object) -> str:
    body = {
        "apiVersion": "gridaware.dev/v1alpha1",
        "kind": "GridEvent",
        "metadata": {"name": "cap"},
        "spec": {
            "targets": {"zones": ["GB"]},
            "window": {"start": "2023-01-01T02:00:00Z", "end": "2023-01-01T04:00:00Z"},
            "kind": "Curtail",
            "curtail": {"capKw": 0.25},
            **spec,
        },
    }
    return yaml.safe_dump(body, sort_keys=False)


# --- the CSV of the data set ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", "x.csv:1: empty file", id="empty"),
        pytest.param(
            "zone,start_utc,type\nGB,2023-01-01T00:00:00Z,curtail\n",
            "x.csv:1: missing column(s) end_utc",
            id="missing-column",
        ),
        pytest.param(
            HEADER + "GB,2023-01-17T17:30:00Z,2023-01-17T18:30:00Z,curtail,,s,r,n\n"
            "GB,2023-01-19T09:00:00Z,2023-01-19,curtail,,s,r,n\n",
            "x.csv:3: end_utc: '2023-01-19' has no time zone",
            id="time-without-zone",
        ),
        pytest.param(
            HEADER + "GB,yesterday,2023-01-19T10:00:00Z,curtail,,s,r,n\n",
            "x.csv:2: start_utc: 'yesterday' is not an RFC 3339 time",
            id="not-a-time",
        ),
        pytest.param(
            HEADER + "GB,2023-01-19T10:00:00Z,2023-01-19T09:00:00Z,curtail,,s,r,n\n",
            "x.csv:2: end_utc 2023-01-19T09:00:00Z is not after start_utc",
            id="end-before-start",
        ),
        pytest.param(
            HEADER + "\n,2023-01-19T09:00:00Z,2023-01-19T10:00:00Z,curtail,,s,r,n\n",
            "x.csv:3: zone is empty",
            id="empty-zone-after-blank-line",
        ),
        pytest.param(
            HEADER + 'GB,2023-01-19T09:00:00Z,2023-01-19T10:00:00Z,curtail,,s,r,"two\nlines"\n'
            "GB,2023-01-20T09:00:00Z,2023-01-20T10:00:00Z,outage,,s,r,n\n",
            "x.csv:4: type 'outage' is neither curtail nor stress",
            id="line-counted-after-a-quoted-newline",
        ),
        pytest.param(
            HEADER + "GB,2023-01-19T09:00:00Z,2023-01-19T10:00:00Z,curtail\n",
            "x.csv:2: 4 fields, the header has 8",
            id="short-row",
        ),
    ],
)
def test_csv_errors_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "x.csv"
    path.write_text(text)
    with pytest.raises(EventFileError) as err:
        eventfile.read(path)
    assert str(err.value).startswith(f"{tmp_path}/{expected}")


def test_csv_types_are_filtered_before_merging(tmp_path: Path) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        HEADER + "Z,2023-07-01T01:00:00Z,2023-07-01T03:00:00Z,curtail,,a,r,n\n"
        "Z,2023-07-01T02:00:00Z,2023-07-01T05:00:00Z,stress,,b,r,n\n"
    )
    day = 181 * 24 * HOUR
    both = [(w.start - day, w.end - day, w.types) for w in eventfile.read(path)]
    assert both == [(HOUR, 5 * HOUR, ("curtail", "stress"))]
    only = [(w.start - day, w.end - day) for w in eventfile.read(path, ("curtail",))]
    assert only == [(HOUR, 3 * HOUR)]


notice = st.tuples(
    st.sampled_from(["GB", "US-TEX-ERCO", "DE-LU"]),
    st.integers(0, 300),  # start, in 10-minute steps from 2023-03-01
    st.integers(1, 40),  # length, in 10-minute steps
    st.sampled_from(["curtail", "stress"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30),
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(notice, max_size=25))
def test_csv_windows_cover_every_notice_once(notices: list[tuple[str, int, int, str, str]]) -> None:
    """Whatever the notes hold (commas, quotes, newlines), every notice lies in exactly one
    window of its zone, and a zone's windows are sorted and apart."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(HEADER.strip().split(","))
    t0 = 59 * 24 * HOUR
    for zone, start, length, kind, notes in notices:
        s, e = YEAR0 + t0 + start * 600, YEAR0 + t0 + (start + length) * 600
        writer.writerow([zone, _iso(s), _iso(e), kind, "", "src", "ref", notes])
    windows = eventfile.merge(sorted(eventfile.csv_rows(out.getvalue(), "p.csv")))
    for zone, start, length, _kind, _notes in notices:
        s, e = t0 + start * 600, t0 + (start + length) * 600
        hits = [w for w in windows if w.zone == zone and w.start <= s and e <= w.end]
        assert len(hits) == 1
    for a, b in itertools.pairwise(windows):
        assert (a.zone, a.start) <= (b.zone, b.start)
        assert a.zone != b.zone or a.end < b.start


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_csv_garbage_is_refused_with_a_line_or_read(text: str) -> None:
    try:
        rows = eventfile.csv_rows(HEADER + text, "g.csv")
    except EventFileError as exc:
        line = int(str(exc).split(":")[1])
        assert 1 <= line <= (HEADER + text).count("\n") + 2
    else:
        assert all(end > start for _z, start, end, _t, _s in rows)


def _iso(epoch: float) -> str:
    import datetime as dt  # noqa: PLC0415

    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- YAML of GridEvents --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("a: [1, 2\n", "e.yaml:2: not valid YAML", id="not-yaml"),
        pytest.param("- 3\n", "e.yaml:1: expected a GridEvent", id="not-a-mapping"),
        pytest.param(
            "? [1, 2]\n: x\n", "e.yaml:1: not valid YAML: found unhashable key", id="list-as-key"
        ),
        pytest.param(
            event_yaml(window={"start": "2023-01-01T04:00:00Z", "end": "2023-01-01T02:00:00Z"}),
            "e.yaml:9: spec.window: window.end (2023-01-01T02:00:00Z) must be after",
            id="window-backwards",
        ),
        pytest.param(
            event_yaml(curtail={"capKw": 1, "reducePercent": 5}),
            "e.yaml:13: spec.curtail: curtail must set exactly one of",
            id="two-amounts",
        ),
        pytest.param(
            event_yaml(curtail={"reducePercent": 150}),
            "e.yaml:14: spec.curtail.reducePercent: Input should be less than or equal to 100",
            id="percent-out-of-range",
        ),
        pytest.param(
            event_yaml(targets={"clusters": ["eu-central"]}),
            "e.yaml:7: cap: targets.clusters: the simulator knows grid zones",
            id="clusters-not-zones",
        ),
        pytest.param(
            event_yaml(targets={"zones": ["GB", "DE-LU"]}),
            "e.yaml:7: cap: a kW amount over several zones",
            id="kw-over-two-zones",
        ),
        pytest.param(
            "targets: {zones: [GB]}\nkind: Absorb\nwindow: {start: '2023-01-01T02:00:00Z',"
            " end: '2023-01-01T03:00:00Z'}\n",
            "e.yaml:1: spec: kind Absorb needs spec.absorb",
            id="bare-spec-without-amount",
        ),
        pytest.param("---\n...\n", "e.yaml:1: no GridEvent in the file", id="empty"),
    ],
)
def test_yaml_errors_name_the_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "e.yaml"
    path.write_text(text)
    with pytest.raises(EventFileError) as err:
        eventfile.read(path)
    assert str(err.value).startswith(f"{path.parent}/{expected}")


yaml_text = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
).map(yaml.safe_dump)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=200), yaml_text))
def test_yaml_garbage_is_refused_with_a_line(text: str) -> None:
    try:
        eventfile.yaml_windows(text, "g.yaml")
    except EventFileError as exc:
        line = int(str(exc).split(":")[1])
        assert 1 <= line <= text.count("\n") + 2


def test_yaml_objects_and_bare_specs(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    bare = {
        "targets": {"zones": ["GB", "DE-LU"]},
        "window": {"start": "2023-06-01T10:00:00Z", "end": "2023-06-01T11:30:00Z"},
        "kind": "Curtail",
        "curtail": {"reducePercent": 40},
        "mandatory": True,
    }
    path.write_text(event_yaml() + "---\n" + yaml.safe_dump([bare]))
    got = eventfile.read(path)
    assert [(w.name, w.zone, w.kind, w.mandatory) for w in got] == [
        ("cap", "GB", "Curtail", False),
        ("event-2", "DE-LU", "Curtail", True),
        ("event-2", "GB", "Curtail", True),
    ]
    assert got[0].amount is not None and got[0].amount.target_kw(1.0) == 0.25
    assert got[1].amount is not None and got[1].amount.target_kw(1.0) == pytest.approx(0.6)
    assert (got[1].start, got[1].end) == (
        151 * 24 * HOUR + 10 * HOUR,
        151 * 24 * HOUR + 11.5 * HOUR,
    )


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "events.json"
    path.write_text("{}")
    with pytest.raises(EventFileError, match="unknown format .json: use .csv or .yaml"):
        eventfile.read(path)


amounts = st.one_of(
    st.builds(lambda v: {"reducePercent": v}, st.floats(0.5, 100)),
    st.builds(lambda v: {"reduceKw": v}, st.floats(0.5, 1e6)),
    st.builds(lambda v: {"capKw": v}, st.floats(0, 1e6)),
)


@given(
    st.lists(
        st.tuples(st.integers(0, 8000), st.integers(1, 48), amounts, st.booleans()),
        min_size=1,
        max_size=8,
    )
)
def test_yaml_round_trip(events: list[tuple[int, int, dict[str, float], bool]]) -> None:
    docs = [
        {
            "metadata": {"name": f"e{i}"},
            "spec": {
                "targets": {"zones": ["GB"]},
                "window": {"start": _iso(YEAR0 + h * HOUR), "end": _iso(YEAR0 + (h + n) * HOUR)},
                "kind": "Curtail",
                "curtail": amount,
                "mandatory": mandatory,
            },
        }
        for i, (h, n, amount, mandatory) in enumerate(events)
    ]
    got = {w.name: w for w in eventfile.yaml_windows(yaml.safe_dump_all(docs), "r.yaml")}
    for i, (h, n, amount, mandatory) in enumerate(events):
        w = got[f"e{i}"]
        assert (w.start, w.end, w.mandatory, w.zone) == (h * HOUR, (h + n) * HOUR, mandatory, "GB")
        assert w.amount is not None
        assert w.amount.model_dump(by_alias=True, exclude_none=True) == amount


# --- replays by hand -----------------------------------------------------------------------


def test_absorb_pulls_planned_work_forward_by_hand() -> None:
    """Three 1-CPU jobs of 1 h arrive at hour 0 with 10 h of slack; the intensity is 500 up to
    hour 6 and 100 from then, so the shifter plans all three at hour 6 (baseline at hour 2:
    nothing runs). An Absorb of up to two jobs' power from hour 2 to 3 starts two of them at
    once: the target (2 units) is met from the start, compliance 1, 2 units absorbed; each ran
    4 h earlier at 400 g/kWh more: +0.006 kg each."""
    hours = 8760 + 48
    carbon = np.full((1, hours), 500.0)
    carbon[0, 6:11] = 100.0
    regions = Regions(["Z"], carbon, np.zeros((1, hours)), ["-"], np.ones(1))
    work = Workload(
        np.zeros(3), np.ones(3), np.ones(3), np.zeros(3, dtype=np.int64), np.full(3, 11.0)
    )
    unit = WATTS_PER_CPU / 1000 * 1.2
    absorb = Absorb(up_to_kw=2 * unit)
    w = ev.Window("Z", 2 * HOUR, 3 * HOUR, ("absorb",), ("test",), "solar", "Absorb", absorb)
    r = ev.replay([w], regions, work, ev.EventParams())[0]
    assert (r.kind, r.jobs, r.pulled, r.paused, r.held, r.deadline_misses) == (
        "Absorb", 3, 2, 0, 0, 0,
    )  # fmt: skip
    assert (r.baseline_kw, r.target_kw) == pytest.approx((0.0, 2 * unit))
    assert (r.compliance, r.time_to_target_s) == (1.0, 0.0)
    assert r.achieved_kw == pytest.approx(2 * unit)
    assert r.without_kw == 0.0  # nothing was planned in the window
    assert r.response_kw == pytest.approx(2 * unit)
    assert r.delay_job_hours == pytest.approx(-8.0)
    assert r.extra_carbon_kg == pytest.approx(2 * unit * 400 / 1000)


@pytest.mark.skipif(not (SHARED_DATA / "carbon").exists(), reason="no shared data")
def test_cli_cap_by_hand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Four 8-CPU jobs (0.12 kW each at PUE 1.2) run from hour 0 for 10 h in GB; jobs 0 and 2
    checkpoint. A cap of 0.25 kW from 02:00 to 04:00, known an hour ahead, is pre-curtailed:
    the lead is 90 s (30 s of checkpoint and a minute of round), so both are paused at the
    01:59 round, effective at 01:59:30; the window opens on target: compliance 1, achieved
    0.24 kW, time to target 0 s, and 2 x 7230 s of delay, no deadline missed (24 h of
    slack)."""
    work = tmp_path / "jobs.csv"
    work.write_text("arrival_time,length,cpus\n" + "0,10,8\n" * 4)
    events = tmp_path / "cap.yaml"
    events.write_text(event_yaml())
    argv = ["simulate", "--events", str(events), "--data-dir", str(SHARED_DATA)]
    argv += ["--workload", str(work), "--json", str(tmp_path / "r.json")]
    assert main([*argv, "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == json.loads((tmp_path / "r.json").read_text())
    (r,) = doc["events"]
    assert (r["name"], r["zone"], r["start"], r["end"]) == (
        "cap", "GB", "2023-01-01T02:00:00Z", "2023-01-01T04:00:00Z",
    )  # fmt: skip
    assert (r["jobs"], r["paused"], r["held"], r["deadline_misses"]) == (4, 2, 0, 0)
    assert (r["baseline_kw"], r["target_kw"]) == pytest.approx((0.48, 0.25))
    assert r["compliance"] == pytest.approx(1.0)
    assert r["achieved_kw"] == pytest.approx(0.24)
    assert r["without_kw"] == pytest.approx(0.48)  # all four would have run throughout
    assert r["curtailed_kw"] == pytest.approx(0.48 - r["achieved_kw"])
    assert r["time_to_target_s"] == 0.0
    assert r["delay_job_hours"] == pytest.approx(2 * 7230 / 3600)
    assert doc["totals"]["compliance"] == pytest.approx(1.0)
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 event windows replayed" in out
    row = next(line for line in out.splitlines() if line.startswith("cap "))
    assert "100%" in row and " 0s" in row and "2 paused" in row


@pytest.mark.skipif(not (SHARED_DATA / "carbon").exists(), reason="no shared data")
def test_cli_no_window_in_the_traces(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "jobs.csv"
    work.write_text("arrival_time,length,cpus\n0,10,8\n")
    events = tmp_path / "e.csv"
    events.write_text(HEADER + "GB,2022-01-19T09:00:00Z,2022-01-19T10:00:00Z,curtail,,s,r,n\n")
    argv = ["simulate", "--events", str(events), "--data-dir", str(SHARED_DATA)]
    assert main([*argv, "--workload", str(work), "-o", "json"]) == 0
    doc = json.loads(capsys.readouterr().out, parse_constant=_no_nan)  # strict JSON
    assert doc["events"] == [] and doc["totals"]["median_time_to_target_s"] is None
    assert doc["skipped"] == [
        {"zone": "GB", "name": "", "start": "2022-01-19T09:00:00Z", "end": "2022-01-19T10:00:00Z"}
    ]
    assert main([*argv, "--workload", str(work)]) == 0
    assert "no event window falls in the traces" in capsys.readouterr().out


def _no_nan(constant: str) -> None:
    raise AssertionError(f"{constant} is not JSON")


def test_cli_bad_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER + "GB,2023-01-19T10:00:00Z,2023-01-19T09:00:00Z,curtail,,s,r,n\n")
    assert main(["simulate", "--events", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:2: end_utc")


@pytest.mark.skipif(not (SHARED_DATA / "grid-events").exists(), reason="no shared data")
def test_cli_replays_the_2023_events(capsys: pytest.CaptureFixture[str]) -> None:
    """The data set's file as it is: 2022 windows are left out, the 2023 ones replayed on a
    sample of the job trace, deadlines of these voluntary events never missed."""
    argv = ["simulate", "--events", str(SHARED_DATA / "grid-events" / "events_2022_2023.csv")]
    argv += ["--data-dir", str(SHARED_DATA), "--every", "20", "-o", "json"]
    argv += ["--workload", str(SHARED_DATA / "workloads" / "pai-100k.csv")]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["events"]) == 22  # 6 GB, 3 CAISO, 2 PJM, 11 ERCOT
    assert all(s["start"].startswith("2022") for s in doc["skipped"])
    assert doc["totals"]["deadline_misses"] == 0
    assert all(0 <= e["compliance"] <= 1 for e in doc["events"])
