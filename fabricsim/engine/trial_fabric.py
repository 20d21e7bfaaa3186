"""The fabric as one trial sees it: its flow network, its routes, background traffic and failures.

Built at the start of a trial from the trial's fabric stream (source ports, background hosts,
failure times), it hands the executor the flows of each transfer and collects link usage.
``ideal_route`` gives the breakdown a transfer's ideal: its flows alone on the intact fabric,
spread over distinct equal-cost routes (no ECMP collision), at their max-min rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np
import simpy

from fabricsim.collectives.schedule import Schedule
from fabricsim.config import LossSpec, Scenario
from fabricsim.engine.background import start_background
from fabricsim.engine.failures import LinkFailures
from fabricsim.engine.flows import FlowNetwork, LinkUsage
from fabricsim.engine.impairments import route_loss_rate
from fabricsim.engine.maxmin import max_min_rates
from fabricsim.fabric.ecmp import FlowRouter, FlowTag
from fabricsim.fabric.graph import Fabric
from fabricsim.fabric.routing import NoRouteError, Route, Router, five_tuple_hash


@dataclass(frozen=True)
class RoutedFlows:
    """Every queue pair of a call, routed before it starts: transfer ``t``'s flows take the routes
    ``routes[route_of[k]]`` for ``k`` in ``starts[t]:starts[t + 1]``, queue pair 0 first."""

    starts: np.ndarray
    route_of: np.ndarray
    routes: list[Route]


@dataclass(frozen=True)
class CallFlows:
    """A call's transfers as flows: ``flows_of(tid)`` gives a transfer's (route, tag) per queue pair
    (the executor's), ``loss_rate`` its packet loss rate along its first flow's hashed route (None
    without per-link loss), ``fixed_routes()`` every transfer's one route in advance, when that
    exists (``engine.uncontended``), else None, and ``routed()`` every queue pair's route in advance,
    when routes do not depend on the moment a flow starts (``engine.instant_loop``), else None."""

    flows_of: Callable[[int], list[tuple[Route, FlowTag]]]
    loss_rate: np.ndarray | None = None
    fixed_routes: Callable[[], tuple[np.ndarray, list[Route]] | None] = lambda: None
    flows_of_one: Callable[[int], list[tuple[Route, FlowTag]]] | None = None  # without routing the others too
    routed: Callable[[], RoutedFlows | None] = lambda: None


class TrialFabric:
    """One trial's network, routes, background flows and failures, drawn from its fabric stream."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, fabric: Fabric, router: Router,
                 rng: np.random.Generator) -> None:
        spec, impairments = scenario.fabric, scenario.impairments
        self.env = env
        self.rng = rng
        self.intact_router = router
        self.network = FlowNetwork(env, [link.bandwidth_bps for link in fabric.links])
        # failures change routes: such a trial gets routes of its own
        live_router = Router(fabric) if impairments.failures else router
        self.flow_router = FlowRouter.of(live_router, spec, lambda link: len(self.network.flows_on[link]))
        self.link_loss = {fabric.link_named(name).index: rate for name, rate in impairments.loss.links.items()}
        start_background(self.network, fabric, impairments.background, spec.hosts, rng)
        self.failures_ahead = bool(impairments.failures)
        self.failures = LinkFailures(env, self.network, fabric, self.flow_router, impairments.failures, rng)

    def call_flows(self, schedule: Schedule, group: tuple[int, ...], loss: LossSpec) -> CallFlows:
        """One call's transfers as flows, by this trial's source ports."""
        ports = self.flow_router.draw_ports(schedule.transfers.pairs, self.rng)
        endpoints = self.flow_router.endpoints
        srcs, dsts = np.asarray(group)[schedule.transfers.src], np.asarray(group)[schedule.transfers.dst]

        def flows_of(tid: int) -> list[tuple[Route, FlowTag]]:
            src, dst = int(srcs[tid]), int(dsts[tid])
            try:
                return self.flow_router.flows(src, dst, ports[tid].tolist())
            except NoRouteError:  # cut off: wait on the intact route for the cable to return, or fail
                self.failures.stuck()
                return [(self.intact_router.route(endpoints[src], endpoints[dst]), FlowTag(endpoints[src], endpoints[dst], 0))]

        one_by_one = flows_of
        routed: Callable[[], RoutedFlows | None] = lambda: None
        hashed: Callable[[], tuple | None] = lambda: None
        if self.flow_router.mode == "hash" and not self.failures_ahead:  # routes fixed from the start
            hashed = self._hashed_once(srcs, dsts, ports)
            flows_of = self._routed_at_once(srcs, dsts, ports, flows_of, hashed)
            routed = partial(_routed_flows, hashed, ports.shape[1])
        rates = None
        if self.link_loss:
            rates = np.array([route_loss_rate(loss.rate, self.link_loss, self.intact_router.route(
                endpoints[src], endpoints[dst], five_tuple_hash(src, dst, port)).links)
                for src, dst, port in zip(srcs.tolist(), dsts.tolist(), ports[:, 0].tolist())])
        return CallFlows(flows_of, rates, lambda: self._fixed_routes(schedule, group, ports, hashed), one_by_one,
                         routed)

    def _hashed_once(self, srcs: np.ndarray, dsts: np.ndarray, ports: np.ndarray) -> Callable[[], tuple | None]:
        """Every queue pair's hashed route (``FlowRouter.hashed_routes``), computed when first asked (a
        call timed without the event loop never asks), or None if some pair has no route."""
        computed = []

        def hashed() -> tuple | None:
            if not computed:
                try:
                    computed.append(self.flow_router.hashed_routes(srcs, dsts, ports))
                except NoRouteError:
                    computed.append(None)
            return computed[0]
        return hashed

    def _routed_at_once(self, srcs: np.ndarray, dsts: np.ndarray, ports: np.ndarray,
                        one_by_one: Callable[[int], list[tuple[Route, FlowTag]]], hashed: Callable[[], tuple | None]
                        ) -> Callable[[int], list[tuple[Route, FlowTag]]]:
        """``flows_of`` that routes every transfer of the call at once when first asked, or one by
        one, as they start, if some pair has no route."""
        chosen = []

        def flows_of(tid: int) -> list[tuple[Route, FlowTag]]:
            if not chosen:
                routes = hashed()
                chosen.append(one_by_one if routes is None else self.flow_router.hashed_flows(srcs, dsts, ports, routes))
            return chosen[0](tid)
        return flows_of

    def _fixed_routes(self, schedule: Schedule, group: tuple[int, ...], ports: np.ndarray,
                      hashed: Callable[[], tuple | None]) -> tuple[np.ndarray, list[Route]] | None:
        """Each transfer's route (index into a list of routes) when each is one flow whose route the
        ECMP mode fixes before it starts: one queue pair, and a single route or a hash on its port
        (the routes ``hashed()`` gives, when it gives them)."""
        router, endpoints = self.flow_router.router, self.flow_router.endpoints
        if self.flow_router.qps != 1:
            return None
        routes: dict[tuple[int, ...], int] = {}
        route_list: list[Route] = []

        def index_of(route: Route) -> int:
            if route.links not in routes:
                routes[route.links] = len(route_list)
                route_list.append(route)
            return routes[route.links]

        pairs, pair_of = schedule.transfers.pairs
        pair_route = np.full(len(pairs), -1, dtype=np.int64)
        for k, (src, dst) in enumerate(pairs.tolist()):
            choices = router.equal_cost_routes(endpoints[group[src]], endpoints[group[dst]])
            if len(choices) == 1:
                pair_route[k] = index_of(choices[0])
            elif self.flow_router.mode != "hash":
                return None  # adaptive and spraying choose by load or use every route
            elif (routes := hashed()) is not None:  # a pair hashes: every queue pair's, routed at once
                return routes[0], routes[1]
        route_of = pair_route[pair_of]
        by_hash = np.flatnonzero(route_of < 0)
        for tid in by_hash.tolist():  # hashed: the route the event loop's flow takes
            src, dst = group[int(schedule.transfers.src[tid])], group[int(schedule.transfers.dst[tid])]
            ((route, _tag),) = self.flow_router.flows(src, dst, ports[tid].tolist())
            route_of[tid] = index_of(route)
        return route_of, route_list

    def usage(self) -> LinkUsage:
        return self.network.usage.closed(self.network.flows_on, self.env.now)


