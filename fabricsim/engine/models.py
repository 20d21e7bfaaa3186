"""Network models behind one interface: the runner hands a model a call and gets one result back.

A ``NetworkModel`` is one trial's network, flow or packet: it gives a call's transfers their flows
(``call_flows``), its launch skew, and runs the call from the trial's current time (``run_call``),
returning a ``CallResult`` (end time, failure, ideal time, the causes along the critical chain).
How it gets there is its own business: the flow model times a call whose flows never meet as a
longest path (``engine.uncontended``) and runs the others on its event loop; the packet model plays
every packet. ``model_output`` gives what the trial's record keeps of the model (link use and
flows, or port counters: ``records.FlowModelOutput``, ``records.PacketModelOutput``).
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np
import simpy

from fabricsim.collectives.schedule import Schedule
from fabricsim.config import Scenario
from fabricsim.engine.executor import ScheduleRun
from fabricsim.engine.impairments import TransferImpairments, Transport, launch_skew_ps
from fabricsim.engine.instant_loop import InstantRun
from fabricsim.engine.packet_executor import PacketScheduleRun, packet_flows_of
from fabricsim.engine.packet_network import PacketNetwork
from fabricsim.engine.trial_fabric import CallFlows, RoutedFlows, TrialFabric
from fabricsim.engine.uncontended import run_uncontended
from fabricsim.fabric.graph import Fabric
from fabricsim.fabric.routing import Route, Router
from fabricsim.records import Causes, FlowModelOutput, FlowRecord, LinkUse, PacketModelOutput


@dataclass(frozen=True, slots=True)
class CallResult:
    """A call's run: when it ended, whether it failed, its ideal time and the causes of the rest;
    ``cut_off_ps`` is the time lost to a cut with no way round, when one ended it."""

    end_ps: int
    failed: bool
    ideal_ps: int
    causes: Causes
    cut_off_ps: int | None = None
    # flow model: per transfer, when it was ready and when delivered (asked for, not computed, per call)
    transfer_times: Callable[[], tuple[np.ndarray, np.ndarray]] | None = None


class NetworkModel(Protocol):
    now_ps: int  # the trial's time

    def wait(self, duration_ps: int) -> None: ...  # let the trial's time pass (compute, nothing sent)

    def call_flows(self, schedule: Schedule, group: tuple[int, ...]) -> CallFlows: ...

    def launch_skew_ps(self, schedule: Schedule) -> np.ndarray | int: ...

    def run_call(self, schedule: Schedule, flows: CallFlows, route_of: Callable[[int, int], Route],
                 impairments: TransferImpairments, transport: Transport,
                 ideal_route_of: Callable[[int, int], Route]) -> CallResult: ...

    def model_output(self) -> FlowModelOutput | PacketModelOutput: ...


def trial_model(scenario: Scenario, fabric: Fabric, router: Router, trial_rng: np.random.Generator,
                fabric_rng: np.random.Generator) -> NetworkModel:
    """The scenario's model (``fabric.model``) for one trial, its time at 0."""
    model = PacketModel if scenario.fabric.model == "packet" else FlowModel
    return model(simpy.Environment(), scenario, fabric, router, trial_rng, fabric_rng)


class _TrialClock:
    """A model's time: where the trial is, and time passing with nothing sent."""

    env: simpy.Environment

    @property
    def now_ps(self) -> int:
        return int(self.env.now)

    def wait(self, duration_ps: int) -> None:
        self.env.run(until=self.env.now + duration_ps)


