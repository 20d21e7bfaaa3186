"""Flow-level network model: each transfer is a flow; link bandwidth is shared max-min fairly.

When a flow starts or ends, only the flows reachable from its links through shared links (its
connected component) are re-rated, by progressive filling: the most constrained link fixes the
rate of its flows, its capacity is used up, and so on. A flow that keeps its rate keeps its
scheduled completion, so an uncontended flow ends exactly ``round(bits / rate)`` after it started.
Completion events that a re-rating made stale are recognised by a version number and ignored.
A component is re-rated in the order its flows started, never in memory-address order, so the
floating-point sums, and so the results, are the same in every process.
Per-link usage (bits, busy time, peak flows) is updated only on the links of a flow that starts,
ends or moves.
"""

from __future__ import annotations

from typing import Callable

import simpy

from fabricsim.schedule_times import PS_PER_S, serialisation_ps


class Flow:
    __slots__ = ("seq", "links", "nbits", "remaining_bits", "rate_bps", "updated_ps", "version", "on_sent",
                 "start_ps", "stalled_ps", "path_bits", "tag")

    def __init__(self, seq: int, links: tuple[int, ...], nbits: float, on_sent: Callable[[], None],
                 tag: object = None) -> None:
        self.seq = seq  # start order in its network
        self.links = links
        self.nbits = nbits
        self.remaining_bits = nbits
        self.rate_bps = 0.0
        self.updated_ps = 0
        self.version = 0
        self.on_sent = on_sent
        self.start_ps = 0
        self.stalled_ps = 0  # time spent at rate 0: only a link that is down stops a flow
        self.path_bits = nbits  # remaining bits when the flow took its current links
        self.tag = tag  # the owner's note: what the flow is, how to re-route it


class LinkUsage:
    """Per link of one trial: bits carried (finite flows), busy time, peak concurrent flows."""

    def __init__(self, links: int) -> None:
        self.carried_bits = [0.0] * links
        self.busy_ps = [0] * links
        self.busy_since_ps = [0] * links
        self.peak_flows = [0] * links

    def _value(self) -> tuple:
        """What the usage says (``busy_since_ps`` is only the bookkeeping of links still busy)."""
        return tuple(self.carried_bits), tuple(self.busy_ps), tuple(self.peak_flows)

    def __eq__(self, other: object) -> bool:  # records compare by value, wherever they were computed
        return isinstance(other, LinkUsage) and self._value() == other._value()

    def __hash__(self) -> int:  # records are hashable; a trial's usage no longer changes once closed
        return hash(self._value())

    def closed(self, flows_on: list[set[Flow]], now_ps: int) -> LinkUsage:
        """Busy time counted up to ``now_ps`` for links still carrying flows (at the trial's end)."""
        for link, flows in enumerate(flows_on[: len(self.busy_ps)]):
            if flows:
                self.busy_ps[link] += now_ps - self.busy_since_ps[link]
                self.busy_since_ps[link] = now_ps
        return self


