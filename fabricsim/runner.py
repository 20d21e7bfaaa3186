"""Runner: the four steps of a run, as a public API.

    scenario = load_scenario("scenarios/tp4_ring_allgather.yaml")   # 1. describe
    simulation = Simulation(scenario)                                # 2. build fabric and workload
    records = simulation.run()                                       # 3. run the trials
    records[0].latency_ps                                            # 4. read flat records

Trials are independent: trial i draws only from ``SeedSequence(seed, spawn_key=(i,))`` (the i-th
child of ``SeedSequence(seed).spawn``), so its numbers do not depend on which trials ran before it
or where it runs.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np
import simpy

from fabricsim.collectives import algorithms_for, build_schedule
from fabricsim.collectives.channels import Layout, Place, channel_layout
from fabricsim.collectives.protocol import with_software_latency
from fabricsim.collectives.tuner import NCCL_ALGORITHM_OF, Pick, Topology, nccl_pick
from fabricsim.config import Scenario, ScenarioError
from fabricsim.counters import PortCounters
from fabricsim.breakdown import Causes, attribute
from fabricsim.engine.executor import FlowRecord, ScheduleRun
from fabricsim.engine.failures import cable_links
from fabricsim.engine.flows import LinkUsage
from fabricsim.engine.trial_fabric import CallFlows, TrialFabric, ideal_route
from fabricsim.engine.uncontended import UncontendedRun, run_uncontended
from fabricsim.engine.packet_executor import PacketScheduleRun, packet_flows_of
from fabricsim.engine.packet_network import PacketNetwork
from fabricsim.fabric import Router, build_fabric
from fabricsim.fabric.routing import NoRouteError, Route
from fabricsim.impairments import TransferImpairments, draw_impairments, launch_skew_ps, rto_ps
from fabricsim.schedule import Schedule
from fabricsim.workload import Call, Trial, WorkloadPlan, plan_workload


@dataclass(frozen=True, slots=True)
class TrialRecord:
    trial: int
    per_rank_bytes: tuple[int, ...]
    latency_ps: int
    failed: bool
    ports: tuple[PortCounters, ...] = ()  # fabric.model packet: per-port counters (counters.py)
    # why it took latency_ps (fabricsim/breakdown.py): the six parts sum to latency_ps
    ideal_ps: int = 0
    contention_ps: int = 0
    jitter_ps: int = 0
    retransmit_ps: int = 0
    timeout_ps: int = 0
    failure_ps: int = 0
    link_usage: LinkUsage | None = None  # flow model: per link bits, busy time, peak flows
    flows: tuple[FlowRecord, ...] = ()  # output.flows: every flow of the trial


def size_bytes_of(op: str, ranks: int, per_rank_bytes: int) -> int:
    """The nccl-tests S of a collective from each rank's contribution."""
    return per_rank_bytes * ranks if op in ("all_gather", "gather") else per_rank_bytes


def trial_rng(seed: int, trial: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(trial,)))


