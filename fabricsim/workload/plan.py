"""Workload planning: a scenario's rule turned into the trials of a run.

- data_sizes: an explicit list of per-rank sizes (KCCB's "Data Size" list), each run ``trials`` times;
- tensor_parallel, data_parallel, data_parallel_layerwise: the KCCB tutorial's rules
  (``fabricsim.workload.kccb``), trials = batch_count x epochs;
- megatron: a transformer's training step under TP x PP x DP (``fabricsim.workload.megatron``), by
  by default run by the whole job at once (``scope: job``; the flow model only), or rank 0's calls one
  at a time (``scope: rank0``, the packet model's default).
With scenario ``jobs``, each job is planned on its own GPUs (``plan_jobs``).
Calls of the first two kinds use the scenario's ``collective.op`` over every GPU of the fabric;
the megatron rule names each call's op and group itself.
"""

from __future__ import annotations

from fabricsim.config import Scenario
from fabricsim.config.devices import DEVICES
from fabricsim.workload.kccb import collective_bytes
from fabricsim.workload.megatron import megatron_mesh, megatron_stages, megatron_step, megatron_trial_count
from fabricsim.workload.trial import Call, Trial, Trials, WorkloadPlan, batch_count


def plan_workload(scenario: Scenario, gpus: int, source: str) -> WorkloadPlan:
    workload, op = scenario.workload, scenario.collective.op
    everyone = tuple(range(gpus))
    if workload.rule == "megatron":
        mesh = megatron_mesh(workload, gpus, source)
        peak_flops = DEVICES[workload.device].peak_flops() if workload.device else None
        whole_job = scenario.whole_job_steps
        stages = megatron_stages(workload, mesh, peak_flops) if whole_job and mesh.pp > 1 else ()
        calls, compute_after_ps = stages[0] if stages else megatron_step(workload, mesh, peak_flops)
        trials = Trials((Trial(0, calls, compute_after_ps, stages),), megatron_trial_count(workload, mesh))
        main = calls[0]  # tp x pp x dp = GPUs >= 2, so some group has two ranks
        return WorkloadPlan(main.op, len(main.group), trials, mesh if whole_job else None)
    if workload.rule == "data_sizes":
        repeats = workload.trials or 1
        per_shape = [(size,) for size in workload.data_sizes]
    else:
        repeats = workload.trials or batch_count(workload.dataset_samples, workload.batch_size) * workload.epochs
        per_shape = [collective_bytes(scenario, gpus, source)]
    shapes = tuple(Trial(i * repeats, tuple(Call(op, everyone, nbytes) for nbytes in sizes))
                   for i, sizes in enumerate(per_shape))
    return WorkloadPlan(op, gpus, Trials(shapes, repeats))


def plan_jobs(scenario: Scenario, source: str) -> tuple[WorkloadPlan, ...]:
    """Each of the scenario's jobs planned alone on its hosts' GPUs, over its own ranks."""
    return tuple(plan_workload(scenario.model_copy(update={"workload": job.workload}),
                               job.hosts * scenario.fabric.gpus_per_host, f"{source}: jobs.{index}")
                 for index, job in enumerate(scenario.jobs))
