"""Topology builders: a FabricSpec in, a Fabric graph out.

Every host holds ``gpus_per_host`` GPUs, each with its own NIC on a PCIe link (GPUDirect RDMA).
Inside a host, GPUs talk through an NVSwitch over NVLink, or through the host's PCIe switch.
Between hosts, NICs are cabled to one switch (``single_switch``) or to their ring neighbours'
NICs (``direct_ring``, NIC i of host h to NIC i of hosts h-1 and h+1). Ranks are numbered host
first: rank = host * gpus_per_host + local GPU index.
"""

from __future__ import annotations

from fabricsim.config import FabricSpec
from fabricsim.fabric.graph import Device, Fabric
from fabricsim.units import format_rate


def build_fabric(spec: FabricSpec) -> Fabric:
    fabric = Fabric()
    for host in range(spec.hosts):
        _build_host(fabric, spec, host)
    if spec.topology == "single_switch":
        _cable_single_switch(fabric, spec)
    else:
        _cable_direct_ring(fabric, spec)
    fabric.description = (
        f"{spec.hosts} host(s) x {spec.gpus_per_host} GPU, {format_rate(spec.nic.bandwidth_bps)} RoCE, "
        f"{spec.topology.replace('_', ' ')}"
        + (f", {spec.intra_host} inside hosts" if spec.gpus_per_host > 1 else "")
    )
    return fabric


def gpu_name(host: int, local: int) -> str:
    return f"h{host}.gpu{local}"


def nic_name(host: int, local: int) -> str:
    return f"h{host}.nic{local}"


def _build_host(fabric: Fabric, spec: FabricSpec, host: int) -> None:
    for local in range(spec.gpus_per_host):
        fabric.add_device(Device(gpu_name(host, local), "gpu", host))
        fabric.add_device(Device(nic_name(host, local), "nic", host, spec.nic.latency_ps))
        fabric.connect(gpu_name(host, local), nic_name(host, local), "pcie",
                       spec.pcie.bandwidth_bps, spec.pcie.latency_ps)
    if spec.gpus_per_host == 1:
        return
    if spec.intra_host == "nvlink":
        hub, kind, link = Device(f"h{host}.nvswitch", "nvswitch", host, spec.nvswitch.latency_ps), "nvlink", spec.nvlink
    else:
        hub, kind, link = Device(f"h{host}.pcie_switch", "pcie_switch", host, spec.switch.latency_ps), "pcie", spec.pcie
    fabric.add_device(hub)
    for local in range(spec.gpus_per_host):
        fabric.connect(gpu_name(host, local), hub.name, kind, link.bandwidth_bps, link.latency_ps)


def _cable_single_switch(fabric: Fabric, spec: FabricSpec) -> None:
    fabric.add_device(Device("switch", "switch", None, spec.switch.latency_ps))
    for host in range(spec.hosts):
        for local in range(spec.gpus_per_host):
            fabric.connect(nic_name(host, local), "switch", "roce",
                           spec.nic.bandwidth_bps, spec.cable_latency_ps)


def _cable_direct_ring(fabric: Fabric, spec: FabricSpec) -> None:
    neighbours = 1 if spec.hosts == 2 else 2
    for host in range(spec.hosts):
        nxt = (host + 1) % spec.hosts
        if neighbours == 1 and host == 1:
            break
        for local in range(spec.gpus_per_host):
            fabric.connect(nic_name(host, local), nic_name(nxt, local), "roce",
                           spec.nic.bandwidth_bps, spec.cable_latency_ps)
