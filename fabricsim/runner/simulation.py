"""Simulation: a scenario made concrete (fabric, routes, workload plan, schedules) and its trials run
on the engine's network models into ``records.TrialRecord``s (the public API's steps 2 and 3: see
``fabricsim/__init__.py``).

Trials are independent: trial i draws only from ``SeedSequence(seed, spawn_key=(i,))`` (the i-th
child of ``SeedSequence(seed).spawn``), so its numbers do not depend on which trials ran before it
or where it runs.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np

from fabricsim.collectives import algorithms_for, build_schedule
from fabricsim.collectives.channels import Layout, Place, channel_layout, default_channels
from fabricsim.collectives.protocol import software_latency_ps
from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.sizes import size_bytes_of
from fabricsim.collectives.tuner import (NCCL_ALGORITHM_OF, Pick, Topology, channels_across_hosts, nccl_pick,
                                         nic_path_GBps)
from fabricsim.config import Scenario, ScenarioError
from fabricsim.engine.breakdown import attribute
from fabricsim.engine.failures import cable_links
from fabricsim.engine.impairments import Transport, draw_impairments
from fabricsim.engine.models import NetworkModel, trial_model
from fabricsim.engine.step_flows import LOCAL_ROUTE, step_flows, step_network_part
from fabricsim.engine.trial_fabric import ideal_route
from fabricsim.fabric import Router, build_fabric
from fabricsim.fabric.relays import has_nvls, host_leaves, relay_endpoints, sharp_serves_rails
from fabricsim.fabric.routing import NoRouteError, Route
from fabricsim.records import Causes, TrialRecord
from fabricsim.workload import Call, Trial, WorkloadPlan, plan_jobs, plan_workload
from fabricsim.workload.critical_path import JobView, StepCompute, critical_path, step_compute
from fabricsim.workload.job import StepSchedule, lower_step, programs_of, step_pairs
from fabricsim.workload.jobs import PlacementError, join_steps, place_jobs, placed_call, placed_step


@dataclass(frozen=True, slots=True)
class PlacedJob:
    """One of the scenario's jobs: its name, its own plan (over its own ranks) and its GPUs."""

    name: str
    plan: WorkloadPlan
    gpus: tuple[int, ...]


def trial_rng(seed: int, trial: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(trial,)))


