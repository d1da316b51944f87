"""``gridaware crds``: write the CRD YAML generated from the API models (one source of truth).

The same files go to ``crds/`` (for ``kubectl apply``) and to the chart's ``files/crds/``, which
``templates/crds.yaml`` renders as ordinary templates: Helm never upgrades a chart's ``crds/``
folder, so the chart ships its CRDs as templates, as cert-manager's and Kueue's charts do.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def _crds(args: argparse.Namespace) -> int:
    from gridaware.api import crd  # noqa: PLC0415

    for out in args.out or [Path("crds"), Path("helm/gridaware/files/crds")]:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in crd.render().items():
            (out / name).write_text(text)
            print(f"wrote {out / name}")
    return 0


def add(sub: Any) -> None:
    crds = sub.add_parser("crds", help="write the CRD YAML generated from the API models")
    crds.add_argument(
        "--out",
        type=Path,
        action="append",
        help="directory (repeatable; default: crds and helm/gridaware/files/crds)",
    )
    crds.set_defaults(func=_crds)
