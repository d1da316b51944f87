"""The ``gridaware`` command line: one module per command, options beside the command.

Errors that users can fix are printed as one line prefixed with ``error:`` and a non-zero exit
code; tracebacks are for bugs only.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from gridaware import __version__
from gridaware.api.regions import UnknownRegionError
from gridaware.cli import crds, feeds, lab, member, report, run, simulate, status
from gridaware.k8s.clients import FAILURES, KubeconfigError
from gridaware.lab.errors import LabError
from gridaware.signals.errors import SignalError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridaware",
        description="Carbon- and price-aware placement of batch jobs across Kubernetes clusters.",
    )
    parser.add_argument("--version", action="version", version=f"gridaware {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    for command in (lab, feeds, run, simulate, status, crds, report, member):
        command.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors()
        )
        print(f"error: {details}", file=sys.stderr)
        return 2
    except (LabError, UnknownRegionError, ValueError, SignalError, KubeconfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except FAILURES as exc:
        print(
            f"error: the cluster did not answer as expected: {str(exc).splitlines()[0]}",
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
