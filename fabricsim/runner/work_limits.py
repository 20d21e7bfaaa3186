"""Work limits: a scenario's work estimated before anything is built, in well under a second, and refused
past the limits below unless the command line says ``--allow-large``.

The estimate counts GPUs and spines, trials (about BYTES_PER_TRIAL of memory each, kept for exact
percentiles), link flaps, packets in the packet model, and transfers (and flows: transfers times
qps_per_rankpair). A collective call of n ranks in c chunks is taken as at most 2 n^2 c k transfers over
k rings at once (a ring all-reduce has 2 n (n - 1) c, an all-to-all n (n - 1); k is 2 for
bidirectional_ring, the channels of ring and tree (doubled where NCCL doubles them), 1 otherwise; PAT, NVLS, NVLSTree and CollNet, which
auto may pick too, cut a call into as many chunks as their size needs), putting at most n S max(2, log2 n)
bytes on the wire for its size S (a ring all-reduce 2 (n - 1) S, recursive doubling n S log2 n); in the
whole job's step, once per group that runs it, plus each GPU's marks (one per call, and one more).
With scenario ``jobs``, a trial's transfers are every job's, and the run's flows twice those (each job
also runs alone, for its slowdown).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fabricsim.collectives.collnet import chain_chunks
from fabricsim.collectives.nvls import chunks_for as nvls_chunks
from fabricsim.collectives.pat import plan as pat_plan
from fabricsim.collectives.sizes import size_bytes_of
from fabricsim.collectives.tuner import channels_across_hosts
from fabricsim.config import FabricSpec, Scenario, ScenarioError
from fabricsim.units import PS_PER_DAY, PS_PER_S, format_rate
from fabricsim.workload import Call, Trial, WorkloadPlan, plan_jobs, plan_workload
from fabricsim.workload.job import step_calls

MAX_GPUS = 16_384
MAX_WORKERS = 256  # local worker processes (--workers)
MAX_TRIALS = 10_000_000
MAX_TRANSFERS_PER_TRIAL = 2**25  # a 4096-rank ring all-reduce, counted as 2 n^2
MAX_TRANSFERS = 10**11  # over the whole run
MAX_PACKET_EVENTS = 100_000_000  # fabric.model packet: packets and DCQCN timer events per trial
MAX_FLAPS = 100_000  # link failures per trial, over all cables
MAX_CALLS_PER_STEP = 100_000  # megatron: layers x micro-batches, what the estimate builds in under a second
BYTES_PER_TRIAL = 70
MAX_TRIAL_PS = 2**62  # half of int64: sums of a trial's times keep room
MAX_HOPS = 16  # links a route crosses, at most (GPU, PCIe switch, NIC, leaf, spine and back)


def check_work(scenario: Scenario, source: str | Path, allow_large: bool = False) -> None:
    """Raise ScenarioError naming the key when the scenario's work is past a limit (unless allow_large),
    or when a trial could outlast the picosecond clock (whatever allow_large says)."""
    overridable = "; --allow-large runs it anyway"
    if not allow_large:
        _refuse(_scale_problem(scenario), source, overridable)
    plans = _plans(scenario, source)
    works = [trial_work(scenario, plan) for plan in plans]
    if not allow_large:
        _refuse(_plan_problem(scenario, plans[0], works), source, overridable)
    _refuse(clock_problem(scenario, works), source)


def _plans(scenario: Scenario, source: str | Path) -> tuple[WorkloadPlan, ...]:
    """The scenario's plan, or each job's."""
    return plan_jobs(scenario, str(source)) or (plan_workload(scenario, scenario.fabric.gpus, str(source)),)


def _refuse(problem: tuple[str, str] | None, source: str | Path, hint: str = "") -> None:
    if problem:
        key, text = problem
        raise ScenarioError(f"{source}: {key}: expected {text}{hint}")


def work_problem(scenario: Scenario, source: str | Path) -> tuple[str, str] | None:
    """(key, what was expected and what was found) for the first limit the scenario passes, or None."""
    if problem := _scale_problem(scenario):
        return problem
    plans = _plans(scenario, source)
    return _plan_problem(scenario, plans[0], [trial_work(scenario, plan) for plan in plans])


def _scale_problem(scenario: Scenario) -> tuple[str, str] | None:
    """The limits checked before the workload is planned (planning would take too long past them)."""
    fabric, workload = scenario.fabric, scenario.workload
    if fabric.gpus > MAX_GPUS:
        return "fabric.hosts", f"at most {MAX_GPUS} GPUs (hosts x gpus_per_host), got {fabric.gpus}"
    if fabric.clos.spines > MAX_GPUS:
        return "fabric.clos.spines", f"at most {MAX_GPUS} spines, got {fabric.clos.spines}"
    flaps = sum(failure.flaps for failure in scenario.impairments.failures)
    if flaps > MAX_FLAPS:
        return "impairments.failures", f"at most {MAX_FLAPS} flaps per trial over all cables, got {flaps}"
    for prefix, workload in [(f"jobs.{index}.", job.workload) for index, job in enumerate(scenario.jobs)] \
            or [("", workload)]:
        if workload.rule == "megatron" and workload.transformer is not None:
            calls = workload.transformer.layers * workload.parallelism.micro_batches
            if calls > MAX_CALLS_PER_STEP:
                return (f"{prefix}workload.parallelism.micro_batches",
                        f"at most {MAX_CALLS_PER_STEP} layers x micro-batches per step, got {calls}")
    return None


def _plan_problem(scenario: Scenario, plan: WorkloadPlan, works: list[TrialWork]) -> tuple[str, str] | None:
    """The limits on the planned trials (of the scenario, or of every job at once: ``works``, ``plan``
    the first's): their count, transfers, flows and packets."""
    fabric, workload, collective = scenario.fabric, scenario.workload, scenario.collective
    trials = plan.trials.repeats * len(plan.trials.shapes)  # len() stops at sys.maxsize
    trials_key = ("jobs.0." if scenario.jobs else "") + ("workload.trials" if workload.trials else "workload")
    if trials > MAX_TRIALS:
        return trials_key, (f"at most {MAX_TRIALS} trials (each keeps about {BYTES_PER_TRIAL} bytes: "
                            f"{_gib(trials * BYTES_PER_TRIAL)} here), got {trials}")
    transfers = sum(work.transfers for work in works)
    if transfers > MAX_TRANSFERS_PER_TRIAL:
        key = "collective.chunks" if collective.chunks > 1 else "fabric.hosts"
        return key, f"at most {MAX_TRANSFERS_PER_TRIAL} transfers per trial, got about {transfers}"
    flows = transfers * fabric.qps_per_rankpair
    if flows > MAX_TRANSFERS_PER_TRIAL:
        return "fabric.qps_per_rankpair", (f"at most {MAX_TRANSFERS_PER_TRIAL} flows per trial (transfers x "
                                           f"qps_per_rankpair), got about {flows}")
    if fabric.model == "packet":
        events = packet_events(scenario, works[0])
        if events > MAX_PACKET_EVENTS:
            return "fabric.model", (f"at most {MAX_PACKET_EVENTS} packets and DCQCN timer events per trial in the "
                                    f"packet model, got about {events}")
    total = flows * trials * (2 if scenario.jobs else 1)
    if total > MAX_TRANSFERS:
        return trials_key, f"at most {MAX_TRANSFERS} flows in all, got about {total} ({trials} trials)"
    return None


def clock_problem(scenario: Scenario, works: list[TrialWork]) -> tuple[str, str] | None:
    """(key, text) when a trial's bytes (every plan's ``works``: jobs at once) at the slowest link rate, and its
    transfers' latencies over MAX_HOPS links each, could take longer than MAX_TRIAL_PS; None otherwise
    (drawn delays, capped per draw, are left out)."""
    rate_bps, key = slowest_rate(scenario)
    fabric = scenario.fabric
    latency_ps = max(fabric.cable_latency_ps, fabric.nic.latency_ps, fabric.switch.latency_ps,
                     fabric.nvswitch.latency_ps, fabric.nvlink.latency_ps, fabric.pcie.latency_ps)
    bound_ps = sum(work.wire_bytes * 8 * PS_PER_S / rate_bps + work.transfers * MAX_HOPS * latency_ps
                   for work in works)
    if bound_ps <= MAX_TRIAL_PS:
        return None
    return key, (f"a trial that 64-bit picoseconds can time (at most {MAX_TRIAL_PS / PS_PER_DAY:.0f} days): its "
                 f"bytes at {format_rate(rate_bps)} and its latencies could take {bound_ps / PS_PER_DAY:.3g} days")


def slowest_rate(scenario: Scenario, dcqcn: bool = True) -> tuple[float, str]:
    """The lowest rate a flow may get, in bits/s, with the key that sets it: the slowest link (a leaf's
    uplink share under oversubscription), less background load; DCQCN's floor in the packet model
    (with ``dcqcn``)."""
    fabric = scenario.fabric
    rates = [(fabric.nic.effective_bandwidth_bps, "fabric.nic.bandwidth"),
             (fabric.nvlink.bandwidth_bps, "fabric.nvlink.bandwidth"),
             (fabric.pcie.bandwidth_bps, "fabric.pcie.bandwidth")]
    if fabric.clos.oversubscription > 1:
        rates.append((fabric.nic.bandwidth_bps / fabric.clos.oversubscription, "fabric.clos.oversubscription"))
    if dcqcn and fabric.model == "packet" and fabric.packet.dcqcn.enabled:
        rates.append((fabric.packet.dcqcn.min_rate_bps, "fabric.packet.dcqcn.min_rate"))
    rate_bps, key = min(rates, key=lambda pair: pair[0])
    return rate_bps * (1 - scenario.impairments.background.load), key


def packet_events(scenario: Scenario, work: TrialWork) -> int:
    """The packet model's work in a trial: its packets (bytes on the wire / MTU), plus with DCQCN the
    alpha timer of each rank's sending queue pairs, every alpha_resume_interval for as long as each
    call's size S takes at the slowest link's rate."""
    fabric = scenario.fabric
    events = work.wire_bytes // fabric.nic.mtu_bytes
    if fabric.packet.dcqcn.enabled:
        rate_bps, _ = slowest_rate(scenario, dcqcn=False)
        ticks_per_byte = 8 * PS_PER_S / rate_bps / fabric.packet.dcqcn.alpha_resume_interval_ps
        events += int(work.rank_size_bytes * fabric.qps_per_rankpair * ticks_per_byte)
    return events


@dataclass(frozen=True)
class TrialWork:
    """A plan's largest trial by each measure (each the largest over its trial shapes): its transfers
    (the module doc's estimate, marks included), its bytes on the wire (``wire_bytes``), and its calls'
    sizes times their ranks (DCQCN's alpha timers)."""

    transfers: int
    wire_bytes: int
    rank_size_bytes: int


def trial_work(scenario: Scenario, plan: WorkloadPlan) -> TrialWork:
    """The plan's ``TrialWork``, from one walk over each trial shape's calls."""
    collective = scenario.collective
    channels = _channels(collective.algorithm, collective.channels, scenario.fabric)
    per_shape = []
    for shape in plan.trials.shapes:
        transfers, wire, rank_size = _marks(plan, shape), 0, 0
        for call, groups in _trial_calls(plan, shape):
            ranks = len(call.group)
            transfers += 2 * ranks ** 2 * _chunks(scenario, call) * channels * groups
            wire += wire_bytes(call) * groups
            rank_size += size_bytes_of(call.op, ranks, call.per_rank_bytes) * ranks * groups
        per_shape.append((transfers, wire, rank_size))
    return TrialWork(*(max(measure) for measure in zip(*per_shape)))


def _trial_calls(plan: WorkloadPlan, shape: Trial) -> list[tuple[Call, int]]:
    """The calls a trial runs and how many groups run each: every group of its kind in the whole job's
    step (``fabricsim.workload.job.step_calls``), else one."""
    if plan.mesh is None:
        return [(call, 1) for call in shape.calls]
    return [(call, len(groups)) for call, groups in step_calls(plan.mesh, shape)]


def transfers_per_trial(scenario: Scenario, plan: WorkloadPlan) -> int:
    """At least as many transfers as the largest trial of the plan runs (the estimate of the module doc)."""
    return trial_work(scenario, plan).transfers


def _marks(plan: WorkloadPlan, shape: Trial) -> int:
    """The whole job's marks: per GPU, one per call of its stage's program and one after the last."""
    if plan.mesh is None:
        return 0
    if not shape.stages:
        return (len(shape.calls) + 1) * plan.mesh.size
    return sum(len(calls) + 1 for calls, _ in shape.stages) * (plan.mesh.size // plan.mesh.pp)


def _chunks(scenario: Scenario, call: Call) -> int:
    """The call's chunks: the scenario's, or PAT's, NVLS's or CollNetChain's own for its size where they may run."""
    chunks, ranks = scenario.collective.chunks, len(call.group)
    size_bytes = size_bytes_of(call.op, ranks, call.per_rank_bytes)
    if scenario.collective.algorithm in ("nvls", "nvls_tree", "collnet_direct", "collnet_chain", "auto") and call.op in ("all_reduce", "all_gather", "reduce_scatter"):
        chunks = max(chunks, nvls_chunks(ranks, size_bytes),
                     chain_chunks(ranks, size_bytes, scenario.fabric.gpus_per_host))
    if scenario.collective.algorithm in ("pat", "auto") and call.op in ("all_gather", "reduce_scatter"):
        return max(chunks, pat_plan(call.op, ranks, size_bytes).chunks)
    return chunks


def wire_bytes(call: Call) -> int:
    """At least the bytes a collective call puts on the wire: n S max(2, log2 n) for n ranks and size S
    (a ring all-reduce sends 2 (n - 1) S, recursive doubling n S log2 n)."""
    ranks = len(call.group)
    return ranks * size_bytes_of(call.op, ranks, call.per_rank_bytes) * max(2, math.ceil(math.log2(ranks)))


def _channels(algorithm: str, channels: int, fabric: FabricSpec) -> int:
    """Rings or trees an all-reduce runs at once: two for bidirectional_ring; for ring and tree (and
    auto, which picks one of them) the ``channels`` given, else at most one per GPU of a host, twice
    that where NCCL doubles them, and two trees at least."""
    if algorithm in ("ring", "tree", "auto"):
        return channels or max(2, channels_across_hosts(fabric.gpus_per_host, fabric))
    return 2 if algorithm == "bidirectional_ring" else 1


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:.3g} GiB"
