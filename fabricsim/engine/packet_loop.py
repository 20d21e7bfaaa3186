"""Packet event loop: a heap of timed callbacks in integer picoseconds, run inside a SimPy process.

A packet engine makes several events per packet and hop; as SimPy events each would cost a process
switch, so they live on this plain heap instead (as in htsim's event list). The loop also offers the
small part of SimPy's interface that ``ScheduleRun`` uses (``now``, ``event()``, ``timeout(delay)``
with ``callbacks``), so the packet engine runs the very same DAG logic as the flow engine. Events at
equal times run in the order they were scheduled, so a run is deterministic.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable


class LoopEvent:
    """A one-shot event (SimPy's ``Event`` subset): callbacks run when it fires or succeeds."""

    __slots__ = ("callbacks", "triggered")

    def __init__(self) -> None:
        self.callbacks: list[Callable[[LoopEvent], None]] = []
        self.triggered = False

    def succeed(self) -> LoopEvent:
        self.triggered = True
        for callback in self.callbacks:
            callback(self)
        return self


class EventLoop:
    def __init__(self, now_ps: int = 0) -> None:
        self.now = now_ps
        # entries (time_ps, sequence number, action, arg); a hot caller may push them itself
        self.heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self.seq = itertools.count()

    def at(self, time_ps: int, action: Callable[[Any], None], arg: Any = None) -> None:
        """Run ``action(arg)`` at ``time_ps`` (never earlier than now)."""
        heapq.heappush(self.heap, (time_ps, next(self.seq), action, arg))

    def after(self, delay_ps: int, action: Callable[[Any], None], arg: Any = None) -> None:
        self.at(self.now + delay_ps, action, arg)

    def event(self) -> LoopEvent:
        return LoopEvent()

    def timeout(self, delay_ps: int) -> LoopEvent:
        event = LoopEvent()
        self.after(delay_ps, LoopEvent.succeed, event)
        return event

    def run_until(self, stop: LoopEvent) -> bool:
        """Run events in time order until ``stop`` has triggered (True) or none is left (False)."""
        heap, pop = self.heap, heapq.heappop
        while not stop.triggered:
            if not heap:
                return False
            self.now, _, action, arg = pop(heap)
            action(arg)
        return True

    def advance_to(self, time_ps: int) -> None:
        """Run every event up to ``time_ps``, then stand at ``time_ps`` (time spent outside the network)."""
        heap, pop = self.heap, heapq.heappop
        while heap and heap[0][0] <= time_ps:
            self.now, _, action, arg = pop(heap)
            action(arg)
        self.now = max(self.now, time_ps)
