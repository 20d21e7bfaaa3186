"""Flow-level network model: each transfer is a flow; link bandwidth is shared max-min fairly.

Its cost is per moment, not per flow. Flows that start, end or move, and capacities that change, at
one simulated time are applied together: their links are marked, and one event at the end of that
instant (after every other event of the instant) re-rates, once, the flows reachable from the marked
links through shared links (``engine.maxmin``). A flow that keeps its rate keeps its completion time,
so an uncontended flow ends exactly ``round(bits / rate)`` after it started. Completion times wait in
one heap per network behind one SimPy timer; an entry that a re-rating replaced is skipped when
reached, and the heap is rebuilt whenever such entries outnumber the live ones. Flows are re-rated,
and flows due at one time complete, in the order their completion times were set, flows of one
re-rating in the order they started: never in memory-address order, so the results are the same in
every process.
Per-link usage: bits carried and busy time as flows join and leave a link; its peak number of flows
as the instant leaves it (a flow that ends at the moment another starts is not counted with it).
"""

from __future__ import annotations

import heapq
from typing import Callable

import simpy

from fabricsim.collectives.schedule_times import serialisation_ps
from fabricsim.engine.maxmin import max_min_rates_of
from fabricsim.units import PS_PER_S

INFINITE = float("inf")
END_OF_INSTANT = 2  # a priority after SimPy's NORMAL (1): runs once the instant's other events are done


