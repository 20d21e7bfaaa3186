"""Packet engine benchmark: packets per second, and the wall time of one trial of
``scenarios/tp4_ring_allgather_packet.yaml`` (about 19k packets; the target is under 1 s).

Figures only, never a pass/fail on time. Each case runs ``--repeat`` times (default 5) and prints the
best and the median. Usage: ``python benchmarks/bench_packet.py [--repeat N]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabricsim.config import load_scenario  # noqa: E402
from fabricsim.runner.simulation import Simulation  # noqa: E402

CASES = {
    "tp4_ring_allgather_packet (one trial)": ("tp4_ring_allgather_packet.yaml", ()),
    "incast_pfc 8->1 (one trial)": ("incast_pfc.yaml", ()),
}


def time_trial(simulation: Simulation) -> tuple[float, int, int]:
    """Wall seconds of the first trial, packets sent by queue pairs, packet transmissions on all links."""
    started = time.perf_counter()
    record = simulation.run_trial(simulation.plan.trials[0])
    wall_s = time.perf_counter() - started
    fabric = simulation.fabric
    from_gpu = {link.name for link in fabric.links if fabric.devices[link.src].kind == "gpu"}
    packets = sum(port.tx_packets for port in record.ports if port.link in from_gpu)  # queue pairs start at GPUs
    hops = sum(port.tx_packets for port in record.ports)
    return wall_s, packets, hops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, best / median of {args.repeat}")
    for label, (name, overrides) in CASES.items():
        simulation = Simulation(load_scenario(ROOT / "scenarios" / name, overrides))
        runs = [time_trial(simulation) for _ in range(args.repeat)]
        walls = [wall for wall, _, _ in runs]
        _, packets, hops = runs[0]
        best, median = min(walls), statistics.median(walls)
        print(f"{label}: {packets} packets, {hops} packet-hops; wall {best:.3f} s best, {median:.3f} s median; "
              f"{packets / best:,.0f} packets/s, {hops / best:,.0f} packet-hops/s")


if __name__ == "__main__":
    main()
