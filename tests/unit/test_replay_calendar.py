"""Replay traces of any calendar: leap years, partial years, several files joined, explicit
paths; clear errors for gaps, duplicates, overlaps and unit mismatches."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from gridaware.api.signals import Signal
from gridaware.signals.errors import FeedDataError
from gridaware.signals.providers.local import Replay
from gridaware.sim.scenario import load_regions

CARBON_HEADER = "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (LCA),Data Estimated\n"


def _carbon(
    path: Path, start: dt.datetime, hours: int, skip: int | None = None, dup: int | None = None
) -> None:
    lines = [CARBON_HEADER]
    for h in range(hours):
        if h == skip:
            continue
        t = start + dt.timedelta(hours=h)
        row = f"{t:%Y-%m-%d %H:%M:%S},X,{100 + h % 24},false\n"
        lines.append(row)
        if h == dup:
            lines.append(row)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")


def _price(path: Path, start: dt.datetime, hours: int, currency: str) -> None:
    lines = [f"Datetime (UTC),Price ({currency}/MWh)\n"]
    for h in range(hours):
        t = start + dt.timedelta(hours=h)
        lines.append(f"{t.isoformat()},{50 + h % 7}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")


Y2024 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
Y2023_DEC = dt.datetime(2023, 12, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("files", "start", "hours"),
    [
        pytest.param([("ZZ_2024_hourly.csv", Y2024, 8784)], Y2024, 8784, id="leap-year"),
        pytest.param([("ZZ_2024_hourly.csv", Y2024, 240)], Y2024, 240, id="partial-year"),
        pytest.param(
            [("ZZ_2023_hourly.csv", Y2023_DEC, 744), ("ZZ_2024_hourly.csv", Y2024, 100)],
            Y2023_DEC,
            844,
            id="two-years-joined",
        ),
        pytest.param([("ZZ_hourly.csv", Y2024, 50)], Y2024, 50, id="any-range-file"),
    ],
)
def test_replay_reads_any_range(
    tmp_path: Path, files: list[tuple[str, dt.datetime, int]], start: dt.datetime, hours: int
) -> None:
    for name, t0, n in files:
        _carbon(tmp_path / "carbon" / name, t0, n)
    replay = Replay("r", tmp_path)
    t_start, t_end = replay.span("ZZ", Signal.CARBON)
    assert (t_start, (t_end - t_start) // 3600) == (int(start.timestamp()), hours)
    s = replay.history("ZZ", Signal.CARBON, t_start, t_end)
    assert len(s) == hours and s.value[25] == 101


@pytest.mark.parametrize(
    ("write", "message"),
    [
        pytest.param(
            lambda d: _carbon(d / "carbon" / "ZZ_2024_hourly.csv", Y2024, 48, skip=10),
            "gap of 1 h before 2024-01-01T11:00",
            id="gap",
        ),
        pytest.param(
            lambda d: _carbon(d / "carbon" / "ZZ_2024_hourly.csv", Y2024, 48, dup=5),
            "duplicate hour 2024-01-01T05:00",
            id="duplicate",
        ),
        pytest.param(
            lambda d: (
                _carbon(d / "carbon" / "ZZ_2023_hourly.csv", Y2023_DEC, 800),
                _carbon(d / "carbon" / "ZZ_2024_hourly.csv", Y2024, 10),
            ),
            "overlaps the previous file",
            id="overlapping-files",
        ),
        pytest.param(
            lambda d: (
                _carbon(d / "carbon" / "ZZ_2023_hourly.csv", Y2023_DEC, 700),
                _carbon(d / "carbon" / "ZZ_2024_hourly.csv", Y2024, 10),
            ),
            "leaves a gap",
            id="files-with-a-gap",
        ),
    ],
)
def test_bad_carbon_traces_say_what_is_wrong(tmp_path: Path, write: object, message: str) -> None:
    write(tmp_path)  # type: ignore[operator]
    with pytest.raises(FeedDataError, match=message):
        Replay("r", tmp_path).history("ZZ", Signal.CARBON, 0, 2e9)


def test_price_units_come_from_the_header_and_must_agree(tmp_path: Path) -> None:
    _price(tmp_path / "prices" / "ZZ_electricity_prices_2024.csv", Y2024, 24, "EUR")
    s = Replay("r", tmp_path).history("ZZ", Signal.PRICE, 0, 2e9)
    assert s.unit == "EUR/MWh" and len(s) == 24
    _price(tmp_path / "prices" / "ZZ_electricity_prices_2023.csv", Y2023_DEC, 744, "USD")
    with pytest.raises(FeedDataError, match="is in"):
        Replay("r2", tmp_path).history("ZZ", Signal.PRICE, 0, 2e9)


def test_explicit_paths(tmp_path: Path) -> None:
    _carbon(tmp_path / "mine.csv", Y2024, 30)
    replay = Replay("r", tmp_path / "nowhere", paths={"ZZ": {"carbon": [tmp_path / "mine.csv"]}})
    assert len(replay.history("ZZ", Signal.CARBON, 0, 2e9)) == 30


def test_simulator_takes_the_range_from_the_data(tmp_path: Path) -> None:
    _carbon(tmp_path / "carbon" / "ZZ_2024_hourly.csv", Y2024, 24 * 10)
    _carbon(tmp_path / "carbon" / "YY_2024_hourly.csv", Y2024 + dt.timedelta(hours=24), 24 * 12)
    regions = load_regions(["ZZ", "YY"], tmp_path, 48, need_hours=300)
    assert regions.start == int((Y2024 + dt.timedelta(hours=24)).timestamp())
    assert regions.hours == 24 * 9  # the hours both traces cover
    assert regions.carbon.shape == (2, 300 + 48)
    rest = regions.carbon.shape[1] - regions.hours  # wrapped around to the first hours
    assert np.array_equal(regions.carbon[:, regions.hours :], regions.carbon[:, :rest])
    assert all(src.startswith("synthetic") for src in regions.price_sources)
