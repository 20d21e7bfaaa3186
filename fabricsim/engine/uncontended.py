"""Uncontended runs: a call whose flows never meet on a link needs no event loop.

If no two of a call's flows are ever on one link at once, the flow network gives each flow its
route's bottleneck rate from start to end, and the executor's rules reduce to a longest path
through the DAG: a transfer starts its start delay after its last dependency, its last bit leaves
``serialisation(bits + resent bits)`` later, and it is delivered its route latency, NACK round
trips and timeouts after that (``schedule_times.dag_times``, one pass over the DAG).
Those times are then checked: on every link, each flow must end before the next one starts, or
exactly when it starts if the next one waits on it (then the event loop, too, takes the first off
the link before it puts the second on). If the check passes, the times are exactly the event
loop's; if not, ``run_uncontended`` returns None and the call runs on the event loop.

It applies to calls with one flow per transfer on routes fixed in advance, nothing else on the
network, no link failures and no failed queue pair (``engine.models.FlowModel`` checks the rest).
The checked rows are one per transfer and route (which covers the links only that route uses) plus
one per transfer and link shared with other routes, sorted by start.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.schedule_times import dag_times, released_by, serialisation_ps_each
from fabricsim.engine.breakdown import TransferCauses, critical_path_causes, ideal_makespan_ps
from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.impairments import TransferImpairments, Transport, loss_columns
from fabricsim.fabric.routing import Route, route_columns
from fabricsim.records import Causes


class UncontendedRun:
    """A call's run, timed as a longest path: what the runner reads of a ``ScheduleRun``."""

    failed = False
    flow_records = None

    def __init__(self, schedule: Schedule, times: np.ndarray, send_ps: np.ndarray, causes: TransferCauses,
                 fixed_delay_ps: np.ndarray, ideal_route_of: Callable[[int, int], Route]) -> None:
        self.schedule = schedule
        self.times = times
        self.send_ps = send_ps  # per transfer: its start delay and time on the wire
        self.causes = causes
        self.fixed_delay_ps = fixed_delay_ps
        self.ideal_route_of = ideal_route_of
        transfers = len(schedule.transfers)
        delivered = times[transfers:2 * transfers]
        # the last delivery ends the run (of several at that moment, the highest id)
        self.end_ps = int(delivered.max()) if transfers else int(times[-1])
        self._last = transfers - 1 - int(np.argmax(delivered[::-1])) if transfers else -1

    def ideal_ps(self) -> int:
        return ideal_makespan_ps(self.schedule, self.ideal_route_of, self.fixed_delay_ps)

    def transfer_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Per transfer: when it became ready (sent less its start delay and time on the wire) and when
        it was delivered, as ``ScheduleRun.transfer_times``."""
        transfers = len(self.schedule.transfers)
        return self.times[:transfers] - self.send_ps, self.times[transfers:2 * transfers]

    def critical_causes(self) -> Causes:
        return critical_path_causes((self._last, "delivered"),
                                    lambda tid: released_by(self.schedule.transfers, self.times, tid), self.causes)


EARLY_CHECK_FROM = 65_536  # flows: from this many, the first to start (1 / EARLY_SHARE of them) are checked first
EARLY_SHARE = 8


def run_uncontended(network: FlowNetwork, start_ps: int, schedule: Schedule,
                    routes: tuple[np.ndarray, list[Route]], impairments: TransferImpairments, transport: Transport,
                    ideal_route_of: Callable[[int, int], Route]) -> UncontendedRun | None:
    """The call's run from ``start_ps`` with each transfer on ``routes`` (route index per transfer,
    routes), or None if two of its flows would share a link. On success the network's link usage
    counts the call's flows."""
    transfers = schedule.transfers
    route_of, route_list = routes
    rate_bps, latency_ps = route_columns(route_list, route_of)
    on_links = np.array([bool(route.links) for route in route_list])[route_of]
    resent_bytes, retransmit_ps, nack_ps, timeout_ps = loss_columns(impairments, rate_bps, latency_ps, transport)
    nbits = 8.0 * (transfers.nbytes + resent_bytes)
    flowing = on_links & (nbits > 0)
    wire_ps = np.where(flowing, serialisation_ps_each(nbits, rate_bps), 0)
    causes = TransferCauses(impairments.start_delay_ps, retransmit_ps, np.zeros(len(transfers), dtype=np.int64),
                            nack_ps, timeout_ps)
    send_ps = impairments.delay_ps() + wire_ps
    times = dag_times(transfers, start_ps, send_ps, latency_ps + causes.retransmit_after_ps + causes.timeout_ps)
    sent_ps = times[:len(transfers)]
    if not _apart(schedule, route_of, route_list, np.flatnonzero(flowing), sent_ps - wire_ps, sent_ps):
        return None
    _count_usage(network, route_of, route_list, flowing, nbits, wire_ps)
    return UncontendedRun(schedule, times, send_ps, causes, impairments.fixed_ps(), ideal_route_of)


