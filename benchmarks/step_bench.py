"""Whole-job training steps: print, per scenario of ``benchmarks/steps/``, the wall time to build the
simulation, lower the step to one DAG and run one trial (and the CPU time of the three), its transfers
and transfers per second, and the step's time, ideal time, exposed communication, pipeline bubble and
what held its critical path.

Figures only, never a pass/fail on time. Usage: ``python benchmarks/step_bench.py [NAME ...]`` (default:
the 64-GPU steps; name a 1024-GPU one to run it, which takes minutes and GiBs).
"""

from __future__ import annotations

import resource
import sys
import time
from pathlib import Path

STEPS = Path(__file__).resolve().parent / "steps"
DEFAULT = ("llama2_7b_64gpu_leaf_spine", "llama2_7b_64gpu_rail_optimized")


def bench(name: str) -> str:
    from fabricsim.config import load_scenario
    from fabricsim.output.results import communication_us
    from fabricsim.runner.simulation import Simulation
    from fabricsim.runner.work_limits import check_work

    path = STEPS / f"{name}.yaml"
    started, started_cpu = time.perf_counter(), time.process_time()
    scenario = load_scenario(path)
    check_work(scenario, path, allow_large=True)
    simulation = Simulation(scenario, str(path))
    built = time.perf_counter()
    trial = simulation.plan.trials[0]
    step = simulation.step_schedule(trial)
    lowered = time.perf_counter()
    record = simulation.run_trial(trial)
    ran, ran_cpu = time.perf_counter(), time.process_time()
    transfers = int((~step.marks).sum())
    compute = simulation.step_compute(trial)
    path = record.critical_path
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (f"{name}: {len(trial.calls)} calls of rank 0, {transfers} transfers, {step.marks.sum()} marks; "
            f"wall {ran - started:.2f} s (build {built - started:.2f}, lower {lowered - built:.2f}, "
            f"run {ran - lowered:.2f}), CPU {ran_cpu - started_cpu:.2f} s; "
            f"{transfers / (ran - started):,.0f} transfers/s; peak {peak_mib:.0f} MiB; "
            f"step {record.latency_ps / 1e6:,.1f} us, ideal {record.breakdown.ideal_ps / 1e6:,.1f} us, "
            f"contention {record.breakdown.contention_ps / 1e6:,.1f} us, "
            f"exposed communication {communication_us(record.latency_ps, compute.critical_ps):,.1f} us, "
            f"bubble {compute.bubble_ps / 1e6:,.1f} us; critical path: compute {path.compute_ps / 1e6:,.1f} us, "
            + ", ".join(f"{kind} {kind_ps / 1e6:,.1f} us" for kind, kind_ps in path.kinds_ps)
            + f"; most on it {path.group} ({path.group_ps / 1e6:,.1f} us), most loaded link {path.link} "
            f"({100 * path.link_utilization:.1f}%)")


if __name__ == "__main__":
    for case in sys.argv[1:] or DEFAULT:
        print(bench(case), flush=True)
