"""Presets: named servers and NICs as scenario keys, each value with its source.

A preset is a starting point: ``with_preset`` lays the scenario's own keys over it, so any key can
be overridden (``fabric: {preset: dgx_h100, nic: {mtu: 1KiB}}``). Values are YAML text, validated
by the schema like any scenario value.

RoCEv2 per-packet wire overhead (reference/formulas.md): Ethernet 14 + FCS 4 + preamble/IFG 20 +
IPv4 20 + UDP 8 + BTH 12 + ICRC 4 = 82 bytes around each MTU payload of 4096 bytes (the largest
RoCE MTU, the one NCCL uses), so a RoCE NIC delivers 4096 / 4178 = 98.0 % of its line rate.
That puts a 400G NIC at 49.0 GB/s, against 46-49 GB/s measured per ConnectX-7 NIC by nccl-tests
(NVIDIA/nccl-tests issues 267, 290), and a 200G NIC at 24.5 GB/s against ~24 GB/s (NVIDIA/nccl
issue 412).

NVLink bandwidths are NCCL's own effective per-link figures (src/graph/tuning.cc, 2.30: 20.0 GB/s
per NVLink on SM80, 20.6 on SM90) times the links per GPU (A100: 12 NVLink3, H100: 18 NVLink4;
NVIDIA A100 and H100 datasheets), i.e. 240 GB/s and 370.8 GB/s per direction rather than the
datasheet's 300 and 450: an 8-GPU ring all-reduce then reaches a busbw of 240 vs ~230 GB/s
measured on DGX A100 (+4 %, nccl-tests issues 149, 175) and 370.8 vs ~370 GB/s on DGX H100
(+0.2 %, nccl-tests issue 212).

NVSwitches of H100 and later reduce and multicast in the switch (NVLS, ``nvswitch.nvls_bandwidth``,
per GPU port). NCCL's NVLS all-reduce moves about one buffer each way through each GPU's port
(collectives/nvls.py), so its busbw tends to 2 (p - 1) / p times that rate. NVLS is limited by the
GPU's multimem loads and stores rather than by the links (NCCL's tuner scales it by 0.85 on Hopper,
0.74 on Blackwell), so the rate is fitted to the published figures: 274 GB/s on NVLink4 (8x H100,
~480 GB/s busbw, nccl-tests issue 212, NCCL issue 2140), 453 GB/s on NVLink5 (one figure for 8x
B300, 845 GB/s, NCCL issue 2140, and 72 GPUs of a GB200 NVL72, 835-847 GB/s, coreweave/nccl-tests
PR 43: their errors are reported by tests/test_presets.py).
"""

from __future__ import annotations

from typing import Any

ROCE_HEADER_BYTES = 14 + 4 + 20 + 20 + 8 + 12 + 4  # 82, RoCEv2 over IPv4 (formulas.md)
ROCE_MTU_BYTES = 4096

NIC_PRESETS: dict[str, dict[str, Any]] = {
    # ConnectX-4/5 100GbE (NVIDIA ConnectX-5 product brief)
    "roce_100g": {"bandwidth": "100Gbps", "mtu": ROCE_MTU_BYTES, "header": ROCE_HEADER_BYTES, "latency": "1us"},
    # ConnectX-6 200Gb/s HDR/200GbE, the 8 compute NICs of a DGX A100 (DGX A100 User Guide)
    "roce_200g": {"bandwidth": "200Gbps", "mtu": ROCE_MTU_BYTES, "header": ROCE_HEADER_BYTES, "latency": "1us"},
    # ConnectX-7 400Gb/s NDR/400GbE, the 8 compute NICs of a DGX H100 (DGX H100 User Guide)
    "roce_400g": {"bandwidth": "400Gbps", "mtu": ROCE_MTU_BYTES, "header": ROCE_HEADER_BYTES, "latency": "1us"},
    # ConnectX-8 SuperNIC 800Gb/s (NVIDIA ConnectX-8 product brief)
    "roce_800g": {"bandwidth": "800Gbps", "mtu": ROCE_MTU_BYTES, "header": ROCE_HEADER_BYTES, "latency": "1us"},
}