class _EndOfInstant(simpy.events.Event):
    """An event now, after every normal-priority event of this time (built as SimPy builds a Timeout)."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.callbacks = []
        self._value = None
        self._ok = True
        env.schedule(self, END_OF_INSTANT)


class Flow:
    __slots__ = ("seq", "links", "nbits", "remaining_bits", "rate_bps", "updated_ps", "entry", "on_sent",
                 "start_ps", "stalled_ps", "path_bits", "tag")

    def __init__(self, seq: int, links: tuple[int, ...], nbits: float, on_sent: Callable[[], None],
                 tag: object = None) -> None:
        self.seq = seq  # start order in its network
        self.links = links
        self.nbits = nbits
        self.remaining_bits = nbits
        self.rate_bps = 0.0
        self.updated_ps = 0
        self.entry = -1  # the number of its live entry in the network's completion heap, -1 if none
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

    def closed(self, flows_on: list[dict[Flow, None]], now_ps: int) -> LinkUsage:
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
    A flow of infinite bits never ends. ``flows_on[link]`` holds a link's flows in the order they
    joined it.
    """

    def __init__(self, env: simpy.Environment, capacity_bps: list[float]) -> None:
        self.env = env
        self.capacity_bps = list(capacity_bps)
        self.flows_on: list[dict[Flow, None]] = [{} for _ in capacity_bps]
        self.usage = LinkUsage(len(capacity_bps))
        self._started = 0
        self._fabric_links = len(capacity_bps)  # links with usage; private links come after them
        self._marked: set[int] = set()  # links whose flows or capacity changed at this instant
        self._rerate_pending = False
        self._ends: list[tuple[int, int, Flow]] = []  # completion heap: (end_ps, entry number, flow)
        self._entries = 0  # entry numbers handed out
        self._live = 0  # entries in the heap that are their flow's live one
        self._timers: set[int] = set()  # times a completion timer is pending for

    def private_link(self, capacity_bps: float) -> int:
        """A link no route uses: put it in one flow's links to cap that flow's rate."""
        self.capacity_bps.append(capacity_bps)
        self.flows_on.append({})
        return len(self.capacity_bps) - 1

    def start(self, links: tuple[int, ...], nbits: float, on_sent: Callable[[], None], tag: object = None) -> Flow:
        (flow,) = self.start_all([(links, nbits, on_sent, tag)])
        return flow

    def start_all(self, specs: list[tuple[tuple[int, ...], float, Callable[[], None], object]]) -> list[Flow]:
        """Start several flows (links, nbits, on_sent, tag each); a flow of no bits or no links is
        sent at once, before this returns."""
        now = self.env.now
        flows = [Flow(self._started + i, *spec) for i, spec in enumerate(specs)]
        self._started += len(flows)
        for flow in flows:
            flow.start_ps = flow.updated_ps = now
            if flow.nbits > 0 and flow.links:
                self._join(flow)
        for flow in flows:
            if not (flow.nbits > 0 and flow.links):
                _sent(flow)
        return flows

    def set_capacity(self, links: tuple[int, ...], capacity_bps: float) -> None:
        for link in links:
            self.capacity_bps[link] = capacity_bps
        self._marked.update(links)
        self._rerate_at_end_of_instant()

    def move(self, flow: Flow, links: tuple[int, ...]) -> None:
        """Re-route a running flow: it keeps the bits it has sent and continues on ``links``."""
        self._settle(flow, self.env.now)
        self._leave(flow)
        self._drop_end(flow)
        flow.rate_bps = 0.0
        flow.links = links
        flow.path_bits = flow.remaining_bits
        self._join(flow)

    # --- flows on links -------------------------------------------------------------------------

    def _join(self, flow: Flow) -> None:
        busy_since_ps, flows_on, fabric_links = self.usage.busy_since_ps, self.flows_on, self._fabric_links
        for link in flow.links:
            flows = flows_on[link]
            if not flows and link < fabric_links:
                busy_since_ps[link] = self.env.now
            flows[flow] = None
        self._marked.update(flow.links)
        self._rerate_at_end_of_instant()

    def _leave(self, flow: Flow) -> None:
        """Take the flow off its links, marking those that keep other flows (they may speed up)."""
        usage, flows_on, marked, fabric_links = self.usage, self.flows_on, self._marked, self._fabric_links
        carried, busy_ps, busy_since_ps = usage.carried_bits, usage.busy_ps, usage.busy_since_ps
        carried_bits = flow.path_bits - flow.remaining_bits if flow.nbits != INFINITE else 0.0
        for link in flow.links:
            flows = flows_on[link]
            del flows[flow]
            if flows:
                marked.add(link)
            if link < fabric_links:
                carried[link] += carried_bits
                if not flows:
                    busy_ps[link] += self.env.now - busy_since_ps[link]
        self._rerate_at_end_of_instant()

    def _rerate_at_end_of_instant(self) -> None:
        if self._marked and not self._rerate_pending:
            self._rerate_pending = True
            _EndOfInstant(self.env).callbacks.append(self._rerate)

    def _reachable(self, links: set[int]) -> list[Flow]:
        """Every active flow that shares a link, directly or through other flows, with ``links``,
        in start order."""
        flows_on, seen_links, found = self.flows_on, set(links), {}
        todo = list(links)
        while todo:
            for flow in flows_on[todo.pop()]:
                if flow not in found:
                    found[flow] = None
                    for link in flow.links:
                        if link not in seen_links:
                            seen_links.add(link)
                            todo.append(link)
        return sorted(found, key=_start_order)

    # --- rates and completions ------------------------------------------------------------------

    def _rerate(self, _event: simpy.Event) -> None:
        """The end of an instant: re-rate what its changes reached, note peaks, arm the timer."""
        now, marked = self.env.now, self._marked
        self._marked, self._rerate_pending = set(), False
        peak_flows, flows_on = self.usage.peak_flows, self.flows_on
        for link in marked:
            if link < self._fabric_links and len(flows_on[link]) > peak_flows[link]:
                peak_flows[link] = len(flows_on[link])
        for flow, rate in self._rates(self._reachable(marked)):
            if rate == flow.rate_bps:
                continue
            self._settle(flow, now)
            flow.rate_bps = rate
            if rate == 0 or flow.remaining_bits == INFINITE:
                self._drop_end(flow)
            else:
                self._set_end(flow, now + serialisation_ps(flow.remaining_bits, rate))
        self._arm()

    def _rates(self, flows: list[Flow]) -> list[tuple[Flow, float]]:
        """Each flow's max-min rate, in the order given. A flow alone on its links is its own
        component: its rate is its least capacity, as progressive filling gives it, to the bit."""
        capacity_bps, flows_on = self.capacity_bps, self.flows_on
        rated, shared = [], []
        for flow in flows:
            least_bps = INFINITE
            for link in flow.links:
                if len(flows_on[link]) != 1:
                    shared.append(flow)
                    break
                if capacity_bps[link] < least_bps:
                    least_bps = capacity_bps[link]
            else:
                rated.append((flow, least_bps))
        if not shared:
            return rated
        rated.extend(zip(shared, max_min_rates_of([flow.links for flow in shared], capacity_bps)))
        return sorted(rated, key=_rated_start_order) if len(rated) > len(shared) else rated

    @staticmethod
    def _settle(flow: Flow, now: int) -> None:
        """Bring the flow's remaining bits (or its stalled time) up to ``now``."""
        if flow.rate_bps:
            flow.remaining_bits = max(0.0, flow.remaining_bits - flow.rate_bps * (now - flow.updated_ps) / PS_PER_S)
        else:
            flow.stalled_ps += now - flow.updated_ps
        flow.updated_ps = now

    def _set_end(self, flow: Flow, end_ps: int) -> None:
        if flow.entry < 0:
            self._live += 1
        flow.entry = self._entries
        self._entries += 1
        heapq.heappush(self._ends, (end_ps, flow.entry, flow))

    def _drop_end(self, flow: Flow) -> None:
        if flow.entry >= 0:
            self._live -= 1
            flow.entry = -1

    def _arm(self) -> None:
        """Drop replaced entries from the heap's top (rebuild it when they are most of it) and make
        sure a timer is pending for the earliest completion."""
        ends = self._ends
        if len(ends) > 2 * self._live + 64:
            self._ends = ends = [entry for entry in ends if entry[2].entry == entry[1]]
            heapq.heapify(ends)
        while ends and ends[0][2].entry != ends[0][1]:
            heapq.heappop(ends)
        if ends and ends[0][0] not in self._timers:
            self._timers.add(ends[0][0])
            self.env.timeout(ends[0][0] - self.env.now).callbacks.append(self._complete)

    def _complete(self, _event: simpy.Event) -> None:
        """A timer: every flow due now sends its last bit, in the order its completion was set."""
        now, ends = self.env.now, self._ends
        self._timers.discard(now)
        while ends and ends[0][0] <= now:
            _, entry, flow = heapq.heappop(ends)
            if flow.entry != entry:
                continue
            flow.entry = -1
            self._live -= 1
            flow.remaining_bits = 0.0
            flow.updated_ps = now
            self._leave(flow)
            _sent(flow)
        self._arm()


def _sent(flow: Flow) -> None:
    """Call the flow's ``on_sent`` and let go of it: an owner's callback that holds its flows is then
    no reference cycle, freed at once rather than by the garbage collector."""
    on_sent, flow.on_sent = flow.on_sent, None
    on_sent()


def _start_order(flow: Flow) -> int:
    return flow.seq


def _rated_start_order(rated: tuple[Flow, float]) -> int:
    return rated[0].seq
