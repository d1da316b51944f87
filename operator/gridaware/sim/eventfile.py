"""Event windows for the simulator, read from a file: the CSV of ``../shared/data/grid-events``
(one notice per row, overlapping notices of a zone merged into one window) or YAML of
GridEvents (whole objects or bare specs, several documents or a list), so that a replay can
be run on exactly what a grid operator sent.

Every mistake is reported with the file, the line and what to change, because these files are
written by hand: a window that ends before it starts, a time without a zone, a missing column,
an event on clusters (the simulator knows zones only). YAML specs are checked by the same
pydantic models as the operator's ``GridEvent`` (``api.gridevents``), so a file the simulator
accepts is one ``kubectl apply`` would accept too.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import ValidationError

from gridaware.api.gridevents import Absorb, Curtail, GridEventKind, GridEventSpec
from gridaware.api.v1alpha1 import parse_time

YEAR0 = dt.datetime(2023, 1, 1, tzinfo=dt.UTC).timestamp()
REQUIRED = ("zone", "start_utc", "end_utc", "type")
TYPES = ("curtail", "stress")  # the data's README: a load request, or an alert without one


class EventFileError(ValueError):
    """A bad event file; the message is ``file:line: what is wrong``."""


@dataclass(frozen=True)
class Window:
    """One event window of one zone; times in seconds from 2023-01-01T00:00Z (the traces')."""

    zone: str
    start: float
    end: float
    types: tuple[str, ...]
    sources: tuple[str, ...]
    name: str = ""
    kind: GridEventKind = "Curtail"
    amount: Curtail | Absorb | None = None  # None: the replay's default share of the baseline
    mandatory: bool = False


Row = tuple[str, float, float, str, str]  # zone, start, end, type, source (CSV notices)


def read(path: Path, types: tuple[str, ...] = ()) -> list[Window]:
    """The windows of a CSV or YAML file, or of every ``events_*.csv`` in a directory; with
    ``types``, only the CSV notices of those types (before overlapping ones are merged)."""
    if path.is_dir():
        files = sorted(path.glob("events_*.csv"))
        if not files:
            raise EventFileError(f"{path}: no events_*.csv file in this directory")
        rows = [r for f in files for r in csv_rows(_text(f), str(f))]
    elif path.suffix.lower() == ".csv":
        rows = csv_rows(_text(path), str(path))
    elif path.suffix.lower() in (".yaml", ".yml"):
        return yaml_windows(_text(path), str(path))
    else:
        raise EventFileError(f"{path}: unknown format {path.suffix or '(none)'}: use .csv or .yaml")
    return merge(sorted(r for r in rows if not types or r[3] in types))


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventFileError(f"{path}: cannot read it: {exc}") from None


# --- CSV (the grid-events data set) ---------------------------------------------------------


def csv_rows(text: str, source: str = "<csv>") -> list[Row]:
    """Every notice of a grid-events CSV (header ``zone,start_utc,end_utc,type,...``)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise EventFileError(f"{source}:1: empty file: expected a header {','.join(REQUIRED)}")
        names = [h.strip() for h in header]
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise EventFileError(
                f"{source}:1: missing column(s) {', '.join(missing)}: the header needs "
                f"{', '.join(REQUIRED)} (source_name optional)"
            )
        rows: list[Row] = []
        line = reader.line_num
        for fields in reader:
            first, line = line + 1, reader.line_num  # a quoted field may span lines
            if not fields or all(not f.strip() for f in fields):
                continue
            rows.append(_csv_row(dict(zip(names, fields, strict=False)), fields, names, first))
    except csv.Error as exc:
        raise EventFileError(f"{source}:{reader.line_num}: not valid CSV: {exc}") from None
    except _RowError as exc:
        raise EventFileError(f"{source}:{exc.line}: {exc}") from None
    return rows


class _RowError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


def _csv_row(r: dict[str, str], fields: list[str], names: list[str], line: int) -> Row:
    if len(fields) != len(names):
        raise _RowError(line, f"{len(fields)} fields, the header has {len(names)}")
    zone, kind = r["zone"].strip(), r["type"].strip()
    if not zone:
        raise _RowError(line, "zone is empty")
    if kind not in TYPES:
        raise _RowError(line, f"type {kind!r} is neither {' nor '.join(TYPES)}")
    start, end = _time(r, "start_utc", line), _time(r, "end_utc", line)
    if end <= start:
        raise _RowError(line, f"end_utc {r['end_utc']} is not after start_utc {r['start_utc']}")
    return zone, start - YEAR0, end - YEAR0, kind, r.get("source_name", "").strip()


def _time(r: dict[str, str], column: str, line: int) -> float:
    try:
        return parse_time(r[column].strip())
    except ValueError as exc:
        raise _RowError(line, f"{column}: {exc}") from None


def merge(rows: list[Row]) -> list[Window]:
    """Overlapping notices of one zone as one window (``rows`` sorted), as the data's README
    advises: a Flex Alert, an EEA Watch and an EEA 2 on one evening are one event."""
    out: list[Window] = []
    for zone, start, end, type_, source in rows:
        last = out[-1] if out else None
        if last is not None and last.zone == zone and start <= last.end:
            out[-1] = Window(
                zone,
                last.start,
                max(last.end, end),
                tuple(sorted({*last.types, type_})),
                tuple(sorted({*last.sources, source})),
            )
        else:
            out.append(Window(zone, start, end, (type_,), (source,)))
    return out


# --- YAML (GridEvents) ----------------------------------------------------------------------


def yaml_windows(text: str, source: str = "<yaml>") -> list[Window]:
    """One window per zone of every GridEvent (object or bare spec) in the documents."""
    out: list[Window] = []
    for index, node in enumerate(_nodes(text, source)):
        out += _event(node, index, source)
    if not out:
        raise EventFileError(f"{source}:1: no GridEvent in the file")
    return sorted(out, key=lambda w: (w.start, w.zone, w.name))


def _nodes(text: str, source: str) -> Iterator[yaml.Node]:
    try:
        documents = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc)
        raise EventFileError(f"{source}:{line}: not valid YAML: {problem}") from None
    for doc in documents:
        if isinstance(doc, yaml.SequenceNode):
            yield from doc.value
        elif doc is not None and doc.tag != "tag:yaml.org,2002:null":
            yield doc


def _event(node: yaml.Node, index: int, source: str) -> list[Window]:
    line = node.start_mark.line + 1
    try:
        obj = yaml.SafeLoader("").construct_document(node)
    except yaml.YAMLError as exc:  # e.g. a list as a mapping key
        problem = getattr(exc, "problem", None) or str(exc)
        raise EventFileError(f"{source}:{line}: not valid YAML: {problem}") from None
    if not isinstance(obj, dict):
        raise EventFileError(
            f"{source}:{line}: expected a GridEvent (apiVersion, kind, metadata, spec) or its "
            f"spec, got {type(obj).__name__}"
        )
    body, prefix = (obj["spec"], ("spec",)) if "spec" in obj else (obj, ())
    meta = obj.get("metadata")
    named = meta.get("name") if isinstance(meta, dict) else None
    name = str(named or f"event-{index + 1}")
    try:
        spec = GridEventSpec.model_validate(body)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = (*prefix, *err["loc"])
        where = ".".join(str(p) for p in loc) or "spec"
        message = str(err["msg"]).removeprefix("Value error, ")
        raise EventFileError(f"{source}:{_line(node, loc)}: {where}: {message}") from None
    return _windows(spec, name, node, prefix, source)


def _windows(
    spec: GridEventSpec, name: str, node: yaml.Node, prefix: tuple[str, ...], source: str
) -> list[Window]:
    targets = (*prefix, "targets")
    if spec.targets.clusters:
        raise EventFileError(
            f"{source}:{_line(node, (*targets, 'clusters'))}: {name}: targets.clusters: the "
            "simulator knows grid zones, not clusters: name zones in targets.zones"
        )
    amount: Curtail | Absorb | None = spec.curtail if spec.kind == "Curtail" else spec.absorb
    by_share = spec.curtail is not None and spec.curtail.reduce_percent is not None
    if len(spec.targets.zones) > 1 and not by_share:
        raise EventFileError(
            f"{source}:{_line(node, (*targets, 'zones'))}: {name}: a kW amount over several "
            "zones cannot be replayed zone by zone: one zone per event, or reducePercent"
        )
    start, end = spec.window.start_epoch - YEAR0, spec.window.end_epoch - YEAR0
    kind, sources = (spec.kind.lower(),), (spec.source.type,)
    return [
        Window(zone, start, end, kind, sources, name, spec.kind, amount, spec.mandatory)
        for zone in spec.targets.zones
    ]


def _line(node: yaml.Node, loc: tuple[str | int, ...]) -> int:
    """The line of the deepest key on ``loc`` (camelCase names, list indices) that the
    document has: where the reader should look."""
    line = node.start_mark.line + 1
    for key in loc:
        found = _child(node, key)
        if found is None:
            break
        line, node = found
    return line


def _child(node: yaml.Node, key: str | int) -> tuple[int, yaml.Node] | None:
    """The child at ``key`` and the line of its key (of the item, in a list)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                return k.start_mark.line + 1, v
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        item = node.value[key]
        return item.start_mark.line + 1, item
    return None
