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

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import simpy

from fabricsim.collectives import build_schedule
from fabricsim.config import Scenario, ScenarioError
from fabricsim.engine.executor import ScheduleRun
from fabricsim.engine.flows import FlowNetwork
from fabricsim.fabric import Router, build_fabric
from fabricsim.fabric.routing import NoRouteError, Route
from fabricsim.impairments import draw_impairments, rto_ps
from fabricsim.schedule import Schedule
from fabricsim.workload import Trial, WorkloadPlan, plan_workload


@dataclass(frozen=True, slots=True)
class TrialRecord:
    trial: int
    per_rank_bytes: tuple[int, ...]
    latency_ps: int
    failed: bool


def size_bytes_of(op: str, ranks: int, per_rank_bytes: int) -> int:
    """The nccl-tests S of a collective from each rank's contribution."""
    return per_rank_bytes * ranks if op == "all_gather" else per_rank_bytes


def trial_rng(seed: int, trial: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(trial,)))


class Simulation:
    """A scenario made concrete: its fabric, routes, workload plan and schedules."""

    def __init__(self, scenario: Scenario, source: str = "<scenario>") -> None:
        self.scenario = scenario
        self.fabric = build_fabric(scenario.fabric)
        self.router = Router(self.fabric)
        self.plan: WorkloadPlan = plan_workload(scenario, len(self.fabric.gpus), source)
        self._capacity_bps = [link.bandwidth_bps for link in self.fabric.links]
        self.schedule = lru_cache(maxsize=64)(self._build_schedule)
        self._check_routes(source)

    def _build_schedule(self, per_rank_bytes: int) -> Schedule:
        collective = self.scenario.collective
        size = size_bytes_of(collective.op, self.plan.ranks, per_rank_bytes)
        return build_schedule(collective.op, collective.algorithm, self.plan.ranks, size, collective.chunks)

    def route(self, src_rank: int, dst_rank: int) -> Route:
        return self.router.route(self.fabric.gpus[src_rank], self.fabric.gpus[dst_rank])

    def _check_routes(self, source: str) -> None:
        pairs = {(t.src, t.dst) for size in set(self.plan.trials[0].per_rank_bytes)
                 for t in self.schedule(size).transfers}
        try:
            for src, dst in pairs:
                self.route(src, dst)
        except NoRouteError as error:
            raise ScenarioError(f"{source}: fabric: expected a connected topology, {error}") from None

    def run(self) -> list[TrialRecord]:
        return [self.run_trial(trial) for trial in self.plan.trials]

    def run_trial(self, trial: Trial) -> TrialRecord:
        impairments = self.scenario.impairments
        loss = impairments.loss
        mtu_bytes = self.scenario.fabric.nic.mtu_bytes
        rng = trial_rng(self.scenario.seed, trial.index)
        env = simpy.Environment()
        network = FlowNetwork(env, self._capacity_bps)
        failed = False
        for per_rank_bytes in trial.per_rank_bytes:
            schedule = self.schedule(per_rank_bytes)
            nbytes = np.fromiter((t.nbytes for t in schedule.transfers), dtype=np.int64,
                                 count=len(schedule.transfers))
            drawn = draw_impairments(impairments.jitter, loss, nbytes, mtu_bytes, rng)
            run = ScheduleRun(env, network, schedule, self.route, drawn, mtu_bytes,
                              rto_ps(loss.timeout_exponent), loss.retry_count)
            env.run(until=run.done)
            if run.failed:
                failed = True
                break
        return TrialRecord(trial.index, trial.per_rank_bytes, int(env.now), failed)
