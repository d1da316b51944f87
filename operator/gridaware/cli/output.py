"""Plain-text output shared by the commands: kubectl-style tables and ages."""

from __future__ import annotations


def table(rows: list[dict[str, str]]) -> str:
    """Rows of equal keys as an aligned plain-text table (kubectl style)."""
    if not rows:
        return ""
    headers = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in headers}
    lines = ["   ".join(h.ljust(widths[h]) for h in headers).rstrip()]
    lines += ["   ".join(r[h].ljust(widths[h]) for h in headers).rstrip() for r in rows]
    return "\n".join(lines)


def age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"