def fabric_rng(seed: int, trial: int) -> np.random.Generator:
    """The trial's second stream: ECMP source ports, background hosts, failure times, launch skew."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(trial, 0)))


class Simulation:
    """A scenario made concrete: its fabric, routes, workload plan and schedules."""

    def __init__(self, scenario: Scenario, source: str = "<scenario>") -> None:
        self.scenario = scenario
        self.fabric = build_fabric(scenario.fabric)
        self.router = Router(self.fabric)
        self.plan: WorkloadPlan = plan_workload(scenario, len(self.fabric.gpus), source)
        self.schedule = lru_cache(maxsize=64)(self._build_schedule)
        self.layout = lru_cache(maxsize=64)(self._layout)
        self.pick = lru_cache(maxsize=64)(self._pick)
        self.ideal_route = lru_cache(maxsize=None)(self._ideal_route)
        self._check_routes(source)
        self._check_impairment_links(source)

    def _build_schedule(self, op: str, ranks: int, per_rank_bytes: int, layout: Layout | None = None) -> Schedule:
        """The call's schedule, by the scenario's algorithm (auto: as NCCL picks), or the op's first one
        when it has no such; ``layout``: ring's and tree's channels, the first ``ranks`` GPUs' if None."""
        collective = self.scenario.collective
        layout = layout or self.layout(tuple(range(ranks)))
        algorithm = self.pick(op, ranks, per_rank_bytes, layout).algorithm
        known = algorithms_for(op)
        algorithm = algorithm if algorithm in known or not known else known[0]
        return build_schedule(op, algorithm, ranks, size_bytes_of(op, ranks, per_rank_bytes), collective.chunks,
                              root=collective.root, local_ranks=self.scenario.fabric.gpus_per_host,
                              orders=layout.orders, trees=layout.trees)

    def _pick(self, op: str, ranks: int, per_rank_bytes: int, layout: Layout) -> Pick:
        """The algorithm and protocol a call runs: the scenario's, or NCCL's choice where it says auto."""
        collective, spec = self.scenario.collective, self.scenario.fabric
        if collective.algorithm != "auto" and collective.protocol != "auto":
            return Pick(collective.algorithm, collective.protocol, "")
        intra_bps = spec.nvlink.bandwidth_bps if spec.intra_host == "nvlink" else spec.pcie.bandwidth_bps
        topology = Topology(ranks, layout.hosts, spec.architecture, spec.intra_host == "nvlink", intra_bps / 8e9,
                            min(spec.nic.effective_bandwidth_bps, spec.pcie.bandwidth_bps) / 8e9)
        only = None if collective.algorithm == "auto" else NCCL_ALGORITHM_OF.get(collective.algorithm, "")
        pick = nccl_pick(op, topology, size_bytes_of(op, ranks, per_rank_bytes), collective.protocol, only)
        return pick if collective.algorithm == "auto" else Pick(collective.algorithm, pick.protocol, pick.reason)

    def call_pick(self, call: Call) -> Pick:
        return self.pick(call.op, len(call.group), call.per_rank_bytes, self.layout(call.group))

    def call_schedule(self, call: Call) -> Schedule:
        return self.schedule(call.op, len(call.group), call.per_rank_bytes, self.layout(call.group))

    def _layout(self, group: tuple[int, ...]) -> Layout:
        """NCCL's channels over these GPUs (by rank), from where each sits on the fabric: its host, its
        NIC's rail and its nearest NICs' (a fabric that does not say, as an InfraGraph one may not,
        gives each GPU the rail of its rank order within its host)."""
        fabric = self.fabric
        places, seen = [], Counter()
        for rank in group:
            gpu = fabric.gpus[rank]
            host = fabric.devices[gpu].host
            rail = fabric.nic_rail.get(fabric.nic_of.get(gpu, ""), seen[host])
            seen[host] += 1
            places.append(Place(host, rail, tuple(fabric.nic_rail[nic] for nic in fabric.near_nics.get(gpu, ()))
                                or (rail,)))
        return channel_layout(places, self.scenario.collective.channels)

    def route(self, src_rank: int, dst_rank: int) -> Route:
        return self.router.route(self.fabric.gpus[src_rank], self.fabric.gpus[dst_rank])

    def _check_routes(self, source: str) -> None:
        try:
            pairs = {(call.group[src], call.group[dst]) for call in dict.fromkeys(self.plan.trials[0].calls)
                     for src, dst in self.call_schedule(call).transfers.pairs[0].tolist()}
        except ValueError as error:
            raise ScenarioError(f"{source}: workload: {error}") from None
        try:
            for src, dst in pairs:
                self.route(src, dst)
        except NoRouteError as error:
            raise ScenarioError(f"{source}: fabric: expected a connected topology, {error}") from None

    def _ideal_route(self, src_rank: int, dst_rank: int) -> Route:
        """A transfer's route latency and its queue pairs' total rate, alone and without collisions."""
        spec = self.scenario.fabric
        return ideal_route(self.router, self.fabric.gpus[src_rank], self.fabric.gpus[dst_rank],
                           spec.qps_per_rankpair, spec.clos.ecmp == "spray")

    def _check_impairment_links(self, source: str) -> None:
        impairments = self.scenario.impairments
        for key_path, names in (("background.links", impairments.background.links),
                                ("loss.links", tuple(impairments.loss.links))):
            for name in names:
                try:
                    self.fabric.link_named(name)
                except KeyError:
                    raise ScenarioError(f"{source}: impairments.{key_path}: expected links of the fabric "
                                        f"such as {self.fabric.links[0].name}, got {name!r}") from None
        for index, failure in enumerate(impairments.failures):
            try:
                cable_links(self.fabric, failure)
            except KeyError:
                raise ScenarioError(f"{source}: impairments.failures.{index}.cable: expected two cabled devices, "
                                    f"got {list(failure.cable)}") from None

    def run(self) -> list[TrialRecord]:
        return [self.run_trial(trial) for trial in self.plan.trials]

    def run_trial(self, trial: Trial) -> TrialRecord:
        """One trial: its calls one after another (with any compute between), on the scenario's model."""
        scenario = self.scenario
        impairments, loss = scenario.impairments, scenario.impairments.loss
        rng = trial_rng(scenario.seed, trial.index)
        env = simpy.Environment()
        model = (_PacketTrial if scenario.fabric.model == "packet" else _FlowTrial)(self, env, trial.index, rng)
        ideal_ps, causes, failed = 0, Causes(), False
        for call in trial.calls:
            if call.compute_before_ps:
                env.run(until=env.now + call.compute_before_ps)
                ideal_ps += call.compute_before_ps
            schedule = self.call_schedule(call)
            flows = model.call_flows(schedule, call.group)
            drawn = draw_impairments(impairments.jitter, loss, schedule.transfers.nbytes, scenario.fabric.nic.mtu_bytes,
                                     rng, flows.loss_rate)
            drawn = dataclasses.replace(drawn, start_delay_ps=drawn.start_delay_ps + model.launch_skew_ps(schedule))
            jitter_ps = drawn.start_delay_ps
            route_of = lambda src, dst, group=call.group: self.route(group[src], group[dst])  # noqa: E731
            drawn = with_software_latency(drawn, schedule, self.call_pick(call).protocol, route_of, self.fabric.links)
            run, cut_off_ps = model.run(
                schedule, flows, route_of, drawn, scenario.fabric.nic.mtu_bytes, rto_ps(loss.timeout_exponent),
                loss.retry_count, fixed_delay_ps=drawn.start_delay_ps - jitter_ps,
                ideal_route_of=lambda src, dst, group=call.group: self.ideal_route(group[src], group[dst]))
            ideal_ps += run.ideal_ps()
            causes.add(run.critical_causes())
            if cut_off_ps is not None:
                causes.failure_ps += cut_off_ps
            if run.failed or cut_off_ps is not None:
                failed = True
                break
        else:
            if trial.compute_after_ps:
                env.run(until=env.now + trial.compute_after_ps)
                ideal_ps += trial.compute_after_ps
        breakdown = attribute(int(env.now), ideal_ps, causes, failed)
        return TrialRecord(trial.index, trial.per_rank_bytes, int(env.now), failed,
                           **{name: getattr(breakdown, name) for name in breakdown.__slots__},
                           **model.record_fields())


