"""A work queue of job keys, like client-go's: a key is processed by one worker at a time,
adding a key that is already waiting does nothing (events coalesce), a key added while it is
being processed runs once more afterwards, and a failed key comes back after its delay.

Retries live here, in memory, not in annotations on the object: waiting for capacity, a
deferred start or an unreachable member costs no write to the hub.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from collections.abc import Callable

from gridaware.services.ports import Stopped

log = logging.getLogger("gridaware.queue")


class WorkQueue:
    def __init__(
        self,
        handle: Callable[[str], float | None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``handle(key)`` returns None when done, or the seconds after which to retry."""
        self._handle = handle
        self._clock = clock
        self._cv = threading.Condition()
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._active: set[str] = set()
        self._again: set[str] = set()
        self._seq = 0

    def add(self, key: str, delay: float = 0.0) -> None:
        """Process ``key`` after ``delay`` seconds (or sooner if already due sooner)."""
        with self._cv:
            if key in self._active:
                if delay <= 0:
                    self._again.add(key)
                else:
                    self._schedule(key, delay)
                return
            self._schedule(key, delay)

    def _schedule(self, key: str, delay: float) -> None:
        at = self._clock() + max(0.0, delay)
        if key in self._due and self._due[key] <= at:
            return
        self._due[key] = at
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, key))
        self._cv.notify()

    def __len__(self) -> int:
        with self._cv:
            return len(self._due)

    def _next(self, stopped: Stopped, block: bool = True) -> str | None:
        with self._cv:
            while not stopped.is_set():
                now = self._clock()
                while self._heap:
                    at, _seq, key = self._heap[0]
                    if self._due.get(key) != at:  # superseded by an earlier schedule
                        heapq.heappop(self._heap)
                        continue
                    if key in self._active:
                        heapq.heappop(self._heap)
                        del self._due[key]
                        self._again.add(key)
                        continue
                    if at > now:
                        break
                    heapq.heappop(self._heap)
                    del self._due[key]
                    self._active.add(key)
                    return key
                if not block:
                    return None
                wait = self._heap[0][0] - now if self._heap else 0.5
                self._cv.wait(timeout=min(0.5, max(0.001, wait)))
            return None

    def _done(self, key: str, retry: float | None) -> None:
        with self._cv:
            self._active.discard(key)
            if key in self._again:
                self._again.discard(key)
                self._schedule(key, 0.0)
            elif retry is not None:
                self._schedule(key, retry)

    def _process(self, key: str) -> None:
        retry: float | None = None
        try:
            retry = self._handle(key)
        except Exception:  # a worker must outlive any one job's surprise
            log.exception("processing %s failed", key)
            retry = 5.0
        finally:
            self._done(key, retry)

    def work(self, stopped: Stopped, active: Callable[[], bool] = lambda: True) -> None:
        """One worker: process keys until ``stopped`` (none while ``active()`` is False: a
        paused HA replica keeps its queue but acts on nothing)."""
        while not stopped.is_set():
            if not active():
                stopped.wait(1.0)
                continue
            key = self._next(stopped)
            if key is None:
                continue
            if not active():  # the gate closed while this worker waited for a key
                self._done(key, 1.0)
                continue
            self._process(key)

    def run_due(self) -> int:
        """Process every key that is due now in the calling thread (tests, shutdown)."""
        done = 0
        never = threading.Event()
        while (key := self._next(never, block=False)) is not None:
            self._process(key)
            done += 1
        return done

    def start(
        self, stopped: Stopped, workers: int, active: Callable[[], bool] = lambda: True
    ) -> list[threading.Thread]:
        threads = [
            threading.Thread(
                target=self.work, args=(stopped, active), daemon=True, name=f"worker-{i}"
            )
            for i in range(workers)
        ]
        for t in threads:
            t.start()
        return threads
