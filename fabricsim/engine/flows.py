"""Flow-level network model: each transfer is a flow; link bandwidth is shared max-min fairly.

When a flow starts or ends, only the flows reachable from its links through shared links (its
connected component) are re-rated, by progressive filling: the most constrained link fixes the
rate of its flows, its capacity is used up, and so on. A flow that keeps its rate keeps its
scheduled completion, so an uncontended flow ends exactly ``round(bits / rate)`` after it started.
Completion events that a re-rating made stale are recognised by a version number and ignored.
"""

from __future__ import annotations

from typing import Callable

import simpy

PS_PER_S = 10**12


class Flow:
    __slots__ = ("links", "remaining_bits", "rate_bps", "updated_ps", "version", "on_sent")

    def __init__(self, links: tuple[int, ...], nbits: float, on_sent: Callable[[], None]) -> None:
        self.links = links
        self.remaining_bits = nbits
        self.rate_bps = 0.0
        self.updated_ps = 0
        self.version = 0
        self.on_sent = on_sent


class FlowNetwork:
    """Active flows over links of fixed capacity; calls ``flow.on_sent()`` when its last bit leaves."""

    def __init__(self, env: simpy.Environment, capacity_bps: list[float]) -> None:
        self.env = env
        self.capacity_bps = capacity_bps
        self.flows_on: list[set[Flow]] = [set() for _ in capacity_bps]

    def start(self, links: tuple[int, ...], nbits: float, on_sent: Callable[[], None]) -> Flow:
        flow = Flow(links, nbits, on_sent)
        flow.updated_ps = self.env.now
        if nbits <= 0 or not links:
            on_sent()
            return flow
        for link in links:
            self.flows_on[link].add(flow)
        self._rerate(self._component(links))
        return flow

    def _finish(self, flow: Flow, version: int) -> None:
        if version != flow.version:
            return
        for link in flow.links:
            self.flows_on[link].discard(flow)
        flow.remaining_bits = 0.0
        self._rerate(self._component(flow.links))
        flow.on_sent()

    def _component(self, links: tuple[int, ...]) -> set[Flow]:
        """Every active flow that shares a link, directly or through other flows, with ``links``."""
        seen_links, flows = set(links), set()
        todo = list(links)
        while todo:
            for flow in self.flows_on[todo.pop()]:
                if flow not in flows:
                    flows.add(flow)
                    for link in flow.links:
                        if link not in seen_links:
                            seen_links.add(link)
                            todo.append(link)
        return flows

    def _rerate(self, flows: set[Flow]) -> None:
        now = self.env.now
        for flow, rate in max_min_rates(flows, self.capacity_bps).items():
            if rate == flow.rate_bps:
                continue
            flow.remaining_bits = max(0.0, flow.remaining_bits - flow.rate_bps * (now - flow.updated_ps) / PS_PER_S)
            flow.updated_ps = now
            flow.rate_bps = rate
            flow.version += 1
            delay_ps = round(flow.remaining_bits * PS_PER_S / rate)
            self.env.timeout(delay_ps).callbacks.append(
                lambda _event, flow=flow, version=flow.version: self._finish(flow, version))


def max_min_rates(flows: set[Flow] | list[Flow], capacity_bps: list[float]) -> dict[Flow, float]:
    """Progressive filling: the max-min fair rate of each flow given the links' capacities."""
    remaining: dict[int, float] = {}
    unfixed_on: dict[int, list[Flow]] = {}
    for flow in flows:
        for link in flow.links:
            remaining.setdefault(link, capacity_bps[link])
            unfixed_on.setdefault(link, []).append(flow)
    rates: dict[Flow, float] = {}
    while unfixed_on:
        link = min(unfixed_on, key=lambda index: remaining[index] / len(unfixed_on[index]))
        share = remaining[link] / len(unfixed_on[link])
        for flow in unfixed_on[link]:
            if flow in rates:
                continue
            rates[flow] = share
            for other in flow.links:
                remaining[other] -= share
        for other in list(unfixed_on):
            kept = [flow for flow in unfixed_on[other] if flow not in rates]
            if kept:
                unfixed_on[other] = kept
            else:
                del unfixed_on[other]
    return rates