def _routed_flows(hashed: Callable[[], tuple | None], qps: int) -> RoutedFlows | None:
    """The hashed routes as ``RoutedFlows`` of ``qps`` queue pairs a transfer."""
    routes = hashed()
    if routes is None:
        return None
    route_of, route_list, _hashes = routes
    return RoutedFlows(np.arange(0, len(route_of) + 1, qps), route_of, route_list)


class _IdealFlow:
    __slots__ = ("links",)

    def __init__(self, links: tuple[int, ...]) -> None:
        self.links = links


def ideal_route(router: Router, src: str, dst: str, qps: int, spray: bool) -> Route:
    """The route latency and the total max-min rate of a transfer's flows alone, each queue pair on
    its own equal-cost route (round robin), or on every one when spraying."""
    routes = router.equal_cost_routes(src, dst)
    if qps == 1 and (len(routes) == 1 or not spray):  # one flow alone: its route's bottleneck
        return routes[0]
    flows = [_IdealFlow(route.links) for route in routes for _ in range(qps)] if spray else \
        [_IdealFlow(routes[qp % len(routes)].links) for qp in range(qps)]
    links = router.fabric.links
    rates = max_min_rates(flows, {link: links[link].bandwidth_bps for flow in flows for link in flow.links})
    return Route(routes[0].links, routes[0].latency_ps, sum(rates.values()))