def fabric_rng(seed: int, trial: int) -> np.random.Generator:
    """The trial's second stream: ECMP source ports, background hosts, failure times, launch skew."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(trial, 0)))


def call_latencies_ps(step: StepSchedule, ready_ps: np.ndarray, delivered_ps: np.ndarray) -> dict[str, np.ndarray]:
    """Each group's call's latency in the step (its last delivery less its first transfer's ready time),
    by kind: the call's stream and op."""
    if not step.parts:
        return {}
    marks, starts = step.marks, step.part_starts
    latency_ps = (np.maximum.reduceat(np.where(marks, -1, delivered_ps), starts)
                  - np.minimum.reduceat(np.where(marks, np.iinfo(np.int64).max, ready_ps), starts))
    return {kind: latency_ps[parts] for kind, parts in step.parts_by_kind.items()}


class Simulation:
    """A scenario made concrete: its fabric, routes, workload plan and schedules."""

    def __init__(self, scenario: Scenario, source: str = "<scenario>") -> None:
        self.scenario = scenario
        self.fabric = build_fabric(scenario.fabric)
        self.endpoints = self.fabric.endpoints  # a schedule's ranks: GPUs, then relays (collectives/nvls.py)
        self.router = Router(self.fabric)
        self.jobs = self._place_jobs(source)
        self.plan: WorkloadPlan = self.jobs[0].plan if self.jobs else plan_workload(scenario, len(self.fabric.gpus),
                                                                                       source)
        self.schedule = lru_cache(maxsize=64)(self._build_schedule)
        self.layout = lru_cache(maxsize=64)(self._layout)
        self.pick = lru_cache(maxsize=64)(self._pick)
        self.ideal_route = lru_cache(maxsize=None)(self._ideal_route)
        self.relays_of = lru_cache(maxsize=64)(self._relays_of)  # SHARP's trees found once per group, not per call
        self._step_schedule = lru_cache(maxsize=4)(self._lower_step)
        # steps compare by identity; a run has 1 + jobs of them, each asked for every trial
        self.step_fixed_delay_ps = lru_cache(maxsize=None)(self._step_fixed_delay_ps)
        self.step_part_schedules = lru_cache(maxsize=None)(self._step_part_schedules)
        self.step_network_part = lru_cache(maxsize=None)(step_network_part)
        self._step_compute = lru_cache(maxsize=4)(step_compute)
        self._check_routes(source)
        self._check_impairment_links(source)

    def _place_jobs(self, source: str) -> tuple[PlacedJob, ...]:
        """The scenario's jobs on their hosts (``fabricsim.workload.jobs``), each planned on its own GPUs."""
        if not self.scenario.jobs:
            return ()
        spec = self.scenario.fabric
        group_hosts = spec.clos.hosts_per_leaf if spec.topology == "leaf_spine" else spec.hosts  # rail switches span all
        try:
            placed = place_jobs([(job.placement, job.hosts) for job in self.scenario.jobs],
                                [tuple(ranks) for ranks in self.fabric.host_ranks().values()], self.scenario.seed, group_hosts)
        except PlacementError as error:
            raise ScenarioError(f"{source}: jobs.{error.job}.placement: expected {error}") from None
        return tuple(PlacedJob(job.name or f"job{index}", plan, gpus) for index, (job, plan, gpus)
                     in enumerate(zip(self.scenario.jobs, plan_jobs(self.scenario, source), placed)))

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
                              orders=layout.orders, trees=layout.trees, groups=layout.groups,
                              leaves=layout.leaves)

    def _pick(self, op: str, ranks: int, per_rank_bytes: int, layout: Layout) -> Pick:
        """The algorithm and protocol a call runs: the scenario's, or NCCL's choice where it says auto."""
        collective, spec = self.scenario.collective, self.scenario.fabric
        if collective.algorithm != "auto" and collective.protocol != "auto":
            return Pick(collective.algorithm, collective.protocol, "")
        intra_bps = spec.nvlink.bandwidth_bps if spec.intra_host == "nvlink" else spec.pcie.bandwidth_bps
        topology = Topology(ranks, layout.hosts, spec.architecture, spec.intra_host == "nvlink", intra_bps / 8e9,
                            nic_path_GBps(spec),
                            self.scenario.in_network_collectives and spec.clos.sharp and self.sharp_rails,
                            self.scenario.in_network_collectives and has_nvls(self.fabric))
        only = None if collective.algorithm == "auto" else NCCL_ALGORITHM_OF.get(collective.algorithm, "")
        pick = nccl_pick(op, topology, size_bytes_of(op, ranks, per_rank_bytes), collective.protocol, only)
        return pick if collective.algorithm == "auto" else Pick(collective.algorithm, pick.protocol, pick.reason)

    @cached_property
    def sharp_rails(self) -> bool:
        return sharp_serves_rails(self.fabric)

    @cached_property
    def host_leaves(self) -> dict[int | None, int]:
        return host_leaves(self.fabric)

    def call_pick(self, call: Call) -> Pick:
        return self.pick(call.op, len(call.group), call.per_rank_bytes, self.layout(call.group))

    def call_schedule(self, call: Call) -> Schedule:
        return self.schedule(call.op, len(call.group), call.per_rank_bytes, self.layout(call.group))

    def call_endpoints(self, call: Call, schedule: Schedule) -> tuple[int, ...]:
        """What the schedule's ranks are on the fabric (indices into ``endpoints``): the call's GPUs,
        then its relays (``fabricsim.fabric.relays``)."""
        if not schedule.relays:
            return call.group
        return call.group + self.relays_of(call.group, schedule.algorithm)

    def _relays_of(self, group: tuple[int, ...], algorithm: str) -> tuple[int, ...]:
        """The relays a schedule of ``algorithm`` over these GPUs takes, as indices into ``endpoints``."""
        hosts = tuple(tuple(group[rank] for rank in members) for members in self.layout(group).groups)
        return relay_endpoints(self.fabric, hosts, algorithm)

    def _layout(self, group: tuple[int, ...]) -> Layout:
        """NCCL's channels over these GPUs (by rank), from where each sits on the fabric: its host, its
        NIC's rail and its nearest NICs' (a fabric that does not say, as an InfraGraph one may not,
        gives each GPU the rail of its rank order within its host)."""
        fabric, leaves = self.fabric, self.host_leaves
        places, seen = [], Counter()
        for rank in group:
            gpu = fabric.gpus[rank]
            host = fabric.devices[gpu].host
            rail = fabric.nic_rail.get(fabric.nic_of.get(gpu, ""), seen[host])
            seen[host] += 1
            places.append(Place(host, rail, tuple(fabric.nic_rail[nic] for nic in fabric.near_nics.get(gpu, ()))
                                or (rail,), leaves[host]))
        channels = self.scenario.collective.channels
        if not channels and len({place.host for place in places}) > 1:  # NCCL's, doubled where it doubles them
            channels = channels_across_hosts(default_channels(places), self.scenario.fabric)
        return channel_layout(places, channels)

    def route(self, src_rank: int, dst_rank: int) -> Route:
        return self.router.route(self.endpoints[src_rank], self.endpoints[dst_rank])

    def _check_routes(self, source: str) -> None:
        try:
            pairs = self._first_trial_pairs()
        except ValueError as error:
            raise ScenarioError(f"{source}: workload: {error}") from None
        try:
            for src, dst in pairs:
                self.route(src, dst)
        except NoRouteError as error:
            raise ScenarioError(f"{source}: fabric: expected a connected topology, {error}") from None

    def _first_trial_pairs(self) -> set[tuple[int, int]]:
        """Every (src, dst) pair of endpoints the first trial routes: its calls', or in a whole-job step
        every group's of every job (``step_pairs``)."""
        if self.plan.mesh is None:
            return {(endpoints[src], endpoints[dst]) for call in dict.fromkeys(self.plan.trials[0].calls)
                    for endpoints in [self.call_endpoints(call, self.call_schedule(call))]
                    for src, dst in self.call_schedule(call).transfers.pairs[0].tolist()}
        pairs = set()
        for job in self.jobs or (PlacedJob("", self.plan, tuple(range(self.plan.mesh.size))),):
            gpus = np.array(job.gpus, dtype=np.int64)
            local = step_pairs(job.plan.mesh, job.plan.trials[0],
                               lambda call, gpus=job.gpus: self.call_schedule(placed_call(call, gpus)))
            pairs.update(zip(gpus[local[:, 0]].tolist(), gpus[local[:, 1]].tolist()))
        return pairs

    def _ideal_route(self, src_rank: int, dst_rank: int) -> Route:
        """A transfer's route latency and its queue pairs' total rate, alone and without collisions."""
        spec = self.scenario.fabric
        return ideal_route(self.router, self.endpoints[src_rank], self.endpoints[dst_rank],
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
        """One trial: the whole job's step at once (``plan.mesh`` set: ``fabricsim.workload.job``), or its
        calls one after another (with any compute between), on the scenario's model."""
        if self.plan.mesh is not None:
            return self._run_step(trial)
        scenario = self.scenario
        impairments, loss = scenario.impairments, scenario.impairments.loss
        rng = trial_rng(scenario.seed, trial.index)
        model = trial_model(scenario, self.fabric, self.router, rng, fabric_rng(scenario.seed, trial.index))
        transport = Transport.of(scenario)
        ideal_ps, causes, failed = 0, Causes(), False
        for call in trial.calls:
            if call.compute_before_ps:
                model.wait(call.compute_before_ps)
                ideal_ps += call.compute_before_ps
            schedule = self.call_schedule(call)
            group = self.call_endpoints(call, schedule)
            flows = model.call_flows(schedule, group)
            drawn = draw_impairments(impairments.jitter, loss, schedule.transfers.nbytes, scenario.fabric.nic.mtu_bytes,
                                     rng, flows.loss_rate)
            route_of = lambda src, dst, group=group: self.route(group[src], group[dst])  # noqa: E731
            software_ps = software_latency_ps(schedule, self.call_pick(call).protocol, route_of, self.fabric.links)
            drawn = dataclasses.replace(drawn, start_delay_ps=drawn.start_delay_ps + model.launch_skew_ps(schedule),
                                        fixed_delay_ps=software_ps)
            result = model.run_call(
                schedule, flows, route_of, drawn, transport,
                ideal_route_of=lambda src, dst, group=group: self.ideal_route(group[src], group[dst]))
            ideal_ps += result.ideal_ps
            causes.add(result.causes)
            if result.cut_off_ps is not None:
                causes.failure_ps += result.cut_off_ps
            if result.failed:
                failed = True
                break
        else:
            if trial.compute_after_ps:
                model.wait(trial.compute_after_ps)
                ideal_ps += trial.compute_after_ps
        return self._record(trial, model.now_ps, ideal_ps, causes, failed, model)

    def step_schedule(self, trial: Trial) -> StepSchedule:
        """The trial's calls run by every group of the job, as one schedule over GPU ranks; with jobs,
        every job's step at once."""
        if self.jobs:
            return self.jobs_step[0]
        return self._step_schedule(programs_of(trial))

    def _lower_step(self, programs: tuple[tuple[tuple[Call, ...], int], ...]) -> StepSchedule:
        return lower_step(programs, self.plan.mesh, self.call_schedule)

    @cached_property
    def job_steps(self) -> tuple[StepSchedule, ...]:
        """Each job's step on its GPUs (every trial of a job runs its one shape: megatron has one)."""
        return tuple(placed_step(lower_step(programs_of(job.plan.trials[0]), job.plan.mesh,
                                            lambda call, gpus=job.gpus: self.call_schedule(placed_call(call, gpus))),
                                 job.gpus, len(self.fabric.gpus)) for job in self.jobs)

    @cached_property
    def jobs_step(self) -> tuple[StepSchedule, np.ndarray]:
        """Every job's step joined, and where each job's transfers start (``join_steps``)."""
        return join_steps(list(self.job_steps), len(self.fabric.gpus))

    def _run_step(self, trial: Trial) -> TrialRecord:
        """One step of the whole job: its one DAG run like a call (``fabricsim.workload.job``). With jobs,
        every job's step at once, each job's end recorded, and each job run alone with the trial's seed."""
        if not self.jobs:
            return self._run_dag(trial, self.step_schedule(trial), self.job_views)[0]
        step, firsts = self.jobs_step
        record, delivered_ps = self._run_dag(trial, step, self.job_views)
        if delivered_ps is None:
            return record
        ends = tuple(int(delivered_ps[start:end].max()) for start, end in zip(firsts[:-1], firsts[1:]))
        alone = tuple(self._run_dag(trial, job_step)[0].latency_ps for job_step in self.job_steps)
        return dataclasses.replace(record, job_latency_ps=ends, job_alone_ps=alone)

    @cached_property
    def job_views(self) -> tuple[JobView, ...]:
        """How the step names its groups: each job's mesh and GPUs, and where its transfers and calls start."""
        if not self.jobs:
            return (JobView("", self.plan.mesh, tuple(range(self.plan.mesh.size))),)
        calls_before = np.cumsum([0] + [len(step.calls) for step in self.job_steps])
        return tuple(JobView(job.name, job.plan.mesh, job.gpus, int(first), int(before)) for job, first, before
                     in zip(self.jobs, self.jobs_step[1], calls_before))

    def step_compute(self, trial: Trial) -> StepCompute:
        """The trial's step's compute critical path and its busiest GPU's compute (``workload.critical_path``)."""
        return self._step_compute(self.step_schedule(trial))

    def _step_fixed_delay_ps(self, step: StepSchedule) -> np.ndarray:
        """Each transfer's start delay that is the same in every trial: its rank's compute (marks) and
        the software latency of its call's picked protocol."""
        fixed_ps = step.compute_ps.copy()
        for (index, group, start), call_schedule in zip(step.parts, self.step_part_schedules(step)):
            call = step.calls[index]
            end = start + len(call_schedule.transfers)
            route_of = lambda src, dst, group=group: self.route(group[src], group[dst])  # noqa: E731
            fixed_ps[start:end] += software_latency_ps(call_schedule, self.call_pick(call).protocol, route_of,
                                                       self.fabric.links)
        fixed_ps.flags.writeable = False  # shared by every trial of the step
        return fixed_ps

    def _step_part_schedules(self, step: StepSchedule) -> tuple[Schedule, ...]:
        """Each part's call's schedule, in ``step.parts``' order."""
        return tuple(self.call_schedule(step.calls[index]) for index, _, _ in step.parts)

    def _run_dag(self, trial: Trial, step: StepSchedule,
                 views: tuple[JobView, ...] = ()) -> tuple[TrialRecord, np.ndarray | None]:
        """``step`` run like a call; its record (with ``views``, its critical path named), and each
        transfer's delivery time (None: failed)."""
        scenario = self.scenario
        rng = trial_rng(scenario.seed, trial.index)
        model = trial_model(scenario, self.fabric, self.router, rng, fabric_rng(scenario.seed, trial.index))
        schedule, marks = step.schedule, step.marks
        fixed_ps, skew_ps = self.step_fixed_delay_ps(step), np.zeros(len(schedule.transfers), dtype=np.int64)
        for (_, _, start), call_schedule in zip(step.parts, self.step_part_schedules(step)):
            # drawn from the trial's fabric stream, part by part
            skew_ps[start:start + len(call_schedule.transfers)] = model.launch_skew_ps(call_schedule)
        flows = step_flows(model.call_flows(self.step_network_part(step), tuple(range(len(self.fabric.gpus)))), marks)
        drawn = draw_impairments(scenario.impairments.jitter, scenario.impairments.loss, schedule.transfers.nbytes,
                                 scenario.fabric.nic.mtu_bytes, rng, flows.loss_rate)
        drawn = dataclasses.replace(drawn, start_delay_ps=np.where(marks, 0, drawn.start_delay_ps + skew_ps),
                                    fixed_delay_ps=fixed_ps)
        result = model.run_call(schedule, flows, self._step_route, drawn, Transport.of(scenario),
                                ideal_route_of=self._step_ideal_route)
        causes = result.causes
        if result.cut_off_ps is not None:
            causes.failure_ps += result.cut_off_ps
        record = self._record(trial, model.now_ps, result.ideal_ps, causes, result.failed, model)
        if result.failed or result.transfer_times is None:
            return record, None
        ready_ps, delivered_ps = result.transfer_times()
        latencies_ps = call_latencies_ps(step, ready_ps, delivered_ps)
        path = None
        if views:
            path = critical_path(step, ready_ps, delivered_ps, views,
                                 lambda tid: (link for route, _ in flows.flows_of_one(tid) for link in route.links
                                              if link < len(self.fabric.links)),
                                 lambda link: self._link_load(record, link))
        return dataclasses.replace(record, call_latency_ps=latencies_ps, critical_path=path), delivered_ps

    def _link_load(self, record: TrialRecord, link: int) -> tuple[str, float]:
        """A link's name and the share of its capacity it carried over the trial."""
        spec = self.fabric.links[link]
        return spec.name, record.link_usage.carried_bits[link] / (spec.bandwidth_bps * max(record.latency_ps, 1) / 1e12)

    def _step_route(self, src: int, dst: int) -> Route:
        return LOCAL_ROUTE if src == dst else self.route(src, dst)

    def _step_ideal_route(self, src: int, dst: int) -> Route:
        return LOCAL_ROUTE if src == dst else self.ideal_route(src, dst)

    def _record(self, trial: Trial, latency_ps: int, ideal_ps: int, causes: Causes, failed: bool,
                model: NetworkModel) -> TrialRecord:
        return TrialRecord(trial.index, trial.per_rank_bytes, latency_ps, failed,
                           attribute(latency_ps, ideal_ps, causes, failed), model.model_output())
