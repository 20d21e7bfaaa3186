"""A call's flows as columns, when every queue pair is routed before the call starts.

The instant loop (``engine.instant_loop``) takes such a call's flows from here, by the executor's
(``engine.executor``) rules: a transfer's bytes split evenly over its queue pairs, its resent bytes
on its first, which also waits the transfer's NACK round trips and timeouts on top of its route's
latency before it is delivered. The transfer's loss causes (resend time, NACK round trips,
timeouts) are filled in here, once, for the whole call.
"""

from __future__ import annotations

import numpy as np

from fabricsim.collectives.schedule import Schedule
from fabricsim.engine.breakdown import TransferCauses
from fabricsim.engine.impairments import TransferImpairments, Transport, loss_columns
from fabricsim.engine.trial_fabric import RoutedFlows
from fabricsim.fabric.routing import route_columns


class FlowColumns:
    """Per flow (transfer by transfer, queue pair 0 first): its transfer (``tid``), route (``route``,
    an index into the routed flows' routes), bits (``nbits``) and wait from its last bit to its
    delivery (``wait_ps``); per transfer, where its flows start (``starts``, one more than transfers)."""

    def __init__(self, schedule: Schedule, routed: RoutedFlows, impairments: TransferImpairments,
                 transport: Transport, causes: TransferCauses) -> None:
        rate_bps, latency_ps = route_columns(routed.routes, np.arange(len(routed.routes)))
        self.starts = starts = np.asarray(routed.starts, dtype=np.int64)
        self.route = route_of = np.asarray(routed.route_of, dtype=np.int64)
        self.per_transfer = per_transfer = np.diff(starts)
        self.tid = flow_tid = np.repeat(np.arange(len(per_transfer)), per_transfer)
        queue_pair = np.arange(len(flow_tid)) - starts[flow_tid]
        first = queue_pair == 0
        first_route = route_of[starts[:-1]]
        resent_bytes, retransmit_ps, nack_ps, timeout_ps = loss_columns(impairments, rate_bps[first_route],
                                                                        latency_ps[first_route], transport)
        causes.retransmit_ps[:] = retransmit_ps
        causes.retransmit_after_ps[:] = nack_ps
        causes.timeout_ps[:] = timeout_ps
        nbytes, flows = schedule.transfers.nbytes[flow_tid], per_transfer[flow_tid]
        flow_bytes = nbytes // flows + (queue_pair < nbytes % flows)
        self.nbits = 8.0 * (flow_bytes + np.where(first, resent_bytes[flow_tid], 0))
        self.wait_ps = latency_ps[route_of] + np.where(first, (causes.retransmit_after_ps + causes.timeout_ps)[flow_tid], 0)
