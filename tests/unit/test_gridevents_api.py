"""The GridEvent API: the pydantic rules, the targets they compute, and the generated CRD (every
field described, structural, CEL rules in place, columns that tell the story)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from gridaware.api import crd
from gridaware.api.gridevents import (
    GRIDEVENT_RULES,
    EventWindow,
    GridEventSpec,
    GridEventStatus,
    window_of,
)

WINDOW = {"start": "2026-11-25T17:00:00Z", "end": "2026-11-25T20:00:00Z"}


def spec(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "targets": {"zones": ["DE-LU"]},
        "window": WINDOW,
        "kind": "Curtail",
        "curtail": {"reducePercent": 25},
    }
    return {**base, **over}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        pytest.param(spec(targets={}), "at least one zone or cluster", id="no-targets"),
        pytest.param(
            spec(window={"start": WINDOW["end"], "end": WINDOW["start"]}),
            "must be after window.start",
            id="end-before-start",
        ),
        pytest.param(
            spec(window={"start": WINDOW["start"], "end": WINDOW["start"]}),
            "must be after window.start",
            id="empty-window",
        ),
        pytest.param(
            spec(window={"start": "2026-11-25T17:00:00", "end": WINDOW["end"]}),
            "no time zone",
            id="naive-start",
        ),
        pytest.param(
            spec(curtail={"reducePercent": 25, "capKw": 100}),
            "exactly one of reducePercent, reduceKw or capKw",
            id="curtail-two-ways",
        ),
        pytest.param(
            spec(curtail={}), "exactly one of reducePercent, reduceKw or capKw", id="curtail-none"
        ),
        pytest.param(spec(curtail={"reducePercent": 120}), "100", id="percent-over-100"),
        pytest.param(spec(curtail=None), "kind Curtail needs spec.curtail", id="curtail-missing"),
        pytest.param(
            spec(absorb={"upToKw": 10}), "kind Curtail needs spec.curtail and no", id="both-kinds"
        ),
        pytest.param(
            spec(kind="Absorb"), "kind Absorb needs spec.absorb", id="absorb-without-absorb"
        ),
        pytest.param(spec(kind="Shed"), "Curtail", id="unknown-kind"),
        pytest.param(
            spec(source={"type": "OpenADR"}), "source.openAdr must be set", id="openadr-no-ids"
        ),
        pytest.param(
            spec(
                source={
                    "type": "Manual",
                    "openAdr": {
                        "vtn": "http://vtn",
                        "programId": "p",
                        "eventId": "e",
                        "payloadType": "SIMPLE",
                        "value": 1,
                    },
                }
            ),
            "source.openAdr must be set",
            id="manual-with-openadr",
        ),
    ],
)
def test_bad_specs_say_what_must_change(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        GridEventSpec.model_validate(doc)


@pytest.mark.parametrize(
    ("doc", "baseline", "target"),
    [
        pytest.param(spec(), 400.0, 300.0, id="curtail-25-percent"),
        pytest.param(spec(curtail={"reduceKw": 150}), 400.0, 250.0, id="curtail-by-kw"),
        pytest.param(spec(curtail={"reduceKw": 500}), 400.0, 0.0, id="curtail-by-more-than-all"),
        pytest.param(spec(curtail={"capKw": 120}), 400.0, 120.0, id="cap-below-baseline"),
        pytest.param(spec(curtail={"capKw": 500}), 400.0, 400.0, id="cap-above-baseline"),
        pytest.param(
            spec(kind="Absorb", curtail=None, absorb={"upToKw": 2000}),
            400.0,
            2400.0,
            id="absorb-up-to",
        ),
    ],
)
def test_target_from_baseline(doc: dict[str, Any], baseline: float, target: float) -> None:
    assert GridEventSpec.model_validate(doc).target_kw(baseline) == pytest.approx(target)


@given(
    percent=st.floats(min_value=0.01, max_value=100),
    baseline=st.floats(min_value=0, max_value=1e6),
)
def test_curtail_targets_never_exceed_the_baseline(percent: float, baseline: float) -> None:
    ev = GridEventSpec.model_validate(spec(curtail={"reducePercent": percent}))
    assert 0 <= ev.target_kw(baseline) <= baseline


def test_defaults_are_manual_and_voluntary() -> None:
    ev = GridEventSpec.model_validate(spec())
    assert ev.source.type == "Manual" and ev.source.open_adr is None
    assert ev.mandatory is False


def test_window_of_and_contains() -> None:
    start = dt.datetime(2026, 11, 25, 18, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    w = window_of(start, dt.timedelta(hours=3))
    assert (w.start, w.end) == ("2026-11-25T17:00:00Z", "2026-11-25T20:00:00Z")
    assert w.contains(w.start_epoch) and not w.contains(w.end_epoch)
    with pytest.raises(ValueError, match="time zone"):
        window_of(dt.datetime(2026, 11, 25, 18, 0), dt.timedelta(hours=1))


def test_status_round_trips_in_camel_case() -> None:
    status = GridEventStatus.model_validate(
        {
            "phase": "Active",
            "baselineKw": 400,
            "targetKw": 300,
            "achievedKw": 290,
            "timeToTargetSeconds": 12.5,
            "compliance": 1.0,
            "actions": [
                {"time": "2026-11-25T17:00:03Z", "type": "Pause", "job": "ml/train", "deltaKw": -8}
            ],
        }
    )
    dumped = status.model_dump(by_alias=True, exclude_none=True)
    assert dumped["actions"][0]["deltaKw"] == -8
    assert GridEventStatus.model_validate(dumped) == status


def _schema() -> dict[str, Any]:
    return crd.gridevent_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _undescribed(schema: dict[str, Any], path: str) -> list[str]:
    missing = []
    for name, prop in (schema.get("properties") or {}).items():
        where = f"{path}.{name}"
        if name != "metadata" and not prop.get("description"):
            missing.append(where)
        missing += _undescribed(prop, where)
    items = schema.get("items")
    if isinstance(items, dict):
        missing += _undescribed(items, path + "[]")
    return missing


def test_every_field_has_a_description() -> None:
    assert _undescribed(_schema(), "") == []


def test_crd_is_structural_cluster_scoped_with_short_name() -> None:
    doc = crd.gridevent_crd()
    text = yaml.safe_dump(doc)
    for forbidden in ("$ref", "anyOf", "title:", "$defs"):
        assert forbidden not in text
    assert doc["spec"]["scope"] == "Cluster"
    assert doc["spec"]["names"]["shortNames"] == ["ge"]
    assert "gridevents.gridaware.dev.yaml" in crd.render()


@pytest.mark.parametrize("path", sorted(GRIDEVENT_RULES), ids=sorted(GRIDEVENT_RULES))
def test_cel_rules_are_in_place(path: str) -> None:
    node = _schema()
    for part in path.split(".")[1:]:
        node = node["properties"][part]
    rules = node["x-kubernetes-validations"]
    assert rules == GRIDEVENT_RULES[path]
    assert all(" must " in r["message"] for r in rules)


def test_columns_tell_the_story() -> None:
    columns = crd.gridevent_crd()["spec"]["versions"][0]["additionalPrinterColumns"]
    names = [c["name"] for c in columns]
    for wanted in ("Kind", "Start", "End", "Phase", "Baseline kW", "Achieved kW", "Compliance"):
        assert wanted in names
    schema = _schema()
    for column in columns:
        parts = column["jsonPath"].lstrip(".").split(".")
        if parts[0] == "metadata":
            continue
        node = schema
        for part in parts:
            node = node["properties"][part]  # every column points at a real field


def test_window_model_rejects_garbage_times() -> None:
    with pytest.raises(ValidationError, match="RFC 3339"):
        EventWindow.model_validate({"start": "tomorrow", "end": WINDOW["end"]})
