"""The calibrated DGX scenarios against the measured nccl-tests numbers of reference/formulas.md.

Prints each scenario's error against each measured number (run with -s to see the table): the
large-message bus bandwidth must be within 10 % of the measurement, and the small-message end must be
latency-bound at NCCL's own LL estimate for an 8-GPU ring (6.6 us + 14 x 0.6 us, tuning.cc 2.30).
"""

import pytest

from fabricsim.config import load_scenario
from fabricsim.output.sweep import run_sweep
from tests.conftest import SCENARIOS

MEASURED_BUSBW_GBPS = {  # ring all-reduce, 8 GPUs, one node, large messages
    "dgx_a100_allreduce": (230.0, "NVIDIA/nccl-tests issues 149, 175"),
    "dgx_h100_allreduce": (370.0, "NVIDIA/nccl-tests issue 212"),
}
NCCL_LL_RING_US = 6.6 + 2 * 7 * 0.6
LARGE_BYTES = (2**30, 8 * 2**30)


def sweep(name: str):
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    return run_sweep(scenario, name, ["ring"], [8, 2**16, *LARGE_BYTES], 1, "float32",
                     lambda simulation: simulation.run())


def test_calibrated_scenarios_match_the_measured_numbers():
    lines = [f"{'scenario':<20} {'measured':>45} {'size':>10} {'simulated':>10} {'error':>8}"]
    errors = []
    for name, (measured, source) in MEASURED_BUSBW_GBPS.items():
        rows = sweep(name)
        small, latency_row = rows[0], rows[1]
        for row in rows[2:]:
            error = row.busbw_GBps / measured - 1
            errors.append(error)
            lines.append(f"{name:<20} {f'{measured:.0f} GB/s busbw ({source})':>45} {row.size_bytes >> 30:>7} GiB "
                         f"{row.busbw_GBps:>10.1f} {error:>+8.1%}")
        error = small.time_us / NCCL_LL_RING_US - 1
        lines.append(f"{name:<20} {f'{NCCL_LL_RING_US:.1f} us (NCCL LL model)':>45} {'8 B':>10} "
                     f"{small.time_us:>8.2f}us {error:>+8.1%}")
        assert small.time_us == pytest.approx(NCCL_LL_RING_US, rel=0.01)  # latency-bound, not zero
        assert latency_row.time_us < 1.1 * small.time_us  # still latency-bound at 64 KiB
    print("\n" + "\n".join(lines))
    assert all(abs(error) <= 0.10 for error in errors)
    assert all(abs(error) <= 0.01 for error in errors[1::2])  # the fit is to the largest size


def test_calibrated_scenarios_are_8_gpus_on_one_nvswitch_with_explicit_nvlink():
    for name in MEASURED_BUSBW_GBPS:
        fabric = load_scenario(SCENARIOS / f"{name}.yaml").fabric
        assert (fabric.hosts, fabric.gpus_per_host, fabric.intra_host) == (1, 8, "nvlink")
