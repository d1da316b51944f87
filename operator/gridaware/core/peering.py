"""Which HA replica acts: the pure rule behind ``k8s.gateway.PeeringGate``.

Kopf's peering records say which replicas are alive and their priorities; a replica acts when
no live peer outranks or ties it. A replica that has just started must not act on that rule
alone: the replica that was active until now reads the records only every ``ttl`` seconds, so
for up to ``ttl`` seconds it has not seen the newcomer and acts too. The newcomer therefore
waits until its own record has been visible to everyone for ``ttl`` plus a margin before it
takes over from a live peer; alone, it acts as soon as its record is there.
"""

from __future__ import annotations

from dataclasses import dataclass

MARGIN = 1.0  # seconds on top of the other replicas' cache time


@dataclass(frozen=True)
class Peer:
    priority: int
    alive: bool


@dataclass(frozen=True)
class Verdict:
    active: bool
    own_since: float | None  # when this replica first saw its own record (None: not yet)


def decide(
    peers: list[Peer], priority: int, now: float, own_since: float | None, ttl: float
) -> Verdict:
    """Whether the replica with ``priority`` acts now; ``own_since`` carries over between
    calls (the caller keeps it)."""
    live = [p.priority for p in peers if p.alive]
    mine = sum(prio == priority for prio in live)
    if mine == 0:  # our record is not (or no longer) there: others cannot know about us
        return Verdict(False, None)
    since = now if own_since is None else own_since
    if any(prio > priority for prio in live) or mine > 1:
        return Verdict(False, since)
    others = len(live) - mine
    settled = others == 0 or now - since >= ttl + MARGIN
    return Verdict(settled, since)
