"""The command line for the parts that need no cluster: feeds check and simulate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gridaware.cli import main
from tests.conftest import SHARED_DATA


def test_feeds_check_offline_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["feeds", "check", "--zone", "DE-LU", "--zone", "GB"]) == 0
    out = capsys.readouterr().out
    assert "DE-LU" in out and "gCO2e/kWh" in out
    assert re.search(r"4[89]h \(synthetic\)", out), out


def test_feeds_check_reports_a_failing_chain(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "feeds.yaml"
    cfg.write_text(
        "providers: {s: {type: static, options: {values: {}}}}\n"
        "default: {carbon: [s], price: [s]}\n"
    )
    assert main(["feeds", "check", "--config", str(cfg), "--zone", "FR"]) == 1
    captured = capsys.readouterr()
    assert "FAILED" in captured.out
    assert "no carbon value for FR" in captured.err


@pytest.mark.skipif(not (SHARED_DATA / "workloads").is_dir(), reason="needs ../shared/data")
def test_simulate_writes_table_json_and_plots(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "simulate",
            "--data-dir",
            str(SHARED_DATA),
            "--workload",
            str(SHARED_DATA / "workloads" / "pai-100k.csv"),
            "--limit",
            "150",
            "--zones",
            "DE-LU,CA-ON",
            "--json",
            str(tmp_path / "r.json"),
            "--plots",
            str(tmp_path / "plots"),
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    for policy in ("now", "threshold", "lowest-window", "greedy-spatial", "gridaware", "oracle"):
        assert policy in out
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["jobs"] == 150
    assert data["policies"]["now"]["saving_vs_now"] == 0
    assert all(p["deadline_misses"] == 0 for p in data["policies"].values())
    oracle = data["policies"]["oracle"]["carbon_kg"]
    assert all(
        p["carbon_kg"] >= oracle * (1 - 1e-9)
        for n, p in data["policies"].items()
        if n != "gridaware"
    )
    assert data["interruptible_oracle_bound_kg"] <= oracle
    assert (tmp_path / "plots" / "cumulative-emissions.png").stat().st_size > 10_000


def test_simulate_unknown_zone_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        [
            "simulate",
            "--data-dir",
            str(tmp_path),
            "--workload",
            str(SHARED_DATA / "workloads" / "pai_1k.csv"),
            "--zones",
            "XX",
        ]
    )
    assert rc != 0
    assert capsys.readouterr().err.startswith("error: ")
