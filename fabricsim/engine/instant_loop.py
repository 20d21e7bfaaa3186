"""The flow model's event loop run moment by moment over arrays, for calls routed before they start.

When every queue pair of a call has its route before the call starts (hash mode with no link to
fail: ``trial_fabric.RoutedFlows``), nothing in the flow network (``engine.flows``) or the executor
(``engine.executor``) depends on the order of the events of one moment, only on what happens at it.
So this loop takes the moments in time order and, at each, does together, as arrays, what the event
loop does one event at a time: the flows due end (their last bit leaves; they leave their links),
flows in flight arrive, transfers whose start delay is over enter (their flows join their links),
and what that releases in the DAG (``DagProgress``'s batch methods) follows at the same moment, until
nothing more happens at it. Then the flows reachable from the links that changed are re-rated once
(max-min, ``engine.maxmin``), as the flow network does at the end of an instant.

Every number is the event loop's, to the picosecond and the bit: rates, settled bits and end times
use the flow network's float operations element by element; a component's max-min rates do not
depend on the order of its flows; which dependency released a transfer last is the greatest key of
those done at its moment; a link's bits carried add whole numbers of bits (exact below 2**53), its busy
time integers. The rules of the executor are kept: a transfer's bytes split evenly over its queue
pairs, its resent bytes and its NACK round trips and timeouts on its first; a flow of no bits or no
links is sent as it starts.
"""

from __future__ import annotations

import heapq
from typing import Callable

import numpy as np

from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.schedule_times import serialisation_ps_each
from fabricsim.engine.dag_progress import DagProgress
from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.impairments import TransferImpairments, Transport
from fabricsim.engine.maxmin import max_min_rates_over
from fabricsim.engine.routed_flows import FlowColumns
from fabricsim.engine.trial_fabric import RoutedFlows
from fabricsim.fabric.routing import Route
from fabricsim.units import PS_PER_S

NONE = np.zeros(0, dtype=np.int64)
NEVER = np.iinfo(np.int64).max
# the instant loop pays per moment (some 60 numpy steps), the event loop per transfer (some 12 us):
# below about this many transfers a moment, the event loop is the faster
MIN_TRANSFERS_A_MOMENT = 8
CHECK_MOMENTS = 64


