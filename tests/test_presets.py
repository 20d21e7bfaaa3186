"""Presets: servers and NICs by name, overridable, against alpha-beta and the measured calibration points.

The ideal 8-GPU ring all-reduce inside one DGX must be 2(p-1) alpha + 2(p-1)/p n beta with alpha the
GPU-NVSwitch-GPU route latency and beta the preset's NVLink time per byte (reference/formulas.md).
"""

from fractions import Fraction

import pytest

from fabricsim.config import ScenarioError, validate_scenario
from fabricsim.config.presets import HOST_PRESETS, NIC_PRESETS, ROCE_HEADER_BYTES
from fabricsim.output.stats import busbw_GBps
from fabricsim.runner.simulation import Simulation
from fabricsim.units import parse_rate_bps
from tests.conftest import make_scenario

# Measured nccl-tests bus bandwidths (reference/formulas.md), GB/s
MEASURED_BUSBW_GBPS = {"dgx_a100": 230.0, "dgx_h100": 370.0}
MEASURED_NIC_GBPS = {"roce_400g": (46.0, 49.0), "roce_200g": (24.0, 24.0)}


def _dgx_all_reduce(preset: str, size_bytes: int) -> tuple[Simulation, int]:
    scenario = make_scenario(fabric={"preset": preset, "hosts": 1}, collective={"op": "all_reduce"},
                             workload={"rule": "data_sizes", "data_sizes": [size_bytes]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    return simulation, record.latency_ps


@pytest.mark.parametrize("preset", ["dgx_a100", "dgx_h100"])
@pytest.mark.parametrize("size_bytes", [8 * 2**10, 8 * 2**20, 2**30])
def test_ideal_8_gpu_ring_all_reduce_matches_alpha_beta(preset, size_bytes):
    simulation, latency_ps = _dgx_all_reduce(preset, size_bytes)
    p = simulation.plan.ranks
    nvlink_bps = parse_rate_bps(HOST_PRESETS[preset]["nvlink"]["bandwidth"])
    route = simulation.route(0, 1)
    assert p == 8 and route.bottleneck_bps == nvlink_bps
    assert [simulation.fabric.links[i].kind for i in route.links] == ["nvlink", "nvlink"]
    beta_ps = Fraction(8 * 10**12) / Fraction(nvlink_bps)
    expected_ps = 2 * (p - 1) * (route.latency_ps + Fraction(size_bytes, p) * beta_ps)
    assert abs(latency_ps - expected_ps) <= 2 * (p - 1)


@pytest.mark.parametrize("preset", ["dgx_a100", "dgx_h100"])
def test_dgx_busbw_against_measured(preset):
    """Large-message busbw of the preset vs nccl-tests (reported; within 5 %)."""
    size_bytes = 2**30
    _, latency_ps = _dgx_all_reduce(preset, size_bytes)
    busbw_gbps = size_bytes / (latency_ps / 1e12) * 2 * 7 / 8 / 1e9
    error = busbw_gbps / MEASURED_BUSBW_GBPS[preset] - 1
    print(f"{preset}: busbw {busbw_gbps:.1f} GB/s vs measured {MEASURED_BUSBW_GBPS[preset]} ({error:+.1%})")
    assert abs(error) < 0.05


@pytest.mark.parametrize("name", sorted(NIC_PRESETS))
def test_nic_presets_deliver_rocev2_payload_rate(name):
    nic = make_scenario(fabric={"nic": name}).fabric.nic
    assert ROCE_HEADER_BYTES == 82 and nic.mtu_bytes == 4096 and nic.header_bytes == 82
    assert nic.effective_bandwidth_bps == pytest.approx(nic.bandwidth_bps * 4096 / 4178, rel=1e-12)
    if name in MEASURED_NIC_GBPS:
        low, high = MEASURED_NIC_GBPS[name]
        gbytes = nic.effective_bandwidth_bps / 8e9
        print(f"{name}: {gbytes:.2f} GB/s vs measured {low}-{high} GB/s")
        assert low * 0.95 <= gbytes <= high * 1.05


def test_roce_links_carry_the_effective_rate():
    simulation = Simulation(make_scenario(fabric={"nic": "roce_400g"}))
    roce = [link for link in simulation.fabric.links if link.kind == "roce"]
    assert roce and all(link.bandwidth_bps == pytest.approx(400e9 * 4096 / 4178) for link in roce)


def test_default_nic_has_no_header_overhead():
    nic = make_scenario().fabric.nic
    assert nic.header_bytes == 0 and nic.effective_bandwidth_bps == nic.bandwidth_bps == 100e9


def test_any_preset_key_can_be_overridden():
    fabric = make_scenario(fabric={"preset": "dgx_h100", "hosts": 2, "gpus_per_host": 4, "pcie_switches": 2,
                                   "nvlink": {"bandwidth": "100GB/s"}, "nic": {"mtu": "1KiB"}}).fabric
    assert fabric.gpus_per_host == 4 and fabric.nvlink.bandwidth_bps == 800e9
    assert fabric.nvlink.latency_ps == 100_000  # the preset's, kept
    assert fabric.nic.preset == "roce_400g" and fabric.nic.mtu_bytes == 1024 and fabric.nic.bandwidth_bps == 400e9
    assert make_scenario(fabric={"preset": "dgx_a100", "nic": "roce_800g"}).fabric.nic.bandwidth_bps == 800e9


def test_a_preset_scenario_resolves_to_itself():
    scenario = make_scenario(fabric={"preset": "pcie_8gpu", "hosts": 2, "nic": {"bandwidth": "50Gbps"}})
    assert validate_scenario(scenario.resolved(), "<resolved>") == scenario


def test_an_unknown_preset_is_one_clear_line():
    with pytest.raises(ScenarioError) as error:
        make_scenario(fabric={"preset": "dgx_z100"})
    message = str(error.value)
    assert "\n" not in message and "fabric.preset" in message and "dgx_a100" in message
    with pytest.raises(ScenarioError, match=r"fabric.nic.preset: expected one of"):
        make_scenario(fabric={"nic": "roce_1t"})


# Published busbw (reference/formulas.md): (preset, hosts, GB/s, algorithm, what, source)
PUBLISHED = [
    ("dgx_a100", 1, 230.0, "ring", "ring", "NVIDIA/nccl-tests issues 149, 175"),
    ("dgx_h100", 1, 370.0, "ring", "ring", "NVIDIA/nccl-tests issue 212"),
    ("dgx_b300", 1, 695.0, "ring", "ring", "NVIDIA/nccl issue 2140"),
    ("dgx_a100", 2, 8 * 24.0, "ring", "ring, 24 GB/s per 200G NIC", "NVIDIA/nccl issue 412"),
    ("dgx_h100", 2, 8 * 47.5, "ring", "ring, 46-49 GB/s per 400G NIC", "NVIDIA/nccl-tests issues 267, 290"),
    ("dgx_h100", 1, 480.0, "nvls", "NVLS", "NVIDIA/nccl-tests issue 212; NVIDIA/nccl issue 2140"),
    ("dgx_b300", 1, 845.0, "nvls", "NVLS", "NVIDIA/nccl issue 2140"),
    ("gb200_nvl72", 1, 841.0, "nvls", "NVLS, 835-847", "coreweave/nccl-tests PR 43"),
]


def test_presets_against_published_figures():
    """Each preset's large all-reduce, by the algorithm the figure was measured with, against its
    published busbw: within 10 % (the table is printed with -s)."""
    lines = []
    for preset, hosts, published, algorithm, what, source in PUBLISHED:
        ranks = hosts * HOST_PRESETS[preset]["gpus_per_host"]
        scenario = make_scenario(fabric={"preset": preset, "hosts": hosts, "topology": "rail_optimized",
                                         "clos": {"spines": 2}},
                                 collective={"op": "all_reduce", "algorithm": algorithm},
                                 workload={"rule": "data_sizes", "data_sizes": ["1GiB"]})
        (record,) = Simulation(scenario).run()
        busbw = busbw_GBps("all_reduce", ranks, 2**30, record.latency_ps / 1e6)
        error = busbw / published - 1
        lines.append(f"{preset:<12} x{hosts} {what:<30} {published:7.1f} GB/s ({source}): {busbw:7.1f} {error:+7.1%}")
    print("\n" + "\n".join(lines))
    assert all(abs(float(line.split()[-1].rstrip("%"))) <= 10.0 for line in lines), "\n".join(lines)
