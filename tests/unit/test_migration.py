"""Migration decisions: table-driven cases, and no flapping on oscillating signals."""

from __future__ import annotations

import numpy as np
import pytest

from gridaware.api.v1alpha1 import MigrationPolicy, Objective
from gridaware.core.migration import consider
from gridaware.core.shifting import Forecast

H = 3600.0
POLICY = MigrationPolicy(
    policy="Checkpoint", min_dwell_seconds=1800, max_migrations=3, overhead_seconds=600, margin=0.1
)


def fc(cluster: str, values: list[float]) -> Forecast:
    return Forecast(cluster, 1.0, 0, np.array(values, dtype=float))


@pytest.mark.parametrize(
    ("forecasts", "policy", "since", "moves", "remaining", "target"),
    [
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            POLICY,
            2 * H,
            0,
            6 * H,
            "b",
            id="clearly-greener",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [380] * 24)],
            POLICY,
            2 * H,
            0,
            6 * H,
            None,
            id="within-margin",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            POLICY,
            600,
            0,
            6 * H,
            None,
            id="dwell-not-over",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            POLICY,
            2 * H,
            3,
            6 * H,
            None,
            id="budget-spent",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            MigrationPolicy(policy="Never"),
            2 * H,
            0,
            6 * H,
            None,
            id="never",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [300] * 24)],
            POLICY,
            2 * H,
            0,
            0.2 * H,
            None,
            id="almost-done",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24), fc("c", [50] * 24)],
            POLICY,
            2 * H,
            0,
            6 * H,
            "c",
            id="best-target",
        ),
        pytest.param(
            [fc("a", [100] * 2 + [600] * 22), fc("b", [300] * 24)],
            POLICY,
            2 * H,
            0,
            6 * H,
            "b",
            id="forecast-flip-ahead",
        ),
    ],
)
def test_consider(
    forecasts: list[Forecast],
    policy: MigrationPolicy,
    since: float,
    moves: int,
    remaining: float,
    target: str | None,
) -> None:
    move = consider(
        "a",
        forecasts,
        Objective(),
        policy,
        now=0,
        remaining=remaining,
        since_start=since,
        moves_done=moves,
    )
    assert (move.target if move else None) == target


def follow(
    a: np.ndarray, b: np.ndarray, hours: int, remaining: float, since: float
) -> tuple[str, int]:
    """Re-evaluate every hour like the operator does; (final cluster, number of moves)."""
    where, moves = "a", 0
    for hour in range(hours):
        fcs = [
            Forecast("a", 1.0, hour * H, a[hour:].astype(float)),
            Forecast("b", 1.0, hour * H, b[hour:].astype(float)),
        ]
        move = consider(
            where,
            fcs,
            Objective(),
            POLICY,
            now=hour * H,
            remaining=remaining,
            since_start=since,
            moves_done=moves,
        )
        since += H
        if move:
            where, moves, since = move.target, moves + 1, 0.0
    return where, moves


def test_oscillating_signals_do_not_cause_flapping() -> None:
    """Two regions that swap places every hour by a few percent: the job never moves."""
    t = np.arange(200)
    a = 300 + 15 * np.where(t % 2 == 0, 1, -1)
    b = 300 - 15 * np.where(t % 2 == 0, 1, -1)
    assert follow(a, b, 170, 12 * H, 0.0)[1] == 0


def test_a_lasting_change_moves_once() -> None:
    """a turns dirty for good at hour 10: one move to b, then it stays."""
    a = np.array([100.0] * 10 + [600.0] * 190)
    assert follow(a, np.full(200, 250.0), 150, 24 * H, 5 * H) == ("b", 1)


RESTART = POLICY.model_copy(update={"policy": "Restart"})
PRICED = Objective(carbon_weight=0, price_weight=1)


def priced(cluster: str, price: float) -> Forecast:
    return Forecast(cluster, 1.0, 0, np.full(24, 300.0), np.full(24, price))


@pytest.mark.parametrize(
    ("forecasts", "objective", "policy", "remaining", "duration", "deadline", "target"),
    [
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            Objective(),
            RESTART,
            1 * H,
            6 * H,
            None,
            None,
            id="restart-costs-the-whole-run-again",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            Objective(),
            POLICY,
            1 * H,
            6 * H,
            None,
            "b",
            id="checkpoint-costs-the-remaining-run",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [50] * 24)],
            Objective(),
            RESTART,
            2 * H,
            3 * H,
            None,
            "b",
            id="restart-still-worth-it",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            Objective(),
            POLICY,
            6 * H,
            8 * H,
            6 * H + 300,
            None,
            id="move-would-miss-the-deadline",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            Objective(),
            RESTART,
            2 * H,
            8 * H,
            9 * H,
            None,
            id="restart-would-miss-the-deadline",
        ),
        pytest.param(
            [fc("a", [400] * 24), fc("b", [100] * 24)],
            Objective(),
            POLICY,
            6 * H,
            8 * H,
            6 * H + 600,
            "b",
            id="move-just-meets-the-deadline",
        ),
        pytest.param(
            [priced("a", -1.1), priced("b", -1.0)],
            PRICED,
            POLICY,
            6 * H,
            None,
            None,
            None,
            id="negative-prices-dearer-target",
        ),
        pytest.param(
            [priced("a", -1.0), priced("b", -1.5)],
            PRICED,
            POLICY,
            6 * H,
            None,
            None,
            "b",
            id="negative-prices-cheaper-target",
        ),
        pytest.param(
            [priced("a", 0.0), priced("b", -0.5)],
            PRICED,
            POLICY,
            6 * H,
            None,
            None,
            "b",
            id="zero-to-negative",
        ),
    ],
)
def test_consider_policy_deadline_and_sign(
    forecasts: list[Forecast],
    objective: Objective,
    policy: MigrationPolicy,
    remaining: float,
    duration: float | None,
    deadline: float | None,
    target: str | None,
) -> None:
    move = consider(
        "a",
        forecasts,
        objective,
        policy,
        now=0,
        remaining=remaining,
        since_start=2 * H,
        moves_done=0,
        duration=duration,
        deadline=deadline,
    )
    assert (move.target if move else None) == target
    if move is not None:
        assert move.move < move.stay