HOST_PRESETS: dict[str, dict[str, Any]] = {
    # NVIDIA DGX A100 (DGX A100 User Guide, system architecture): 8x A100 SXM4 on six NVSwitches
    # (one NVSwitch hub here), NVLink3 (240 GB/s effective, see above); four PCIe Gen4 switches, each
    # with two GPUs and two of the eight ConnectX-6 NICs (GPUDirect RDMA stays under one switch).
    # PCIe Gen4 x16: 32 GB/s per direction raw (PCI-SIG).
    "dgx_a100": {
        "gpus_per_host": 8, "intra_host": "nvlink", "pcie_switches": 4, "architecture": "ampere",
        "nvlink": {"bandwidth": "240GB/s", "latency": "100ns"}, "nvswitch": {"latency": "100ns"},
        "pcie": {"bandwidth": "32GB/s", "latency": "250ns"}, "nic": {"preset": "roce_200g"},
    },
    # NVIDIA DGX H100 (DGX H100 User Guide): 8x H100 SXM5 on four NVSwitches (one hub here), NVLink4
    # (370.8 GB/s effective); PCIe Gen5 x16 64 GB/s per direction (PCI-SIG) through four PCIe
    # switches, two GPUs and two of the eight ConnectX-7 400G NICs on each.
    "dgx_h100": {
        "gpus_per_host": 8, "intra_host": "nvlink", "pcie_switches": 4, "architecture": "hopper",
        "nvlink": {"bandwidth": "370.8GB/s", "latency": "100ns"},
        "nvswitch": {"latency": "100ns", "nvls_bandwidth": "274GB/s"},
        "pcie": {"bandwidth": "64GB/s", "latency": "250ns"}, "nic": {"preset": "roce_400g"},
    },
    # NVIDIA DGX B200 (DGX B200 datasheet): 8x B200 on NVLink5 (1.8 TB/s per GPU both ways; NCCL's
    # model: 18 links x 40.1 GB/s = 721.8 GB/s per direction, tuning.cc SM100), eight ConnectX-7
    # 400G NICs behind PCIe Gen5 switches (64 GB/s per direction).
    "dgx_b200": {
        "gpus_per_host": 8, "intra_host": "nvlink", "pcie_switches": 4, "architecture": "blackwell",
        "nvlink": {"bandwidth": "721.8GB/s", "latency": "100ns"},
        "nvswitch": {"latency": "100ns", "nvls_bandwidth": "453GB/s"},
        "pcie": {"bandwidth": "64GB/s", "latency": "250ns"}, "nic": {"preset": "roce_400g"},
    },
    # NVIDIA DGX B300 (DGX B300 datasheet): 8x B300 on NVLink5 (as B200), eight ConnectX-8 800G
    # SuperNICs on PCIe Gen6 x16 (128 GB/s per direction, PCI-SIG).
    "dgx_b300": {
        "gpus_per_host": 8, "intra_host": "nvlink", "pcie_switches": 4, "architecture": "blackwell",
        "nvlink": {"bandwidth": "721.8GB/s", "latency": "100ns"},
        "nvswitch": {"latency": "100ns", "nvls_bandwidth": "453GB/s"},
        "pcie": {"bandwidth": "128GB/s", "latency": "250ns"}, "nic": {"preset": "roce_800g"},
    },
    # NVIDIA GB200 NVL72 (GB200 NVL72 datasheet): one NVLink5 domain of 72 B200 GPUs through the
    # rack's NVSwitch trays (one hub here, 721.8 GB/s per GPU as above), as one "host" of 72 GPUs;
    # a ConnectX-7 400G NIC per GPU on PCIe Gen5 (64 GB/s).
    "gb200_nvl72": {
        "gpus_per_host": 72, "intra_host": "nvlink", "pcie_switches": 0, "architecture": "blackwell",
        "nvlink": {"bandwidth": "721.8GB/s", "latency": "100ns"},
        "nvswitch": {"latency": "100ns", "nvls_bandwidth": "453GB/s"},
        "pcie": {"bandwidth": "64GB/s", "latency": "250ns"}, "nic": {"preset": "roce_400g"},
    },
    # A PCIe-only 8-GPU server (e.g. 8x L40S or A100 PCIe without NVLink bridges, dual-socket with
    # two PCIe Gen4 switches of four GPUs and their NICs each): GPUs talk only over PCIe, across
    # switches through the host's PCIe root. NCCL models PCIe Gen3 x16 at 12 GB/s; Gen4 x16 raw is
    # 32 GB/s per direction (PCI-SIG). Four 100G NICs would be typical; one per GPU keeps the model's
    # GPU-NIC pairing.
    "pcie_8gpu": {
        "gpus_per_host": 8, "intra_host": "pcie", "pcie_switches": 2, "architecture": "ampere",
        "pcie": {"bandwidth": "32GB/s", "latency": "250ns"}, "nic": {"preset": "roce_100g"},
    },
}


def with_preset(data: Any, presets: dict[str, dict[str, Any]]) -> Any:
    """The keys of ``data`` laid over its named preset; anything else is returned unchanged."""
    if not isinstance(data, dict) or data.get("preset") not in presets:
        return data
    return merged(presets[data["preset"]], data)


def merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """The keys of ``over`` laid over ``base``, mapping by mapping."""
    result = dict(base)
    for key, value in over.items():
        result[key] = (merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict)
                       else value)
    return result