class InstantRun:
    """A call's run on the instant loop; its DAG progress (``dag``) has its ideal time, causes and
    transfer times."""

    def __init__(self, env, network: FlowNetwork, schedule: Schedule, routed: RoutedFlows,
                 impairments: TransferImpairments, transport: Transport,
                 ideal_route_of: Callable[[int, int], Route]) -> None:
        self.network = network
        self.start_ps = int(env.now)
        self.dag = dag = DagProgress(env, schedule, impairments, ideal_route_of, None)
        self._delay_ps = np.asarray(impairments.delay_ps(), dtype=np.int64)
        # routes: their links as rows padded with a link of its own (no flow counted on it, infinite capacity)
        self._pad = pad = len(network.capacity_bps)
        routes = routed.routes
        width = max((len(route.links) for route in routes), default=1) or 1
        self._route_links = np.full((len(routes), width), pad, dtype=np.int64)
        for index, route in enumerate(routes):
            self._route_links[index, :len(route.links)] = route.links
        columns = FlowColumns(schedule, routed, impairments, transport, dag.causes)
        self._flow_starts, self._flow_route, self._flow_tid = columns.starts, columns.route, columns.tid
        self._nbits, self._wait_ps = columns.nbits, columns.wait_ps
        per_transfer, flow_tid = columns.per_transfer, self._flow_tid
        self._sent_at_start = ~(self._nbits > 0) | (self._route_links[self._flow_route, 0] == pad)
        dag.entered_together(per_transfer)
        # per flow: remaining bits, rate, when they were last brought up to date, when it ends (NEVER: not set)
        self._remaining = self._nbits.copy()
        self._rate = np.zeros(len(flow_tid))
        self._updated_ps = np.zeros(len(flow_tid), dtype=np.int64)
        self._end_ps = np.full(len(flow_tid), NEVER, dtype=np.int64)
        self._entered = 0  # transfers that entered the network so far
        self._active = NONE  # flows on their links, in start order
        self._on_links = np.zeros(len(flow_tid), dtype=bool)
        # per link (and the pad): flows on it, capacity, busy since; this call's usage
        self._count = np.zeros(pad + 1, dtype=np.int64)
        self._count[pad] = 1  # so that a flow alone on its links has 1 on every link of its row
        self._capacity_bps = np.array([*network.capacity_bps, np.inf])
        self._busy_since_ps = np.zeros(pad + 1, dtype=np.int64)
        self._carried_bits = np.zeros(pad + 1)
        self._busy_ps = np.zeros(pad + 1, dtype=np.int64)
        self._peak_flows = np.zeros(pad + 1, dtype=np.int64)
        # the moments ahead at which flows arrive or transfers enter (flows end at their _end_ps)
        self._times: list[int] = []
        self._pending: set[int] = set()
        self._arrivals: dict[int, list[np.ndarray]] = {}
        self._entering: dict[int, list[np.ndarray]] = {}
        self.end_ps = self.start_ps

    # --- running ------------------------------------------------------------------------------

    def run(self) -> bool:
        """Run the call from its start to its last delivery and add its link usage to the network's
        (True); or give up early (False, nothing changed) when its moments are too sparse for this
        loop to pay: fewer than MIN_TRANSFERS_A_MOMENT transfers entering a moment on average over the
        last CHECK_MOMENTS moments, checked until half of the transfers have entered. The decision
        depends on the simulated run alone, never on the clock."""
        now, moments, transfers, entered_before = self.start_ps, 0, len(self._delay_ps), 0
        self._at(self._entering, now, self._ready(now, self.dag.roots()))
        while not self.dag.all_delivered:
            next_end_ps = int(self._end_ps[self._active].min()) if self._active.size else NEVER
            now = min(next_end_ps, self._times[0] if self._times else NEVER)
            if now == NEVER:
                raise RuntimeError("the call's transfers wait on each other: some are never ready")
            if self._times and self._times[0] == now:
                self._pending.discard(heapq.heappop(self._times))
            self._instant(now, next_end_ps == now)
            moments += 1
            if moments % CHECK_MOMENTS == 0 and 2 * self._entered < transfers:
                if self._entered - entered_before < MIN_TRANSFERS_A_MOMENT * CHECK_MOMENTS:
                    return False
                entered_before = self._entered
        self.end_ps = now
        self._add_usage()
        return True

    def _instant(self, now: int, ending: bool) -> None:
        ended = self._active[self._end_ps[self._active] == now] if ending else NONE  # in start order
        arriving = _joined(self._arrivals.pop(now, ()))
        entering = _joined(self._entering.pop(now, ()))
        marked = []
        if ended.size:
            marked.append(self._leave(now, ended))
        sent = ended
        while sent.size or arriving.size or entering.size:
            if entering.size:
                self._entered += len(entering)
                flows = self._flows_of(entering)
                at_start = self._sent_at_start[flows]
                if not at_start.all():
                    marked.append(self._join(now, flows[~at_start]))
                sent = np.concatenate((sent, flows[at_start]))
            ready = []
            if sent.size:
                wait_ps = self._wait_ps[sent]
                arriving = np.concatenate((arriving, sent[wait_ps == 0]))
                later = wait_ps > 0
                self._at_each(self._arrivals, now + wait_ps[later], sent[later])
                ready.append(self.dag.sent_together(now, self._flow_tid[sent]))
            if arriving.size:
                ready.append(self.dag.delivered_together(now, self._flow_tid[arriving]))
            entering = _joined([self._ready(now, tids) for tids in ready])
            sent = arriving = NONE
        if marked and not self.dag.all_delivered:
            self._rerate(now, np.concatenate(marked))

    def _ready(self, now: int, tids: np.ndarray) -> np.ndarray:
        """Transfers ready now: those with no start delay enter now (returned), the others later."""
        delay_ps = self._delay_ps[tids]
        later = delay_ps > 0
        if later.any():
            self._at_each(self._entering, now + delay_ps[later], tids[later])
        return tids[~later]

    def _flows_of(self, tids: np.ndarray) -> np.ndarray:
        first = self._flow_starts[tids]
        counts = self._flow_starts[tids + 1] - first
        if (counts == 1).all():
            return first
        return np.repeat(first - (np.cumsum(counts) - counts), counts) + np.arange(int(counts.sum()))

    # --- moments ahead --------------------------------------------------------------------------

    def _at(self, bucket: dict, time_ps: int, values) -> None:
        if len(values):
            bucket.setdefault(time_ps, []).append(values)
            if time_ps not in self._pending:
                self._pending.add(time_ps)
                heapq.heappush(self._times, time_ps)

    def _at_each(self, bucket: dict, times_ps: np.ndarray, values: np.ndarray) -> None:
        """File ``values[k]`` at ``times_ps[k]``, keeping their order within a time."""
        if not len(times_ps):
            return
        if (times_ps == times_ps[0]).all():
            self._at(bucket, int(times_ps[0]), values)
            return
        order = np.argsort(times_ps, kind="stable")
        times_ps = times_ps[order]
        cuts = np.flatnonzero(times_ps[1:] != times_ps[:-1]) + 1
        for start, part in zip([0, *cuts.tolist()], np.split(order, cuts)):
            self._at(bucket, int(times_ps[start]), values[part])

    # --- flows on links -------------------------------------------------------------------------

    def _join(self, now: int, flows: np.ndarray) -> np.ndarray:
        """Flows start on their links; returns the links (with repeats)."""
        self._active = np.concatenate((self._active, flows))
        self._on_links[flows] = True
        self._updated_ps[flows] = now
        links = self._links_of(flows)[0]
        self._busy_since_ps[links[self._count[links] == 0]] = now
        np.add.at(self._count, links, 1)
        return links

    def _leave(self, now: int, flows: np.ndarray) -> np.ndarray:
        """Flows sent their last bit: off their links; returns the links that keep flows."""
        self._on_links[flows] = False
        self._active = self._active[self._on_links[self._active]]
        self._end_ps[flows] = NEVER
        self._remaining[flows] = 0.0
        self._updated_ps[flows] = now
        links, flow_of_link = self._links_of(flows)
        np.add.at(self._carried_bits, links, self._nbits[flows][flow_of_link])
        np.subtract.at(self._count, links, 1)
        left = links[self._count[links] == 0]
        self._busy_ps[left] += now - self._busy_since_ps[left]  # once a link, repeated or not
        return links[self._count[links] > 0]

    def _links_of(self, flows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The links of ``flows``, flow by flow, and for each the flow's place in ``flows``."""
        rows = self._route_links[self._flow_route[flows]]
        flow_of_link, position = np.nonzero(rows != self._pad)
        return rows[flow_of_link, position], flow_of_link

    # --- rates and completions ------------------------------------------------------------------

    def _rerate(self, now: int, marked: np.ndarray) -> None:
        """The end of a moment: note peaks; re-rate the flows reachable from the marked links (given
        with repeats); file the end of each flow whose rate changed."""
        self._peak_flows[marked] = np.maximum(self._peak_flows[marked], self._count[marked])
        active = self._active
        if not active.size:
            return
        rows = self._route_links[self._flow_route[active]]
        touched = np.zeros(self._pad + 1, dtype=bool)
        touched[marked] = True
        reached = np.zeros(len(active), dtype=bool)
        frontier = touched[rows].any(axis=1)
        while frontier.any():  # flows sharing a link with a reached flow are reached
            reached |= frontier
            touched[rows[frontier]] = True
            touched[self._pad] = False
            frontier = touched[rows].any(axis=1) & ~reached
        flows, rows = active[reached], rows[reached]
        rate_bps = self._capacity_bps[rows].min(axis=1)  # a flow alone on its links: its least capacity
        shared = np.flatnonzero(~(self._count[rows] == 1).all(axis=1))
        if shared.size:
            shared_rows = rows[shared]
            pair_flow, position = np.nonzero(shared_rows != self._pad)
            rate_bps[shared] = max_min_rates_over(pair_flow, shared_rows[pair_flow, position], len(shared),
                                                  self._capacity_bps.__getitem__)
        changed = rate_bps != self._rate[flows]
        flows, rate_bps = flows[changed], rate_bps[changed]
        if not flows.size:
            return
        old_bps = self._rate[flows]
        elapsed_ps = now - self._updated_ps[flows]
        remaining = np.where(old_bps != 0, np.maximum(0.0, self._remaining[flows] - old_bps * elapsed_ps / PS_PER_S),
                             self._remaining[flows])
        self._remaining[flows], self._rate[flows], self._updated_ps[flows] = remaining, rate_bps, now
        self._end_ps[flows] = now + serialisation_ps_each(remaining, rate_bps)

    def _add_usage(self) -> None:
        """Add the call's bits carried, busy time and peak flows to the network's link usage."""
        usage = self.network.usage
        for link in np.flatnonzero(self._peak_flows[:self._pad]).tolist():
            usage.carried_bits[link] += float(self._carried_bits[link])
            usage.busy_ps[link] += int(self._busy_ps[link])
            usage.peak_flows[link] = max(usage.peak_flows[link], int(self._peak_flows[link]))


def _joined(parts) -> np.ndarray:
    parts = [part for part in parts if len(part)]
    if not parts:
        return NONE
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
