"""The flow model's event loop run moment by moment, for calls routed before they start.

When every queue pair of a call has its route before the call starts (hash mode with no link to
fail: ``trial_fabric.RoutedFlows``), nothing in the flow network (``engine.flows``) or the executor
(``engine.executor``) depends on the order of the events of one moment, only on what happens at it.
So this loop takes the moments in time order and, at each, does what the event loop does one event
at a time: the flows due end (their last bit leaves; they leave their links), flows in flight
arrive, transfers whose start delay is over enter (their flows join their links), and what that
releases in the DAG follows at the same moment, until nothing more happens at it. Then the flows
reachable from the links that changed are re-rated once (max-min, ``engine.maxmin``), as the flow
network does at the end of an instant. The loop is compiled (``engine.instant_kernel``): its cost is
per moment and per flow re-rated, never per event of an interpreter.

Every number is the event loop's, to the picosecond and the bit: rates, settled bits and end times
use the flow network's float operations; a component's max-min rates do not depend on the order of
its flows; which dependency released a transfer last is the greatest key of those done at its
moment; a link's bits carried add whole numbers of bits (exact below 2**53), its busy time integers.
The rules of the executor are kept: a transfer's bytes split evenly over its queue pairs, its resent
bytes and its NACK round trips and timeouts on its first; a flow of no bits or no links is sent as
it starts.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fabricsim.collectives.schedule import Schedule
from fabricsim.engine.dag_progress import DagProgress
from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.impairments import TransferImpairments, Transport
from fabricsim.engine.routed_flows import FlowColumns
from fabricsim.engine.trial_fabric import RoutedFlows
from fabricsim.fabric.routing import Route


class InstantRun:
    """A call's run on the instant loop; its DAG progress (``dag``) has its ideal time, causes and
    transfer times, ``end_ps`` the time of its last delivery once ``run`` returns."""

    def __init__(self, env, network: FlowNetwork, schedule: Schedule, routed: RoutedFlows,
                 impairments: TransferImpairments, transport: Transport,
                 ideal_route_of: Callable[[int, int], Route]) -> None:
        self.network = network
        self.start_ps = self.end_ps = int(env.now)
        self.dag = DagProgress(env, schedule, impairments, ideal_route_of, None)
        self._routed = routed
        self._columns = FlowColumns(schedule, routed, impairments, transport, self.dag.causes)
        self.dag.entered_together(self._columns.per_transfer)

    def run(self) -> None:
        """Run the call from its start to its last delivery; add its link usage to the network's."""
        from fabricsim.engine.instant_kernel import run_moments  # numba: imported by the calls that need it

        pad = len(self.network.capacity_bps)  # routes as rows of links, padded with a link of their own
        routes = self._routed.routes
        route_links = np.full((len(routes), max((len(route.links) for route in routes), default=1) or 1), pad,
                              dtype=np.int64)
        for index, route in enumerate(routes):
            route_links[index, :len(route.links)] = route.links
        carried_bits, busy_ps, peak_flows = np.zeros(pad + 1), np.zeros(pad + 1, dtype=np.int64), np.zeros(
            pad + 1, dtype=np.int64)
        dag, columns = self.dag.columns(), self._columns
        self.end_ps, latest_ps, latest_tid = run_moments(
            self.start_ps, dag.delay_ps, self.dag.roots(), dag.waiting, dag.sent_children.starts,
            dag.sent_children.ids, dag.delivered_children.starts, dag.delivered_children.ids, dag.unsent,
            dag.undelivered_flows, dag.released_at, dag.released_by_delivery, dag.released_by, dag.delivered_at,
            columns.starts, columns.route, columns.tid, columns.nbits, columns.wait_ps, route_links,
            np.array([*self.network.capacity_bps, np.inf]), carried_bits, busy_ps, peak_flows)
        self.dag.all_delivered_by(latest_ps, latest_tid)
        usage = self.network.usage
        for link in np.flatnonzero(peak_flows[:pad]).tolist():
            usage.carried_bits[link] += float(carried_bits[link])
            usage.busy_ps[link] += int(busy_ps[link])
            usage.peak_flows[link] = max(usage.peak_flows[link], int(peak_flows[link]))
