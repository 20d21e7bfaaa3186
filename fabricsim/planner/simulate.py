"""Simulated communication per TP degree: the plan's TP calls run on a one-host fabric.

Each TP degree > 1 gets a host of tp GPUs joined by the plan's link (NVLink through an NVSwitch, or
a PCIe switch for pcie links) at its one-way bandwidth, and one trial of the ``megatron`` rule
without compute: the trial's completion time is the step's communication time.
"""

from __future__ import annotations

from fabricsim.config import FabricSpec, validate_scenario
from fabricsim.planner.tp_cost import TpPlan
from fabricsim.runner.simulation import Simulation
from fabricsim.units import PS_PER_S


def simulated_comm_s(plan: TpPlan) -> tuple[float, ...]:
    return tuple(_simulate(plan, row.tp) if row.tp > 1 else 0.0 for row in plan.rows)


def _simulate(plan: TpPlan, tp: int) -> float:
    intra_host = "pcie" if plan.link.name.startswith("pcie") else "nvlink"
    latency_ps = FabricSpec.model_fields[intra_host].default.latency_ps  # the fabric's default hop
    raw = {
        "name": f"plan_tp{tp}",
        "fabric": {"hosts": 1, "gpus_per_host": tp, "intra_host": intra_host,
                   intra_host: {"bandwidth": f"{plan.link.one_way_Bps:.0f}B/s", "latency": f"{latency_ps}ps"}},
        "collective": {"algorithm": "ring"},
        "workload": {"rule": "megatron", "transformer": plan.model.model_dump(), "batch_size": plan.batch_size,
                     "seq_len": plan.seq_len, "trials": 1, "parallelism": {"tp": tp}},
    }
    simulation = Simulation(validate_scenario(raw, "<plan>"), "<plan>")
    (record,) = simulation.run()
    return record.latency_ps / PS_PER_S