class _FlowTrial:
    """A trial on the flow model: its fabric as drawn for the trial, the flows it records, its cuts.

    A call whose flows can be timed without the event loop (``engine.uncontended``) is; set
    ``uncontended_shortcut`` to False to run every call on the event loop (same numbers, slower).
    """

    uncontended_shortcut = True

    def __init__(self, simulation: Simulation, env: simpy.Environment, trial: int, rng: np.random.Generator) -> None:
        scenario = simulation.scenario
        self.env = env
        self.scenario = scenario
        self.fabric = TrialFabric(env, scenario, simulation.fabric, simulation.router,
                                  fabric_rng(scenario.seed, trial))
        self.flows: list[FlowRecord] = []

    def call_flows(self, schedule: Schedule, group: tuple[int, ...]) -> CallFlows:
        return self.fabric.call_flows(schedule, group, self.scenario.impairments.loss)

    def launch_skew_ps(self, schedule: Schedule) -> np.ndarray | int:
        skew = self.scenario.impairments.launch_skew
        return 0 if skew.distribution == "none" else launch_skew_ps(skew, schedule, self.fabric.rng)

    def run(self, schedule: Schedule, flows: CallFlows, route_of: Callable[[int, int], Route],
            impairments: TransferImpairments, mtu_bytes: int, rto_ps: int, retry_count: int,
            fixed_delay_ps: np.ndarray, ideal_route_of: Callable[[int, int], Route]
            ) -> tuple[ScheduleRun | UncontendedRun, int | None]:
        """Run the call; the second value is the time lost to a cut with no way round, if one ended it."""
        if self._may_skip_events(impairments):
            routes = flows.fixed_routes()
            run = routes and run_uncontended(self.fabric.network, int(self.env.now), schedule, routes, impairments,
                                             mtu_bytes, rto_ps, retry_count, fixed_delay_ps, ideal_route_of)
            if run:
                if run.end_ps > self.env.now:
                    self.env.run(until=run.end_ps)
                return run, None
        run = ScheduleRun(self.env, self.fabric.network, schedule, route_of, impairments, mtu_bytes, rto_ps,
                          retry_count, flows_of=flows.flows_of, fixed_delay_ps=fixed_delay_ps,
                          record_flows=self.scenario.output.flows, ideal_route_of=ideal_route_of)
        dead_end = self.fabric.failures.dead_end
        self.env.run(until=self.env.any_of([run.done, dead_end]))
        self.flows.extend(run.flow_records or ())
        return run, (self.env.now - self.fabric.failures.last_down_ps) if dead_end.triggered else None

    def _may_skip_events(self, impairments: TransferImpairments) -> bool:
        """Whether the call may be timed without the event loop: nothing else on the network, no
        failures to come, no queue pair that fails, no flow records asked for."""
        return (self.uncontended_shortcut and not self.scenario.output.flows and not self.scenario.impairments.failures
                and not impairments.failed.any() and not any(self.fabric.network.flows_on))

    def record_fields(self) -> dict:
        return {"link_usage": self.fabric.usage(), "flows": tuple(self.flows)}


