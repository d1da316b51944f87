"""Replaying grid events in the simulator: windows merged per zone, figures by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gridaware.sim import events as ev
from gridaware.sim.engine import WATTS_PER_CPU
from gridaware.sim.scenario import Regions, Workload
from tests.conftest import SHARED_DATA

HEADER = "zone,start_utc,end_utc,type,requested_reduction,source_name,source_ref,notes\n"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        pytest.param(
            [
                "Z,2023-07-01T01:00:00Z,2023-07-01T03:00:00Z,curtail",
                "Z,2023-07-01T02:00:00Z,2023-07-01T05:00:00Z,stress",
            ],
            [("Z", 1, 5, ("curtail", "stress"))],
            id="overlap-merged",
        ),
        pytest.param(
            [
                "Z,2023-07-01T01:00:00Z,2023-07-01T02:00:00Z,curtail",
                "Y,2023-07-01T01:30:00Z,2023-07-01T02:00:00Z,curtail",
            ],
            [("Y", 1.5, 2, ("curtail",)), ("Z", 1, 2, ("curtail",))],
            id="zones-apart",
        ),
        pytest.param(
            ["Z,2022-07-01T01:00:00Z,2022-07-01T02:00:00Z,curtail"], [], id="other-year-left-out"
        ),
    ],
)
def test_load_events(
    tmp_path: Path, rows: list[str], expected: list[tuple[str, float, float, tuple[str, ...]]]
) -> None:
    body = "".join(f"{r},,src,ref,notes\n" for r in rows)
    (tmp_path / "events_x.csv").write_text(HEADER + body)
    day = (181 * 24) * 3600.0  # 2023-07-01 from the start of the year
    got = [
        (w.zone, (w.start - day) / 3600, (w.end - day) / 3600, w.types)
        for w in ev.load_events(tmp_path)
    ]
    assert got == expected


def test_replay_by_hand() -> None:
    """Four 1-CPU jobs run 10 h from hour 0; jobs 0 and 2 checkpoint (pausable share 0.6).
    A Curtail of 25 % from hour 2 to 4 pauses job 0 (first by key), effective after 30 s:
    the load is 4 units at the first sample, 3 from the next minute on."""
    hours = 8760 + 48
    regions = Regions(["Z"], np.full((1, hours), 100.0), np.zeros((1, hours)), ["-"], np.ones(1))
    work = Workload(
        np.zeros(4), np.full(4, 10.0), np.ones(4), np.zeros(4, dtype=np.int64), np.full(4, 100.0)
    )
    w = ev.Window("Z", 2 * 3600.0, 4 * 3600.0, ("curtail",), ("test",))
    r = ev.replay([w], regions, work, ev.EventParams(pausable_share=0.6))[0]
    unit = WATTS_PER_CPU / 1000 * 1.2
    assert (r.jobs, r.paused, r.held, r.deadline_misses) == (4, 1, 0, 0)
    assert r.baseline_kw == pytest.approx(4 * unit)
    assert r.target_kw == pytest.approx(3 * unit)
    assert r.time_to_target_s == 60.0
    assert r.compliance == pytest.approx(7140 / 7200)
    assert r.achieved_kw == pytest.approx((4 * 60 + 3 * 7140) / 7200 * unit)
    assert r.delay_job_hours == pytest.approx(7170 / 3600)
    assert r.extra_carbon_kg == pytest.approx(0.0, abs=1e-12)  # flat intensity: no cost
    assert r.forecast_error == pytest.approx(0.0)  # nothing arrives: the plan is exact


@pytest.mark.skipif(not (SHARED_DATA / "grid-events").exists(), reason="no shared data")
def test_the_2023_windows() -> None:
    windows = ev.load_events(SHARED_DATA / "grid-events")
    zones = {w.zone for w in windows}
    assert zones == {"GB", "US-CAL-CISO", "US-MIDA-PJM", "US-TEX-ERCO"}
    assert sum(w.zone == "GB" for w in windows) == 6
    # ERCOT: 11 appeals and one EEA 2 inside the 6 September appeal
    assert sum(w.zone == "US-TEX-ERCO" for w in windows) == 11
    assert all(w.end > w.start for w in windows)
