"""Re-planning cost: one planning round for 1,000 live jobs over 4 clusters and a 48 h
horizon, with the operator's own code (``core.shifting.plan`` and ``core.migration.consider``).

    .venv/bin/python bench/replan.py

Target (issue "follow green power"): under 1 s CPU per round.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "operator"))

from gridaware.api.v1alpha1 import MigrationPolicy, Objective
from gridaware.core import migration, shifting

H = 3600.0


def main() -> None:
    rng = np.random.default_rng(7)
    hours = 48
    t = np.arange(hours)
    forecasts = [
        shifting.Forecast(
            f"c{i}",
            1.0 + 0.1 * i,
            0.0,
            300 + 150 * np.sin(t / 24 * 2 * np.pi + i) + rng.normal(0, 20, hours),
            60 + 20 * np.cos(t / 24 * 2 * np.pi + i),
        )
        for i in range(4)
    ]
    objective = Objective(carbon_weight=1, price_weight=0.5)
    policy = MigrationPolicy(policy="Checkpoint")
    durations = rng.uniform(0.25, 12, 1000) * H
    slack = rng.uniform(0, 24, 1000) * H
    rounds = 5
    cpu = time.process_time()
    for _ in range(rounds):
        for d, s in zip(durations, slack, strict=True):
            shifting.plan(forecasts, objective, 0.0, 0.0, min(s, hours * H - d), d)
    plan_cpu = (time.process_time() - cpu) / rounds
    cpu = time.process_time()
    for _ in range(rounds):
        for d in durations:
            migration.consider("c0", forecasts, objective, policy, 0.0, d, 2 * H, 0)
    move_cpu = (time.process_time() - cpu) / rounds
    print(
        f"1,000 jobs x 4 clusters x 48 h: start-time planning {plan_cpu:.3f} s CPU per round, "
        f"migration check {move_cpu:.3f} s CPU per round, together "
        f"{plan_cpu + move_cpu:.3f} s   (target < 1 s)"
    )


if __name__ == "__main__":
    main()