class _PacketTrial:
    """A trial on the packet model: its packet network, and its queue pairs' ECMP ports."""

    def __init__(self, simulation: Simulation, env: simpy.Environment, trial: int, rng: np.random.Generator) -> None:
        spec = simulation.scenario.fabric
        self.env = env
        self.simulation = simulation
        self.network = PacketNetwork(simulation.fabric, spec.nic, spec.packet,
                                     simulation.scenario.impairments.loss.rate, rng)
        self.ports_rng = fabric_rng(simulation.scenario.seed, trial)

    def call_flows(self, schedule: Schedule, group: tuple[int, ...]) -> CallFlows:
        simulation = self.simulation
        return CallFlows(packet_flows_of(self.network, simulation.router, simulation.scenario.fabric, schedule, group,
                                         self.ports_rng))

    def launch_skew_ps(self, schedule: Schedule) -> int:
        return 0  # refused in packet mode by the scenario's validation

    def run(self, schedule: Schedule, flows: CallFlows, *args, **kwargs) -> tuple[PacketScheduleRun, None]:
        run = PacketScheduleRun(self.env, self.network, schedule, *args, flows_of=flows.flows_of, **kwargs)
        self.env.run(until=run.done)
        return run, None

    def record_fields(self) -> dict:
        return {"ports": self.network.port_counters()}
