"""Topology builders: a FabricSpec in, a Fabric graph out.

Every host holds ``gpus_per_host`` GPUs, each paired with its own NIC for GPUDirect RDMA: cabled
straight to it over PCIe (``pcie_switches: 0``), or behind the same switch of a PCIe tree
(``pcie_switches: k``: k switches under the host's PCIe root, GPUs and NICs spread evenly, so
GPU -> PCIe switch -> NIC). Inside a host, GPUs talk over NVLink through an NVSwitch, or over PCIe:
through one PCIe switch, or across the tree (under one switch, or up through the root).

Between hosts, every RoCE cable carries the NIC's effective rate (line rate less per-packet
headers) and ``cable_latency``:
- ``single_switch``: every NIC on one switch;
- ``direct_ring``: NIC i of host h cabled to NIC i of hosts h-1 and h+1;
- ``leaf_spine``: a 2-tier Clos, ``clos.hosts_per_leaf`` hosts per leaf and every leaf cabled to
  every spine; a leaf's uplinks together carry its downlink capacity / ``oversubscription``;
- ``rail_optimized``: NIC i of every host on rail switch i, the rails joined by the spines with
  (hosts x NIC rate) / ``oversubscription`` of uplink per rail.
Between hosts, routes follow NCCL's path choice (``fabricsim.fabric.routing``): a GPU sends through its
own NIC; on a rail-optimized fabric through the NIC on the destination's rail, one under its PCIe
switch or else reached over NVLink through the GPU beside it (PXN); on a direct ring, routes are
least-latency.

``fabric.infragraph`` (an InfraGraph document) replaces all of this: fabric/infragraph.py builds it.

Ranks: ``placement: host_first`` numbers all GPUs of host 0, then host 1, ...; ``rail_first``
numbers GPU 0 of every host, then GPU 1 of every host, ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fabricsim.fabric.graph import Device, Fabric
from fabricsim.fabric.nic_paths import derive_nic_paths
from fabricsim.fabric.infragraph import fabric_from_infragraph
from fabricsim.units import format_rate

if TYPE_CHECKING:  # config loads the presets of this package while it is being defined
    from fabricsim.config import FabricSpec


def build_fabric(spec: FabricSpec) -> Fabric:
    if spec.infragraph is not None:
        return fabric_from_infragraph(spec)
    fabric = Fabric()
    for host in range(spec.hosts):
        _build_host(fabric, spec, host)
    _CABLING[spec.topology](fabric, spec)
    if spec.hosts > 1 and spec.nic.effective_bandwidth_bps > spec.pcie.bandwidth_bps:
        fabric.warnings.append(
            f"the {format_rate(spec.nic.bandwidth_bps)} NICs ({format_rate(spec.nic.effective_bandwidth_bps)} "
            f"of payload) are faster than their host's PCIe path ({format_rate(spec.pcie.bandwidth_bps)}): "
            "they run at PCIe speed (set fabric.pcie.bandwidth to the NIC's PCIe generation)")
    if spec.placement == "rail_first":
        fabric.gpus.sort(key=lambda name: (int(name.rpartition("gpu")[2]), fabric.devices[name].host))
    derive_nic_paths(fabric)
    fabric.description = (
        (f"{spec.preset} x {spec.hosts}, " if spec.preset else f"{spec.hosts} host(s) x {spec.gpus_per_host} GPU, ")
        + f"{format_rate(spec.nic.bandwidth_bps)} RoCE, {spec.topology.replace('_', ' ')}"
        + (f" ({spec.clos.spines} spines, {spec.clos.oversubscription:g}:1, ECMP {spec.clos.ecmp})"
           if spec.topology in ("leaf_spine", "rail_optimized") else "")
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
        fabric.nic_of[gpu_name(host, local)] = nic_name(host, local)
    if spec.pcie_switches:
        _build_pcie_tree(fabric, spec, host)
    else:
        for local in range(spec.gpus_per_host):
            _pcie(fabric, spec, gpu_name(host, local), nic_name(host, local))
    if spec.gpus_per_host == 1 or (spec.intra_host == "pcie" and spec.pcie_switches):
        return
    if spec.intra_host == "nvlink":
        hub, kind, link = Device(f"h{host}.nvswitch", "nvswitch", host, spec.nvswitch.latency_ps), "nvlink", spec.nvlink
    else:
        hub, kind, link = Device(f"h{host}.pcie_switch", "pcie_switch", host, spec.switch.latency_ps), "pcie", spec.pcie
    fabric.add_device(hub)
    for local in range(spec.gpus_per_host):
        fabric.connect(gpu_name(host, local), hub.name, kind, link.bandwidth_bps, link.latency_ps)
    if spec.intra_host == "nvlink" and spec.nvswitch.nvls_bandwidth_bps:
        # the NVSwitch's reduction and multicast engine: every GPU's share at nvls_bandwidth at once
        fabric.add_device(Device(f"h{host}.nvls", "nvls", host, 0))
        fabric.connect(hub.name, f"h{host}.nvls", "nvls", spec.gpus_per_host * spec.nvswitch.nvls_bandwidth_bps, 0)


def _build_pcie_tree(fabric: Fabric, spec: FabricSpec, host: int) -> None:
    root = f"h{host}.pcie_root"
    fabric.add_device(Device(root, "pcie_root", host, spec.switch.latency_ps))
    per_switch = spec.gpus_per_host // spec.pcie_switches
    for index in range(spec.pcie_switches):
        switch = f"h{host}.pcie{index}"
        fabric.add_device(Device(switch, "pcie_switch", host, spec.switch.latency_ps))
        _pcie(fabric, spec, switch, root)
        for local in range(index * per_switch, (index + 1) * per_switch):
            _pcie(fabric, spec, gpu_name(host, local), switch)
            _pcie(fabric, spec, nic_name(host, local), switch)


def _pcie(fabric: Fabric, spec: FabricSpec, a: str, b: str) -> None:
    fabric.connect(a, b, "pcie", spec.pcie.bandwidth_bps, spec.pcie.latency_ps)


def _roce(fabric: Fabric, spec: FabricSpec, a: str, b: str, bandwidth_bps: float | None = None) -> None:
    fabric.connect(a, b, "roce", bandwidth_bps or spec.nic.effective_bandwidth_bps, spec.cable_latency_ps)


def _switch(fabric: Fabric, spec: FabricSpec, name: str) -> str:
    fabric.add_device(Device(name, "switch", None, spec.switch.latency_ps))
    if spec.clos.sharp:  # it reduces in the network: a relay (fabric/relays.py)
        fabric.relays.append(name)
    return name


def _cable_single_switch(fabric: Fabric, spec: FabricSpec) -> None:
    switch = _switch(fabric, spec, "switch")
    for host in range(spec.hosts):
        for local in range(spec.gpus_per_host):
            _roce(fabric, spec, nic_name(host, local), switch)


def _cable_direct_ring(fabric: Fabric, spec: FabricSpec) -> None:
    neighbours = 1 if spec.hosts == 2 else 2
    for host in range(spec.hosts):
        nxt = (host + 1) % spec.hosts
        if neighbours == 1 and host == 1:
            break
        for local in range(spec.gpus_per_host):
            _roce(fabric, spec, nic_name(host, local), nic_name(nxt, local))


def _cable_leaf_spine(fabric: Fabric, spec: FabricSpec) -> None:
    clos = spec.clos
    leaves = [_switch(fabric, spec, f"leaf{index}") for index in range(spec.hosts // clos.hosts_per_leaf)]
    for host in range(spec.hosts):
        for local in range(spec.gpus_per_host):
            _roce(fabric, spec, nic_name(host, local), leaves[host // clos.hosts_per_leaf])
    downlink_bps = clos.hosts_per_leaf * spec.gpus_per_host * spec.nic.effective_bandwidth_bps
    _cable_spines(fabric, spec, leaves, downlink_bps)


def _cable_rail_optimized(fabric: Fabric, spec: FabricSpec) -> None:
    rails = [_switch(fabric, spec, f"rail{local}") for local in range(spec.gpus_per_host)]
    for host in range(spec.hosts):
        for local, rail in enumerate(rails):
            _roce(fabric, spec, nic_name(host, local), rail)
    _cable_spines(fabric, spec, rails, spec.hosts * spec.nic.effective_bandwidth_bps)


def _cable_spines(fabric: Fabric, spec: FabricSpec, leaves: list[str], downlink_bps: float) -> None:
    """Every leaf to every spine, the uplinks sharing downlink / oversubscription equally."""
    uplink_bps = downlink_bps / spec.clos.oversubscription / spec.clos.spines
    spines = [_switch(fabric, spec, f"spine{index}") for index in range(spec.clos.spines)]
    for leaf in leaves:
        for spine in spines:
            _roce(fabric, spec, leaf, spine, uplink_bps)


_CABLING = {
    "single_switch": _cable_single_switch,
    "direct_ring": _cable_direct_ring,
    "leaf_spine": _cable_leaf_spine,
    "rail_optimized": _cable_rail_optimized,
}