class FlowNetwork:
    """Active flows over links of given capacity; calls ``flow.on_sent()`` when its last bit leaves.

    Capacities may change (a link down has capacity 0: its flows stall), a flow may move to other
    links (re-routing), and a private link of its own caps a flow's rate (background load).
    A flow of infinite bits never ends.
    """

    def __init__(self, env: simpy.Environment, capacity_bps: list[float]) -> None:
        self.env = env
        self.capacity_bps = list(capacity_bps)
        self.flows_on: list[set[Flow]] = [set() for _ in capacity_bps]
        self.usage = LinkUsage(len(capacity_bps))
        self._started = 0

    def private_link(self, capacity_bps: float) -> int:
        """A link no route uses: put it in one flow's links to cap that flow's rate."""
        self.capacity_bps.append(capacity_bps)
        self.flows_on.append(set())
        return len(self.capacity_bps) - 1

    def start(self, links: tuple[int, ...], nbits: float, on_sent: Callable[[], None], tag: object = None) -> Flow:
        (flow,) = self.start_all([(links, nbits, on_sent, tag)])
        return flow

    def start_all(self, specs: list[tuple[tuple[int, ...], float, Callable[[], None], object]]) -> list[Flow]:
        """Start several flows at once (links, nbits, on_sent, tag each) with one re-rating."""
        flows = [Flow(self._started + i, *spec) for i, spec in enumerate(specs)]
        self._started += len(flows)
        running = [flow for flow in flows if flow.nbits > 0 and flow.links]
        for flow in flows:
            flow.start_ps = flow.updated_ps = self.env.now
        for flow in running:
            self._join(flow)
        if len(running) == 1 and all(len(self.flows_on[link]) == 1 for link in running[0].links):
            self._rerate(running)  # alone on its links: its own component
        elif running:
            self._rerate(self._component(tuple(link for flow in running for link in flow.links)))
        for flow in flows:
            if not (flow.nbits > 0 and flow.links):
                flow.on_sent()
        return flows

    def set_capacity(self, links: tuple[int, ...], capacity_bps: float) -> None:
        for link in links:
            self.capacity_bps[link] = capacity_bps
        self._rerate(self._component(links))

    def move(self, flow: Flow, links: tuple[int, ...]) -> None:
        """Re-route a running flow: it keeps the bits it has sent and continues on ``links``."""
        old_links = flow.links
        self._settle(flow, self.env.now)
        self._leave(flow)
        flow.rate_bps = 0.0
        flow.version += 1
        flow.links = links
        flow.path_bits = flow.remaining_bits
        self._join(flow)
        self._rerate(self._component(old_links + links))

    def _join(self, flow: Flow) -> None:
        usage, now = self.usage, self.env.now
        for link in flow.links:
            flows = self.flows_on[link]
            flows.add(flow)
            if link < len(usage.peak_flows):
                if len(flows) == 1:
                    usage.busy_since_ps[link] = now
                usage.peak_flows[link] = max(usage.peak_flows[link], len(flows))

    def _leave(self, flow: Flow) -> None:
        usage, now = self.usage, self.env.now
        carried_bits = flow.path_bits - flow.remaining_bits if flow.nbits != float("inf") else 0.0
        for link in flow.links:
            flows = self.flows_on[link]
            flows.discard(flow)
            if link < len(usage.peak_flows):
                usage.carried_bits[link] += carried_bits
                if not flows:
                    usage.busy_ps[link] += now - usage.busy_since_ps[link]

    def _finish(self, flow: Flow, version: int) -> None:
        if version != flow.version:
            return
        flow.remaining_bits = 0.0
        self._leave(flow)
        if any(self.flows_on[link] for link in flow.links):  # the flows it shared a link with speed up
            self._rerate(self._component(flow.links))
        flow.on_sent()

    def _component(self, links: tuple[int, ...]) -> list[Flow]:
        """Every active flow that shares a link, directly or through other flows, with ``links``,
        in start order."""
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
        return sorted(flows, key=_start_order) if len(flows) > 1 else list(flows)

    @staticmethod
    def _settle(flow: Flow, now: int) -> None:
        """Bring the flow's remaining bits (or its stalled time) up to ``now``."""
        if flow.rate_bps:
            flow.remaining_bits = max(0.0, flow.remaining_bits - flow.rate_bps * (now - flow.updated_ps) / PS_PER_S)
        else:
            flow.stalled_ps += now - flow.updated_ps
        flow.updated_ps = now

    def _rerate(self, flows: list[Flow]) -> None:
        now = self.env.now
        if len(flows) == 1:  # alone on its links: the progressive filling of one flow, without the books
            rates = {flows[0]: min(self.capacity_bps[link] for link in flows[0].links)}
        else:
            rates = max_min_rates(flows, self.capacity_bps)
        for flow, rate in rates.items():
            if rate == flow.rate_bps:
                continue
            self._settle(flow, now)
            flow.rate_bps = rate
            flow.version += 1
            if rate == 0 or flow.remaining_bits == float("inf"):
                continue
            self.env.timeout(serialisation_ps(flow.remaining_bits, rate)).callbacks.append(
                lambda _event, flow=flow, version=flow.version: self._finish(flow, version))


def _start_order(flow: Flow) -> int:
    return flow.seq


def max_min_rates(flows: list[Flow], capacity_bps: list[float]) -> dict[Flow, float]:
    """Progressive filling: the max-min fair rate of each flow given the links' capacities.

    The link whose capacity left per unfixed flow is least (the first such, in the order the flows
    name their links) fixes its unfixed flows at that share, which every link of theirs gives up.
    """
    remaining: dict[int, float] = {}
    on_link: dict[int, list[Flow]] = {}
    for flow in flows:
        for link in flow.links:
            remaining.setdefault(link, capacity_bps[link])
            on_link.setdefault(link, []).append(flow)
    unfixed = {link: len(flows_on) for link, flows_on in on_link.items()}
    rates: dict[Flow, float] = {}
    while unfixed:
        link = min(unfixed, key=lambda index: remaining[index] / unfixed[index])
        share = remaining[link] / unfixed[link]
        for flow in on_link[link]:
            if flow in rates:
                continue
            rates[flow] = share
            for other in flow.links:
                remaining[other] -= share
                unfixed[other] -= 1
                if not unfixed[other]:
                    del unfixed[other]
    return rates