def _apart(schedule: Schedule, route_of: np.ndarray, route_list: list[Route], flows: np.ndarray,
           start_ps: np.ndarray, end_ps: np.ndarray) -> bool:
    """Whether no two flows (transfer ids) are on one link at once (see the module's rule). A call of
    many flows whose flows meet mostly shows it among the first to start: the first eighth is checked
    first (two of them that meet settle it; a whole-job step's 7 M flows in 0.5 s, not 6 s), then all."""
    if len(flows) >= EARLY_CHECK_FROM:
        share = len(flows) // EARLY_SHARE
        first = np.sort(flows[np.argpartition(start_ps[flows], share)[:share]])
        if not _flows_apart(schedule, route_of, route_list, first, start_ps, end_ps):
            return False
    return _flows_apart(schedule, route_of, route_list, flows, start_ps, end_ps)


def _flows_apart(schedule: Schedule, route_of: np.ndarray, route_list: list[Route], flows: np.ndarray,
                 start_ps: np.ndarray, end_ps: np.ndarray) -> bool:
    groups = _link_groups(route_list)
    counts = np.array([len(g) for g in groups], dtype=np.int64)[route_of[flows]]
    rows = np.repeat(flows, counts)
    group_starts = np.concatenate(([0], np.cumsum([len(g) for g in groups])))
    within = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    group = np.concatenate(groups + [np.zeros(0, dtype=np.int64)])[group_starts[route_of[rows]] + within]
    order = np.lexsort((start_ps[rows], group))
    rows, group = rows[order], group[order]
    same = group[1:] == group[:-1]
    first, second = rows[:-1][same], rows[1:][same]
    gap_ps = start_ps[second] - end_ps[first]
    if (gap_ps < 0).any():
        return False
    touching = gap_ps == 0
    return not touching.any() or bool(_waits_on(schedule, second[touching], first[touching]).all())


def _link_groups(route_list: list[Route]) -> list[np.ndarray]:
    """Per route, the groups its flows are checked in: the route itself (its links no other route
    takes) and each link it shares with another route (numbered after the routes)."""
    routes_on: dict[int, int] = {}
    for route in route_list:
        for link in set(route.links):
            routes_on[link] = routes_on.get(link, 0) + 1
    groups = []
    for index, route in enumerate(route_list):
        shared = sorted({link for link in route.links if routes_on[link] > 1})
        own = [index] if len(shared) < len(set(route.links)) else []
        groups.append(np.array(own + [len(route_list) + link for link in shared], dtype=np.int64))
    return groups


def _waits_on(schedule: Schedule, children: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Per pair, whether ``children[k]`` names ``parents[k]`` in ``after`` or ``after_sent``."""
    found = np.zeros(len(children), dtype=np.int64)
    for deps in (schedule.transfers.after, schedule.transfers.after_sent):
        named, counts = deps.named_by(children)
        pair = np.repeat(np.arange(len(children)), counts)
        found += np.bincount(pair, weights=named == parents[pair], minlength=len(children)).astype(np.int64)
    return found > 0


def _count_usage(network: FlowNetwork, route_of: np.ndarray, route_list: list[Route], flowing: np.ndarray,
                 nbits: np.ndarray, wire_ps: np.ndarray) -> None:
    """Add the flows to the links' bits, busy time (the flows are apart, so busy time is their sum)
    and peak flow count, as the flow network does when flows start and end."""
    usage = network.usage
    carried = np.bincount(route_of[flowing], weights=nbits[flowing], minlength=len(route_list))
    busy = np.zeros(len(route_list), dtype=np.int64)
    np.add.at(busy, route_of[flowing], wire_ps[flowing])
    used = np.bincount(route_of[flowing], minlength=len(route_list)) > 0
    for index in np.flatnonzero(used).tolist():
        for link in route_list[index].links:
            usage.carried_bits[link] += float(carried[index])
            usage.busy_ps[link] += int(busy[index])
            usage.peak_flows[link] = max(usage.peak_flows[link], 1)