class FlowModel(_TrialClock):
    """The flow model for one trial: its fabric as drawn for the trial, the flows it records, its cuts.

    A call whose flows can be timed without the event loop (``engine.uncontended``) is; a call whose
    routes are known before it starts runs moment by moment in compiled code (``engine.instant_loop``);
    the others run on the event loop event by event. Set ``uncontended_shortcut`` or ``instant_loop`` to
    False to leave that path out (same numbers, slower).
    """

    uncontended_shortcut = True
    instant_loop = True

    def __init__(self, env: simpy.Environment, scenario: Scenario, fabric: Fabric, router: Router,
                 trial_rng: np.random.Generator, fabric_rng: np.random.Generator) -> None:
        self.env = env
        self.scenario = scenario
        self.fabric = TrialFabric(env, scenario, fabric, router, fabric_rng)
        self.flows: list[FlowRecord] = []

    def call_flows(self, schedule: Schedule, group: tuple[int, ...]) -> CallFlows:
        return self.fabric.call_flows(schedule, group, self.scenario.impairments.loss)

    def launch_skew_ps(self, schedule: Schedule) -> np.ndarray | int:
        skew = self.scenario.impairments.launch_skew
        return 0 if skew.distribution == "none" else launch_skew_ps(skew, schedule, self.fabric.rng)

    def run_call(self, schedule: Schedule, flows: CallFlows, route_of: Callable[[int, int], Route],
                 impairments: TransferImpairments, transport: Transport,
                 ideal_route_of: Callable[[int, int], Route]) -> CallResult:
        if self._may_skip_events(impairments):
            routes = flows.fixed_routes()
            run = routes and run_uncontended(self.fabric.network, int(self.env.now), schedule, routes, impairments,
                                             transport, ideal_route_of)
            if run:
                if run.end_ps > self.env.now:
                    self.env.run(until=run.end_ps)
                return CallResult(run.end_ps, False, run.ideal_ps(), run.critical_causes(),
                                  transfer_times=run.transfer_times)
        routed = self.instant_loop and self._routes_ahead(impairments) and flows.routed()
        if routed:
            return self._run_per_instant(schedule, routed, impairments, transport, ideal_route_of)
        run = ScheduleRun(self.env, self.fabric.network, schedule, route_of, impairments, transport,
                          flows_of=flows.flows_of, record_flows=self.scenario.output.flows,
                          ideal_route_of=ideal_route_of)
        dead_end = self.fabric.failures.dead_end
        with _older_objects_frozen():
            self.env.run(until=self.env.any_of([run.done, dead_end]))
        self.flows.extend(run.flow_records or ())
        cut_off_ps = (self.env.now - self.fabric.failures.last_down_ps) if dead_end.triggered else None
        return CallResult(int(self.env.now), run.failed or cut_off_ps is not None, run.ideal_ps(),
                          run.critical_causes(), cut_off_ps, run.transfer_times)

    def _may_skip_events(self, impairments: TransferImpairments) -> bool:
        """Whether the call may be timed without the event loop (``_on_its_own``)."""
        return self.uncontended_shortcut and self._on_its_own(impairments)

    def _on_its_own(self, impairments: TransferImpairments) -> bool:
        """Whether the call has the network to itself and nothing will change under it: nothing else on
        the network, no failures to come, no queue pair that fails, no flow records asked for."""
        return (not self.scenario.output.flows and not self.scenario.impairments.failures
                and not impairments.failed.any() and not any(self.fabric.network.flows_on))

    def _run_per_instant(self, schedule: Schedule, routed: RoutedFlows, impairments: TransferImpairments,
                         transport: Transport, ideal_route_of: Callable[[int, int], Route]) -> CallResult:
        """The call on the instant loop (its arrays freed on return)."""
        run = InstantRun(self.env, self.fabric.network, schedule, routed, impairments, transport, ideal_route_of)
        run.run()
        if run.end_ps > self.env.now:
            self.env.run(until=run.end_ps)
        return CallResult(run.end_ps, False, run.dag.ideal_ps(), run.dag.critical_causes(),
                          transfer_times=run.dag.transfer_times)

    def _routes_ahead(self, impairments: TransferImpairments) -> bool:
        """Whether the call's flows may be taken from routes given in advance (``flows.routed()``, which
        says whether there are such routes): the call on its own (``_on_its_own``) and no link down."""
        return self._on_its_own(impairments) and min(self.fabric.network.capacity_bps, default=1.0) > 0

    def model_output(self) -> FlowModelOutput:
        usage = self.fabric.usage()
        return FlowModelOutput(LinkUse(tuple(usage.carried_bits), tuple(usage.busy_ps), tuple(usage.peak_flows)),
                               tuple(self.flows))


@contextmanager
def _older_objects_frozen():
    """Keep the objects alive before an event-loop run (modules, the schedule, the fabric) out of the
    garbage collector's full collections during it: a long run's flows and timers set off dozens,
    each of which would walk them all again (a fifth of a 512-rank ring's time). They return to the
    collector afterwards; nothing is leaked. A process that froze objects of its own is left alone."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class PacketModel(_TrialClock):
    """The packet model for one trial: its packet network, and its queue pairs' ECMP ports."""

    def __init__(self, env: simpy.Environment, scenario: Scenario, fabric: Fabric, router: Router,
                 trial_rng: np.random.Generator, fabric_rng: np.random.Generator) -> None:
        spec = scenario.fabric
        self.env = env
        self.spec = spec
        self.router = router
        self.network = PacketNetwork(fabric, spec.nic, spec.packet, scenario.impairments.loss.rate, trial_rng)
        self.ports_rng = fabric_rng

    def call_flows(self, schedule: Schedule, group: tuple[int, ...]) -> CallFlows:
        return CallFlows(packet_flows_of(self.network, self.router, self.spec, schedule, group, self.ports_rng))

    def launch_skew_ps(self, schedule: Schedule) -> int:
        return 0  # refused in packet mode by the scenario's validation

    def run_call(self, schedule: Schedule, flows: CallFlows, route_of: Callable[[int, int], Route],
                 impairments: TransferImpairments, transport: Transport,
                 ideal_route_of: Callable[[int, int], Route]) -> CallResult:
        run = PacketScheduleRun(self.env, self.network, schedule, route_of, impairments, transport,
                                flows_of=flows.flows_of, ideal_route_of=ideal_route_of)
        with _older_objects_frozen():
            self.env.run(until=run.done)
        return CallResult(int(self.env.now), run.failed, run.ideal_ps(), run.critical_causes())

    def model_output(self) -> PacketModelOutput:
        return PacketModelOutput(self.network.port_counters())
