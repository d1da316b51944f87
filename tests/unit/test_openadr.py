"""OpenADR 3 events -> GridEvents: the documented mapping, table by table, and parsing that
fails only with OpenAdrPayloadError whatever the VTN sends."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridaware.api.gridevents import OpenAdrSource
from gridaware.signals.errors import FeedDataError, SignalError
from gridaware.signals.openadr import (
    MappedEvent,
    MappingConfig,
    OpenAdrPayloadError,
    PricePoint,
    Skipped,
    WireEvent,
    WireProgram,
    map_event,
    map_events,
    parse_duration,
    parse_events,
    parse_programs,
    price_series,
    report_request,
)

VTN = "http://127.0.0.1:9"
NOW = dt.datetime(2026, 11, 25, 16, 0, tzinfo=dt.UTC).timestamp()
START = "2026-11-25T17:00:00Z"
CONFIG = MappingConfig(default_zones=("DE-LU",))
PROGRAM = WireProgram.model_validate(
    {
        "id": "p1",
        "programName": "peak-relief",
        "payloadDescriptors": [
            {
                "objectType": "EVENT_PAYLOAD_DESCRIPTOR",
                "payloadType": "PRICE",
                "currency": "EUR",
                "units": "KWH",
            },
        ],
    }
)


def event(*payloads: dict[str, Any], **over: Any) -> WireEvent:
    doc: dict[str, Any] = {
        "id": "e1",
        "programID": "p1",
        "eventName": "evening peak",
        "intervalPeriod": {"start": START, "duration": "PT3H"},
        "intervals": [{"id": 0, "payloads": list(payloads)}],
        **over,
    }
    return WireEvent.model_validate(doc)


def simple(level: Any) -> dict[str, Any]:
    return {"type": "SIMPLE", "values": [level]}


def only(parts: list[MappedEvent | PricePoint | Skipped]) -> MappedEvent | PricePoint | Skipped:
    assert len(parts) == 1, parts
    return parts[0]


@pytest.mark.parametrize(
    ("level", "percent"),
    [
        pytest.param(1, 25.0, id="simple-1-is-25-percent"),
        pytest.param(2, 50.0, id="simple-2-is-50-percent"),
        pytest.param(3, 75.0, id="simple-3-is-75-percent"),
        pytest.param(2.0, 50.0, id="simple-level-as-float"),
    ],
)
def test_simple_levels_curtail_by_the_documented_share(level: Any, percent: float) -> None:
    mapped = only(map_event(event(simple(level)), PROGRAM, VTN, CONFIG, NOW))
    assert isinstance(mapped, MappedEvent)
    spec = mapped.spec
    assert spec.kind == "Curtail" and spec.curtail is not None
    assert spec.curtail.reduce_percent == percent
    assert (spec.window.start, spec.window.end) == (START, "2026-11-25T20:00:00Z")
    assert spec.targets.zones == ["DE-LU"]
    src = spec.source.open_adr
    assert src is not None and spec.source.type == "OpenADR"
    assert (src.program_id, src.event_id, src.program_name) == ("p1", "e1", "peak-relief")
    assert (src.payload_type, src.value) == ("SIMPLE", float(level))


def test_simple_levels_are_configurable() -> None:
    config = MappingConfig(simple_levels={1: 10.0, 4: 100.0}, default_zones=("GB",))
    mapped = only(map_event(event(simple(4)), PROGRAM, VTN, config, NOW))
    assert isinstance(mapped, MappedEvent) and mapped.spec.curtail is not None
    assert mapped.spec.curtail.reduce_percent == 100.0


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        pytest.param(simple(7), "SIMPLE level 7 has no configured percentage", id="unknown-level"),
        pytest.param(simple(1.5), "SIMPLE level 1.5", id="fractional-level"),
        pytest.param(
            {"type": "DISPATCH_SETPOINT", "values": [3, "x"]}, "not mapped", id="unmapped-type"
        ),
    ],
)
def test_unmappable_payloads_are_skipped_with_a_reason(
    payload: dict[str, Any], reason: str
) -> None:
    part = only(map_event(event(payload), PROGRAM, VTN, CONFIG, NOW))
    assert isinstance(part, Skipped) and reason in part.reason and part.event_id == "e1"


@pytest.mark.parametrize(
    ("ev", "message"),
    [
        pytest.param(
            event(simple(1), intervalPeriod={"start": START, "duration": "PT0S"}),
            "lasts no time",
            id="zero-duration",
        ),
        pytest.param(
            event({"type": "IMPORT_CAPACITY_LIMIT", "values": [1e9]}),
            "cannot be a GridEvent",
            id="cap-beyond-the-api",
        ),
        pytest.param(
            event({"type": "IMPORT_CAPACITY_LIMIT", "values": [-3]}),
            "negative capacity",
            id="negative-cap",
        ),
        pytest.param(event(simple(True)), "exactly one number", id="boolean-level"),
        pytest.param(event({"type": "PRICE", "values": []}), "exactly one number", id="no-price"),
        pytest.param(
            event(simple(1), intervalPeriod={"start": "9999-12-31T00:00:00Z", "duration": "P1D"}),
            "beyond the calendar",
            id="end-of-time",
        ),
        pytest.param(event(simple(1), intervalPeriod=None), "no intervalPeriod", id="no-period"),
    ],
)
def test_malformed_events_raise_payload_errors(ev: WireEvent, message: str) -> None:
    with pytest.raises(OpenAdrPayloadError, match=message):
        map_event(ev, PROGRAM, VTN, CONFIG, NOW)


def test_simple_level_zero_is_normal_operation() -> None:
    assert map_event(event(simple(0)), PROGRAM, VTN, CONFIG, NOW) == []


@pytest.mark.parametrize(
    ("units", "value", "cap_kw"),
    [
        pytest.param(None, 800, 800.0, id="no-units-is-kw"),
        pytest.param("KW", 800, 800.0, id="kw"),
        pytest.param("W", 250000, 250.0, id="watts"),
        pytest.param("MW", 1.5, 1500.0, id="megawatts"),
        pytest.param("kw", 12.5, 12.5, id="lower-case-units"),
    ],
)
def test_import_capacity_limit_caps_in_kw(units: str | None, value: float, cap_kw: float) -> None:
    descriptors = [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": units}] if units else None
    ev = event({"type": "IMPORT_CAPACITY_LIMIT", "values": [value]}, payloadDescriptors=descriptors)
    mapped = only(map_event(ev, PROGRAM, VTN, CONFIG, NOW))
    assert isinstance(mapped, MappedEvent) and mapped.spec.curtail is not None
    assert mapped.spec.curtail.cap_kw == pytest.approx(cap_kw)
    assert mapped.spec.curtail.reduce_percent is None


def test_capacity_in_unknown_units_is_skipped() -> None:
    ev = event(
        {"type": "IMPORT_CAPACITY_LIMIT", "values": [5]},
        payloadDescriptors=[{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": "KVAR"}],
    )
    part = only(map_event(ev, PROGRAM, VTN, CONFIG, NOW))
    assert isinstance(part, Skipped) and "KVAR" in part.reason


@pytest.mark.parametrize(
    ("targets", "config", "zones", "clusters"),
    [
        pytest.param([], CONFIG, ("DE-LU",), (), id="no-target-default-zones"),
        pytest.param(["zone_GB", "ven-1"], CONFIG, ("GB",), (), id="zone-target"),
        pytest.param(["cluster_eu-central"], CONFIG, (), ("eu-central",), id="cluster-target"),
        pytest.param([], MappingConfig(), (), (), id="no-target-no-defaults"),
    ],
)
def test_price_becomes_a_price_point_with_the_programs_currency_and_the_targets(
    targets: list[str],
    config: MappingConfig,
    zones: tuple[str, ...],
    clusters: tuple[str, ...],
) -> None:
    ev = event({"type": "PRICE", "values": [0.31]}, targets=targets)
    part = only(map_event(ev, PROGRAM, VTN, config, NOW))
    assert part == PricePoint(
        program_id="p1",
        event_id="e1",
        start=dt.datetime(2026, 11, 25, 17, tzinfo=dt.UTC).timestamp(),
        end=dt.datetime(2026, 11, 25, 20, tzinfo=dt.UTC).timestamp(),
        value=0.31,
        currency="EUR",
        units="KWH",
        zones=zones,
        clusters=clusters,
    )


def _price(
    start_h: float, hours: float, value: float, currency: str = "EUR", units: str | None = "KWH"
) -> PricePoint:
    return PricePoint(
        "p1",
        f"e{start_h}",
        NOW + start_h * 3600,
        NOW + (start_h + hours) * 3600,
        value,
        currency,
        units,
    )


@pytest.mark.parametrize(
    ("points", "starts", "values", "qualities"),
    [
        pytest.param([_price(1, 1, 0.31)], [1], [310.0], [2], id="per-kwh-to-per-mwh"),
        pytest.param([_price(-1, 2, 90, units="MWH")], [-1], [90.0], [0], id="begun-is-measured"),
        pytest.param(
            [_price(2, 1, 0.2), _price(0, 3, 0.1), _price(3, 1, 0.4)],
            [0, 3],
            [100.0, 400.0],
            [0, 2],
            id="overlap-keeps-the-first",
        ),
        pytest.param(
            [_price(1, 1, 0.3, currency="USD"), _price(2, 1, 0.3, units=None)],
            [1],
            [300.0 / 1.08],
            [2],
            id="other-currency-converted-no-units-left-out",
        ),
        pytest.param(
            [_price(1, 1, 0.3, currency="XTS"), _price(2, 1, 0.3, currency=""), _price(3, 0, 1)],
            [],
            [],
            [],
            id="unknown-or-no-currency-or-no-time-left-out",
        ),
        pytest.param(
            [_price(1, 1, 25.0), _price(2, 1, -25.0, units="MWH")],
            [2],
            [-25.0],
            [2],
            id="implausible-price-left-out",
        ),
    ],
)
def test_price_series_for_the_chain(
    points: list[PricePoint], starts: list[float], values: list[float], qualities: list[int]
) -> None:
    series = price_series(points, "DE-LU", "eur", NOW)
    assert series.unit == "EUR/MWh" and series.zone == "DE-LU"
    assert [(s - NOW) / 3600 for s in series.start.tolist()] == starts
    assert series.value.tolist() == pytest.approx(values)
    assert series.quality.tolist() == qualities


@pytest.mark.parametrize(
    ("targets", "config", "zones", "clusters"),
    [
        pytest.param(["zone_US-CAL-CISO"], CONFIG, ["US-CAL-CISO"], [], id="zone-target"),
        pytest.param(["cluster_us-west", "ven-1"], CONFIG, [], ["us-west"], id="cluster-target"),
        pytest.param(
            ["zone_GB", "cluster:eu-central", "zone_GB"],
            CONFIG,
            ["GB"],
            ["eu-central"],
            id="both-deduplicated",
        ),
        pytest.param(["gridaware"], CONFIG, ["DE-LU"], [], id="ven-target-uses-defaults"),
        pytest.param(
            None,
            MappingConfig(default_clusters=("c1",)),
            [],
            ["c1"],
            id="untargeted-default-cluster",
        ),
    ],
)
def test_targets(
    targets: list[str] | None, config: MappingConfig, zones: list[str], clusters: list[str]
) -> None:
    mapped = only(map_event(event(simple(1), targets=targets), PROGRAM, VTN, config, NOW))
    assert isinstance(mapped, MappedEvent)
    assert (mapped.spec.targets.zones, mapped.spec.targets.clusters) == (zones, clusters)


def test_no_target_and_no_default_is_skipped() -> None:
    part = only(map_event(event(simple(1)), PROGRAM, VTN, MappingConfig(), NOW))
    assert isinstance(part, Skipped) and "no zone_/cluster_ target" in part.reason


def test_intervals_without_their_own_period_follow_each_other() -> None:
    ev = WireEvent.model_validate(
        {
            "id": "e2",
            "programID": "p1",
            "intervalPeriod": {"start": START, "duration": "P0Y0M0DT1H0M0S"},
            "intervals": [
                {"id": 0, "payloads": [simple(1)]},
                {"id": 1, "payloads": [simple(3)]},
                {
                    "id": 2,
                    "intervalPeriod": {"start": "2026-11-26T08:00:00Z", "duration": "PT30M"},
                    "payloads": [simple(2)],
                },
            ],
        }
    )
    parts = map_event(ev, PROGRAM, VTN, CONFIG, NOW)
    windows = [
        (p.spec.window.start, p.spec.window.end) for p in parts if isinstance(p, MappedEvent)
    ]
    assert windows == [
        ("2026-11-25T17:00:00Z", "2026-11-25T18:00:00Z"),
        ("2026-11-25T18:00:00Z", "2026-11-25T19:00:00Z"),
        ("2026-11-26T08:00:00Z", "2026-11-26T08:30:00Z"),
    ]
    names = [p.name for p in parts if isinstance(p, MappedEvent)]
    assert len(set(names)) == 3
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) and len(n) <= 63 for n in names)


def test_start_of_year_one_means_now() -> None:
    ev = event(simple(1), intervalPeriod={"start": "0001-01-01T00:00:00Z", "duration": "PT1H"})
    mapped = only(map_event(ev, PROGRAM, VTN, CONFIG, NOW))
    assert isinstance(mapped, MappedEvent)
    assert mapped.spec.window.start_epoch == NOW


def test_mandatory_programs() -> None:
    config = MappingConfig(default_zones=("DE-LU",), mandatory_programs=frozenset({"peak-relief"}))
    mapped = only(map_event(event(simple(1)), PROGRAM, VTN, config, NOW))
    assert isinstance(mapped, MappedEvent) and mapped.spec.mandatory
    voluntary = only(map_event(event(simple(1)), PROGRAM, VTN, CONFIG, NOW))
    assert isinstance(voluntary, MappedEvent) and not voluntary.spec.mandatory


def test_map_events_drops_ended_windows_and_keeps_going_past_bad_events() -> None:
    ended = event(
        simple(1), id="old", intervalPeriod={"start": "2026-11-25T10:00:00Z", "duration": "PT1H"}
    )
    broken = event(simple(1), id="broken", intervalPeriod=None)
    poll = map_events([ended, broken, event(simple(2))], [PROGRAM], VTN, CONFIG, NOW)
    assert [m.spec.source.open_adr.event_id for m in poll.events if m.spec.source.open_adr] == [
        "e1"
    ]
    assert [s.event_id for s in poll.skipped] == ["broken"]
    assert "no intervalPeriod" in poll.skipped[0].reason


def test_map_events_keeps_ended_prices_for_the_price_history() -> None:
    period = {"start": "2026-11-25T10:00:00Z", "duration": "PT1H"}
    ended = event({"type": "PRICE", "values": [0.2]}, id="old", intervalPeriod=period)
    poll = map_events([ended], [PROGRAM], VTN, CONFIG, NOW)
    assert [(p.event_id, p.end < NOW, p.zones) for p in poll.prices] == [("old", True, ("DE-LU",))]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("PT15M", 900, id="short"),
        pytest.param("P0Y0M0DT0H15M0S", 900, id="long-form-from-openleadr"),
        pytest.param("PT1H30M", 5400, id="hours-minutes"),
        pytest.param("P1D", 86400, id="day"),
        pytest.param("P1W", 7 * 86400, id="week"),
        pytest.param("PT0.5S", 0.5, id="fraction"),
        pytest.param("P9999Y", 365 * 100 * 86400, id="infinite-is-a-century"),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "P", "PT", "1H", "PT1H2", "P1DT", "-PT1H", "PTXM"])
def test_bad_durations(bad: str) -> None:
    with pytest.raises(OpenAdrPayloadError, match="ISO 8601 duration"):
        parse_duration(bad)


def test_report_body_carries_demand_usage_and_baseline() -> None:
    source = OpenAdrSource(vtn=VTN, program_id="p1", event_id="e1", payload_type="SIMPLE", value=1)
    body = report_request(source, "gridaware", NOW, NOW + 1800, 300.0, baseline_kw=400.0)
    assert body["eventID"] == "e1" and body["clientName"] == "gridaware"
    resource = body["resources"][0]
    assert resource["intervalPeriod"] == {"start": "2026-11-25T16:00:00Z", "duration": "PT1800S"}
    payloads = {p["type"]: p["values"] for p in resource["intervals"][0]["payloads"]}
    assert payloads == {"DEMAND": [300.0], "USAGE": [150.0], "BASELINE": [400.0]}
    units = {d["payloadType"]: d["units"] for d in body["payloadDescriptors"]}
    assert units == {"DEMAND": "KW", "USAGE": "KWH", "BASELINE": "KW"}


def test_payload_error_is_a_signal_error() -> None:
    assert issubclass(OpenAdrPayloadError, FeedDataError)
    assert issubclass(OpenAdrPayloadError, SignalError)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(doc=JSON)
def test_parsing_anything_fails_only_with_payload_errors(doc: object) -> None:
    for parse in (parse_events, parse_programs):
        try:
            parsed = parse(doc)
        except OpenAdrPayloadError as exc:
            assert "malformed" in str(exc)
            continue
        assert isinstance(parsed, list) and len(parsed) == len(doc)  # type: ignore[arg-type]


PAYLOAD = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["SIMPLE", "IMPORT_CAPACITY_LIMIT", "PRICE", "GHG"]),
        "values": st.lists(
            st.sampled_from([0, 1, 2, 3, 7, -1, 2.5, 1e9, True, "1"])
            | st.floats(allow_nan=False, allow_infinity=False, width=32),
            min_size=0,
            max_size=2,
        ),
    }
)
PERIOD = st.fixed_dictionaries(
    {
        "start": st.sampled_from([START, "0001-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "x"]),
        "duration": st.sampled_from(["PT1H", "P0Y0M0DT0H15M0S", "P9999Y", "PT", "1H", "PT0S"]),
    }
)


@settings(max_examples=300)
@given(
    payloads=st.lists(PAYLOAD, min_size=1, max_size=3),
    period=st.none() | PERIOD,
    targets=st.none()
    | st.lists(st.sampled_from(["zone_DE-LU", "cluster_c", "zone_", "zone:", "x"])),
    units=st.sampled_from([None, "W", "KW", "MW", "KVAR"]),
)
def test_mapping_fails_only_with_payload_errors(
    payloads: list[dict[str, Any]],
    period: dict[str, str] | None,
    targets: list[str] | None,
    units: str | None,
) -> None:
    ev = WireEvent.model_validate(
        {
            "id": "h",
            "programID": "p1",
            "targets": targets,
            "intervalPeriod": period,
            "payloadDescriptors": [{"payloadType": "IMPORT_CAPACITY_LIMIT", "units": units}],
            "intervals": [{"id": 0, "payloads": payloads}],
        }
    )
    try:
        parts = map_event(ev, PROGRAM, VTN, CONFIG, NOW)
    except OpenAdrPayloadError:
        return
    for part in parts:
        if isinstance(part, MappedEvent):
            assert part.spec.window.end_epoch > part.spec.window.start_epoch
            assert part.spec.curtail is not None
    poll = map_events([ev], [PROGRAM], VTN, CONFIG, NOW)  # never raises
    assert len(poll.events) + len(poll.prices) + len(poll.skipped) <= len(parts)
