"""The fabric graph: devices (GPU, NIC, switches) joined by directed links.

A link has a kind ("nvlink", "pcie", "roce"), a bandwidth and a propagation latency. A device that
forwards traffic (a NIC, a switch) adds its own ``latency_ps`` each time a path crosses it. Links
are numbered densely so the engine can keep per-link state in flat lists.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

Host = TypeVar("Host", bound=Hashable)


def ranks_by_host(hosts: Iterable[Host]) -> dict[Host, list[int]]:
    """Each host's ranks (positions in ``hosts``, the host of each rank) in order, hosts in the order of
    their first rank."""
    by_host: dict[Host, list[int]] = {}
    for rank, host in enumerate(hosts):
        by_host.setdefault(host, []).append(rank)
    return by_host


@dataclass(frozen=True, slots=True)
class Device:
    name: str
    kind: str  # "gpu", "nic", "switch", "nvswitch", "pcie_switch", "nvls" (an NVSwitch's reduction engine)
    host: int | None = None
    latency_ps: int = 0


@dataclass(frozen=True, slots=True)
class Link:
    index: int
    src: str
    dst: str
    kind: str
    bandwidth_bps: float
    latency_ps: int

    @property
    def name(self) -> str:
        return f"{self.src}->{self.dst}"


@dataclass
class Fabric:
    """Devices by name, links by index, and which GPU each rank of the cluster is."""

    devices: dict[str, Device] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    gpus: list[str] = field(default_factory=list)
    relays: list[str] = field(default_factory=list)  # devices that reduce: NVLS engines, SHARP switches
    nic_of: dict[str, str] = field(default_factory=dict)  # each GPU's own NIC (GPUDirect RDMA pairing)
    # NCCL's path choice between hosts (fabric/routing.py), read from the graph (fabric/nic_paths.py):
    # each GPU's nearest NICs (its own first), each host's NIC on each rail and each NIC's rail, and the
    # policy: "" least latency, "nearest" (own NIC) or "rail" (the destination's rail: near, or PXN)
    near_nics: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nic_at: dict[tuple[int, int], str] = field(default_factory=dict)
    nic_rail: dict[str, int] = field(default_factory=dict)
    nic_policy: str = ""
    warnings: list[str] = field(default_factory=list)  # one line each, for the run's summary
    description: str = ""
    _out: dict[str, list[Link]] = field(default_factory=dict)

    def add_device(self, device: Device) -> None:
        self.devices[device.name] = device
        self._out.setdefault(device.name, [])
        if device.kind == "gpu":
            self.gpus.append(device.name)
        if device.kind == "nvls":
            self.relays.append(device.name)

    def host_ranks(self) -> dict[int | None, list[int]]:
        """Each host's GPUs, as ranks (indices into ``gpus``), hosts in the order of their first GPU."""
        return ranks_by_host(self.devices[gpu].host for gpu in self.gpus)

    @property
    def endpoints(self) -> list[str]:
        """What a schedule's ranks name: the GPUs, then the relays (a schedule's ranks past its GPUs)."""
        return self.gpus + self.relays

    def connect(self, a: str, b: str, kind: str, bandwidth_bps: float, latency_ps: int) -> None:
        """A full-duplex cable: one directed link each way, each with the full bandwidth."""
        for src, dst in ((a, b), (b, a)):
            link = Link(len(self.links), src, dst, kind, bandwidth_bps, latency_ps)
            self.links.append(link)
            self._out[src].append(link)

    def out_links(self, device: str) -> list[Link]:
        return self._out[device]

    def link_named(self, name: str) -> Link:
        """The link called ``src->dst``; KeyError if there is none."""
        src, _, dst = name.partition("->")
        return self.link_between(src, dst)

    def link_between(self, src: str, dst: str) -> Link:
        """The directed link from ``src`` to ``dst``; KeyError if there is none."""
        for link in self._out.get(src, ()):
            if link.dst == dst:
                return link
        raise KeyError(f"{src}->{dst}")
