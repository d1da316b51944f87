"""Replaying grid events in the simulator: windows merged per zone, figures by hand."""

from __future__ import annotations

from dataclasses import replace
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
    A Curtail of 25 % from hour 2 to 4, not pre-curtailed, pauses job 0 (first by key) when
    the window opens, effective after 30 s: the load is 4 units at the first sample, 3 from
    the next minute on."""
    hours = 8760 + 48
    regions = Regions(["Z"], np.full((1, hours), 100.0), np.zeros((1, hours)), ["-"], np.ones(1))
    work = Workload(
        np.zeros(4), np.full(4, 10.0), np.ones(4), np.zeros(4, dtype=np.int64), np.full(4, 100.0)
    )
    w = ev.Window("Z", 2 * 3600.0, 4 * 3600.0, ("curtail",), ("test",))
    r = ev.replay([w], regions, work, ev.EventParams(pausable_share=0.6, precurtail=False))[0]
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


def _flat(n: int) -> tuple[Regions, Workload]:
    """``n`` 1-CPU jobs run 10 h from hour 0 in one zone of flat intensity."""
    hours = 8760 + 48
    regions = Regions(["Z"], np.full((1, hours), 100.0), np.zeros((1, hours)), ["-"], np.ones(1))
    work = Workload(
        np.zeros(n), np.full(n, 10.0), np.ones(n), np.zeros(n, dtype=np.int64), np.full(n, 100.0)
    )
    return regions, work


@pytest.mark.parametrize(
    ("n", "share", "ramp_units", "paused", "delay_s", "late_ttt"),
    [
        pytest.param(4, 0.25, None, 1, 7200 + 30, 60.0, id="no-ramp-limit-paused-30-s-ahead"),
        # 4 pauses at 2 units a minute: lead 60 + 90 s, begun at the start-120 round; two take
        # effect at start-90, two at start-30; resumed two at the end, two a minute later
        # (with no notice the last two take effect 90 s into the window: on target at 120 s)
        pytest.param(8, 0.5, 2.0, 4, 4 * 7290, 120.0, id="ramp-limited-begins-earlier"),
    ],
)
def test_pre_curtailment_by_hand(
    n: int, share: float, ramp_units: float | None, paused: int, delay_s: float, late_ttt: float
) -> None:
    """Known an hour ahead, the event is pre-curtailed by ``core.events.plan_ahead``: the
    lead is the ramp's spread and 90 s (30 s of checkpoint, a minute of round), the window
    opens on target (compliance 1, time to target 0), the early minutes are delay."""
    regions, work = _flat(n)
    unit = WATTS_PER_CPU / 1000 * 1.2
    ramp = None if ramp_units is None else ramp_units * unit
    params = ev.EventParams(reduce_share=share, ramp_kw_per_minute=ramp)
    w = ev.Window("Z", 2 * 3600.0, 4 * 3600.0, ("curtail",), ("test",))
    r = ev.replay([w], regions, work, params)[0]
    assert (r.paused, r.deadline_misses) == (paused, 0)
    assert r.baseline_kw == pytest.approx(n * unit)
    assert (r.time_to_target_s, r.compliance) == (0.0, 1.0)
    assert r.achieved_kw == pytest.approx((n - paused) * unit)
    assert r.delay_job_hours == pytest.approx(delay_s / 3600)
    late = ev.replay([w], regions, work, replace(params, notice_s=0.0))[0]
    assert late.time_to_target_s == late_ttt, "no notice: the window's own rounds respond"
