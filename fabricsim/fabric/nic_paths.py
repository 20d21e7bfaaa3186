"""What NCCL's path choice needs to know of a fabric, read from its graph (``fabricsim.fabric.routing``).

- Each NIC's rail: the rank order, within its host, of the GPU it belongs to (``nic_rail``,
  ``nic_at``).
- Each GPU's nearest NICs: its host's NICs the fewest PCIe hops away, crossing no other GPU or NIC
  (its own first): the NICs under its PCIe switch, where GPUDirect RDMA stays (``near_nics``).
- The policy: "rail" when the NICs of one rail share a fabric switch and the NICs of one host sit on
  different ones (rail-optimized), "nearest" when NICs hang off fabric switches otherwise, "" (least
  latency) when NICs are cabled to each other (a direct ring) or the graph says too little.
Built topologies and InfraGraph fabrics get the same reading, so a fabric routes alike both ways.
"""

from __future__ import annotations

from collections import Counter, deque

from fabricsim.fabric.graph import Fabric


def derive_nic_paths(fabric: Fabric) -> None:
    """Fill ``nic_rail``, ``nic_at``, ``near_nics`` and ``nic_policy`` of ``fabric`` from its graph."""
    position: Counter[int | None] = Counter()
    for gpu in fabric.gpus:
        host = fabric.devices[gpu].host
        nic = fabric.nic_of.get(gpu)
        if nic is not None:
            fabric.nic_rail[nic] = position[host]
            fabric.nic_at[(host, position[host])] = nic
        position[host] += 1
    for gpu in fabric.gpus:
        if gpu in fabric.nic_of:
            fabric.near_nics[gpu] = _nearest_nics(fabric, gpu)
    fabric.nic_policy = _policy(fabric)


def _nearest_nics(fabric: Fabric, gpu: str) -> tuple[str, ...]:
    """The host's NICs at the least PCIe hop count from ``gpu`` (breadth first, not through GPUs or
    NICs), its own NIC first."""
    depth, frontier, found, best = {gpu: 0}, deque([gpu]), [], None
    while frontier:
        node = frontier.popleft()
        if best is not None and depth[node] >= best:
            break
        for link in fabric.out_links(node):
            device = fabric.devices[link.dst]
            if link.kind != "pcie" or link.dst in depth or device.kind == "gpu":
                continue
            depth[link.dst] = depth[node] + 1
            if device.kind == "nic":
                if device.host == fabric.devices[gpu].host:
                    found.append(link.dst)
                    best = depth[link.dst]
            else:
                frontier.append(link.dst)
    own = fabric.nic_of[gpu]
    return (own, *sorted(nic for nic in set(found) if nic != own))


def _policy(fabric: Fabric) -> str:
    switches_of = {nic: {link.dst for link in fabric.out_links(nic)
                         if fabric.devices[link.dst].kind == "switch" and fabric.devices[link.dst].host is None}
                   for nic in fabric.nic_rail}
    if not switches_of or not all(switches_of.values()):
        return ""
    rails: dict[int, set[str]] = {}
    hosts: dict[int | None, list[frozenset[str]]] = {}
    for (host, rail), nic in fabric.nic_at.items():
        rails.setdefault(rail, set()).update(switches_of[nic])
        hosts.setdefault(host, []).append(frozenset(switches_of[nic]))
    one_switch_per_rail = all(len(switches) == 1 for switches in rails.values())
    apart_in_hosts = all(len(set(per_host)) == len(per_host) for per_host in hosts.values())
    return "rail" if one_switch_per_rail and apart_in_hosts else "nearest"
