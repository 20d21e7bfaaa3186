"""The flows of a whole job's step (``fabricsim.workload.job``): its transfers' as for any call, and its
ranks' marks (no bytes, from a rank to itself) on a route of no links that delivers at once."""

from __future__ import annotations

import numpy as np

from fabricsim.collectives.schedule import Dependencies, Schedule, TransferTable
from fabricsim.engine.trial_fabric import CallFlows, RoutedFlows
from fabricsim.fabric.routing import Route
from fabricsim.workload.job import StepSchedule

LOCAL_ROUTE = Route((), 0, float("inf"))


def step_network_part(step: StepSchedule) -> Schedule:
    """The step's transfers between two GPUs, in id order, without their dependencies: what the
    network model draws flows (ports, routes, loss rates) for."""
    table, keep = step.schedule.transfers, ~step.marks
    no_deps = Dependencies(np.zeros(int(keep.sum()) + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))
    part = TransferTable(table.src[keep], table.dst[keep], table.nbytes[keep], table.piece[keep], table.pieces[keep],
                         table.reduce[keep], no_deps, no_deps)
    return Schedule("step", "step", step.schedule.ranks, int(part.nbytes.sum()), part)


def step_flows(flows: CallFlows, marks: np.ndarray) -> CallFlows:
    """The step's flows, from ``flows`` of its network part (``step_network_part``) and its marks."""
    part_of = np.cumsum(~marks) - 1  # a transfer's index in the network part
    local = [(LOCAL_ROUTE, None)]
    loss_rate = None
    if flows.loss_rate is not None:
        loss_rate = np.zeros(len(marks))
        loss_rate[~marks] = flows.loss_rate

    def flows_of(tid: int) -> list:
        return local if marks[tid] else flows.flows_of(int(part_of[tid]))

    def flows_of_one(tid: int) -> list:
        return local if marks[tid] else (flows.flows_of_one or flows.flows_of)(int(part_of[tid]))

    def fixed_routes() -> tuple[np.ndarray, list[Route]] | None:
        routes = flows.fixed_routes()
        if routes is None:
            return None
        route_of, route_list = routes
        every = np.full(len(marks), len(route_list), dtype=np.int64)
        every[~marks] = route_of
        return every, [*route_list, LOCAL_ROUTE]

    def routed() -> RoutedFlows | None:
        part = flows.routed()
        if part is None:
            return None
        per_transfer = np.ones(len(marks), dtype=np.int64)
        per_transfer[~marks] = np.diff(part.starts)
        on_network = ~np.repeat(marks, per_transfer)
        route_of = np.full(len(on_network), len(part.routes), dtype=np.int64)
        route_of[on_network] = part.route_of
        return RoutedFlows(np.concatenate(([0], np.cumsum(per_transfer))), route_of, [*part.routes, LOCAL_ROUTE])

    return CallFlows(flows_of, loss_rate, fixed_routes, flows_of_one, routed)
