"""Relays: the devices that reduce in the fabric, which a schedule's ranks past its GPUs stand for.

An NVSwitch that reduces (NVLS) has an ``nvls`` device behind it per host; NVLS and NVLSTree take the
one of each host of the call, hosts in the order of their first rank (NVLS across hosts then SHARP's
switches, as CollNet). Switches that reduce in the network (SHARP, ``clos.sharp``) are relays too;
CollNet takes, for each local index (a slice), its SHARP aggregation tree: the switch that the NICs
of that index on every host share, or, where they sit on several leaves, the reducing switch of each
leaf (hosts grouped by the switches their NICs are cabled to: ``host_leaves``) and a root above them
all, a reducing switch cabled to every one of those leaves (slice j takes the j-th of them,
cyclically, so the slices' trees spread over the spines). None when there is no such tree.
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricsim.fabric.graph import Fabric


def relay_endpoints(fabric: Fabric, groups: Sequence[Sequence[int]], algorithm: str) -> tuple[int, ...]:
    """The relays of a schedule of ``algorithm`` over these hosts' GPU ranks, as indices into
    ``fabric.endpoints``; ValueError when the fabric has none that serve them."""
    names = relay_names(fabric, groups, algorithm)
    if names is None:
        raise ValueError(f"{algorithm} needs switches that reduce, above each rail's NICs")
    return tuple(len(fabric.gpus) + fabric.relays.index(name) for name in names)


def relay_names(fabric: Fabric, groups: Sequence[Sequence[int]], algorithm: str) -> list[str] | None:
    """The devices a schedule of ``algorithm`` over these hosts' GPU ranks uses as relays, in its order."""
    if algorithm.startswith("collnet"):
        return sharp_switches(fabric, groups)
    by_host = {fabric.devices[name].host: name for name in fabric.relays if fabric.devices[name].kind == "nvls"}
    hosts = [fabric.devices[fabric.gpus[group[0]]].host for group in groups]
    if not all(host in by_host for host in hosts):
        return None
    if algorithm == "nvls" and len(groups) > 1:  # across hosts, with SHARP
        switches = sharp_switches(fabric, groups)
        return None if switches is None else [by_host[host] for host in hosts] + switches
    return [by_host[host] for host in hosts]


def has_nvls(fabric: Fabric) -> bool:
    """Whether the fabric's NVSwitches reduce (an ``nvls`` relay behind them)."""
    return any(fabric.devices[name].kind == "nvls" for name in fabric.relays)


def sharp_serves_rails(fabric: Fabric) -> bool:
    """Whether the fabric's switches reduce (SHARP) and every rail's NICs reach one aggregation tree."""
    return bool(fabric.relays) and sharp_switches(fabric, list(fabric.host_ranks().values())) is not None


def host_leaves(fabric: Fabric) -> dict[int | None, int]:
    """Each host's leaf in SHARP's aggregation trees: hosts whose NICs (in local order) are cabled to
    the same reducing switches share one, numbered in host order."""
    keys: dict[tuple[str | None, ...], int] = {}
    return {host: keys.setdefault(tuple(_nic_switch(fabric, fabric.gpus[rank]) for rank in ranks), len(keys))
            for host, ranks in fabric.host_ranks().items()}


def sharp_switches(fabric: Fabric, groups: Sequence[Sequence[int]]) -> list[str] | None:
    """Per local index, its aggregation tree's reducing switches in the schedule's relay order
    (``fabricsim.collectives.sharp``): the one every host's NIC of that index is cabled to, or each
    leaf's (leaves of ``host_leaves``, in the order of their first host) then the root; None where
    there is no tree."""
    leaf_of = host_leaves(fabric)
    by_leaf: dict[int, list[Sequence[int]]] = {}
    for group in groups:
        by_leaf.setdefault(leaf_of[fabric.devices[fabric.gpus[group[0]]].host], []).append(group)
    reducing, switches = set(fabric.relays), []
    for index in range(min(len(group) for group in groups)):
        firsts = []
        for members in by_leaf.values():
            shared = {_nic_switch(fabric, fabric.gpus[group[index]]) for group in members}
            if len(shared) != 1 or None in shared:
                return None
            firsts.append(shared.pop())
        if len(firsts) == 1:
            switches += firsts
            continue
        roots = sorted(set.intersection(*({link.dst for link in fabric.out_links(switch) if link.dst in reducing}
                                          for switch in firsts)))
        if not roots:
            return None
        switches += firsts + [roots[index % len(roots)]]
    return switches


def _nic_switch(fabric: Fabric, gpu: str) -> str | None:
    """The reducing switch the GPU's NIC is cabled to (None if not exactly one)."""
    nic = fabric.nic_of.get(gpu)
    switches = {link.dst for link in fabric.out_links(nic) if link.dst in fabric.relays} if nic else set()
    return switches.pop() if len(switches) == 1 else None
