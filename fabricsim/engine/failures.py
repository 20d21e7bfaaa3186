"""Link failures: cables that go down and come back during a trial, and what happens to the flows.

A cable (both directions) goes down at a time drawn per trial from ``down_at``, for ``down_for``
(for good when not given), ``flaps`` times ``period`` apart. While it is down its capacity is 0:
the flows on it stall. After ``detection_delay`` the fabric knows: routes computed from then on
avoid it, and the flows on it are re-routed (ECMP re-hash over the links still up). A flow with no
path left waits for the cable to come back; if nothing will come back, the trial has reached a
dead end and fails then. When the cable comes back, stalled flows resume and routes may use it again.
"""

from __future__ import annotations

import numpy as np
import simpy

from fabricsim.config import FailureSpec
from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.impairments import draw_delays_ps
from fabricsim.fabric.ecmp import FlowRouter, FlowTag
from fabricsim.fabric.graph import Fabric
from fabricsim.fabric.routing import NoRouteError


def cable_links(fabric: Fabric, spec: FailureSpec) -> tuple[int, int]:
    """The two directed links of the failing cable; KeyError when the devices are not cabled."""
    a, b = spec.cable
    return fabric.link_between(a, b).index, fabric.link_between(b, a).index


class LinkFailures:
    """Drives a trial's failures; ``dead_end`` fires when a flow has no path and none will return."""

    def __init__(self, env: simpy.Environment, network: FlowNetwork, fabric: Fabric, flow_router: FlowRouter,
                 specs: tuple[FailureSpec, ...], rng: np.random.Generator) -> None:
        self.env = env
        self.network = network
        self.flow_router = flow_router
        self.dead_end = env.event()
        self.last_down_ps = 0
        self._ups_pending = 0
        self._down_count: dict[tuple[int, int], int] = {}
        self._down_now: set[tuple[int, int]] = set()
        for spec in specs:
            links = cable_links(fabric, spec)
            capacity_bps = network.capacity_bps[links[0]]
            first_ps = int(draw_delays_ps(spec.down_at, 1, rng)[0])
            for flap in range(spec.flaps):
                down_ps = first_ps + flap * (spec.period_ps or 0)
                self._at(down_ps, lambda links=links, spec=spec: self._down(links, spec.detection_ps))
                if spec.down_for_ps is not None:
                    self._ups_pending += 1
                    self._at(down_ps + spec.down_for_ps, lambda links=links, bps=capacity_bps: self._up(links, bps))

    def _at(self, time_ps: int, action) -> None:
        self.env.timeout(time_ps).callbacks.append(lambda _event: action())

    def _down(self, links: tuple[int, int], detection_ps: int) -> None:
        self._down_count[links] = count = self._down_count.get(links, 0) + 1
        self.last_down_ps = self.env.now
        self._down_now.add(links)
        self.network.set_capacity(links, 0.0)
        self._at(detection_ps, lambda: self._detected(links, count))

    def _detected(self, links: tuple[int, int], count: int) -> None:
        if self._down_count[links] != count or self.network.capacity_bps[links[0]] > 0:
            return  # back up before anyone noticed, or a later failure will be detected on its own
        self.flow_router.router.set_down(links, True)
        for flow in list(dict.fromkeys(flow for link in links for flow in self.network.flows_on[link])):
            if not isinstance(flow.tag, FlowTag):
                continue  # background traffic stays where it is
            try:
                self.network.move(flow, self.flow_router.reroute(flow.tag).links)
            except NoRouteError:
                self.stuck()

    def stuck(self) -> None:
        """A flow has no path: it waits for a cable to return, or the trial ends here."""
        if not self._ups_pending and not self.dead_end.triggered:
            self.dead_end.succeed()

    def _up(self, links: tuple[int, int], capacity_bps: float) -> None:
        self._ups_pending -= 1
        self._down_now.discard(links)
        self.flow_router.router.set_down(links, False)
        self.network.set_capacity(links, capacity_bps)
        if any(isinstance(flow.tag, FlowTag) for down in self._down_now for link in down
               for flow in self.network.flows_on[link]):
            self.stuck()  # the last cable to return was not the one a flow waits on
