"""``gridaware run``'s options: a bad value is refused by the parser with what must change,
before the operator starts."""

from __future__ import annotations

import pytest

from gridaware.cli import build_parser, run


@pytest.mark.parametrize(
    ("argv", "workers"),
    [
        pytest.param([], 16, id="default"),
        pytest.param(["--workers", "64"], 64, id="far-away-members"),
        pytest.param(["--workers", "1"], 1, id="one"),
    ],
)
def test_workers_reach_the_config(argv: list[str], workers: int) -> None:
    args = build_parser().parse_args(["run", *argv])
    assert run.config_from(args).workers == workers


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("0", "must be at least 1", id="zero"),
        pytest.param("-3", "must be at least 1", id="negative"),
        pytest.param("many", "must be a whole number", id="word"),
        pytest.param("2.5", "must be a whole number", id="fraction"),
    ],
)
def test_bad_workers_are_refused(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--workers", value])
    assert f"--workers: {message}" in capsys.readouterr().err
