"""Relays: the devices that reduce in the fabric, which a schedule's ranks past its GPUs stand for.

An NVSwitch that reduces (NVLS) has an ``nvls`` device behind it per host; NVLS and NVLSTree take the
one of each host of the call, hosts in the order of their first rank. Switches that reduce in the
network (SHARP, ``clos.sharp``) are relays too; CollNet takes, for each local index (a slice), the
switch that the NICs of that index on every host share (None when they share none).
"""

from __future__ import annotations

from collections.abc import Sequence

from fabricsim.fabric.graph import Fabric


def relay_endpoints(fabric: Fabric, groups: Sequence[Sequence[int]], algorithm: str) -> tuple[int, ...]:
    """The relays of a schedule of ``algorithm`` over these hosts' GPU ranks, as indices into
    ``fabric.endpoints``; ValueError when the fabric has none that serve them."""
    names = relay_names(fabric, groups, algorithm)
    if names is None:
        raise ValueError(f"{algorithm} needs switches that reduce, shared by each rail's NICs")
    return tuple(len(fabric.gpus) + fabric.relays.index(name) for name in names)


def relay_names(fabric: Fabric, groups: Sequence[Sequence[int]], algorithm: str) -> list[str] | None:
    """The devices a schedule of ``algorithm`` over these hosts' GPU ranks uses as relays, in its order."""
    if algorithm.startswith("collnet"):
        return sharp_switches(fabric, groups)
    by_host = {fabric.devices[name].host: name for name in fabric.relays if fabric.devices[name].kind == "nvls"}
    hosts = [fabric.devices[fabric.gpus[group[0]]].host for group in groups]
    return [by_host[host] for host in hosts] if all(host in by_host for host in hosts) else None


def has_nvls(fabric: Fabric) -> bool:
    """Whether the fabric's NVSwitches reduce (an ``nvls`` relay behind them)."""
    return any(fabric.devices[name].kind == "nvls" for name in fabric.relays)


def sharp_serves_rails(fabric: Fabric) -> bool:
    """Whether the fabric's switches reduce (SHARP) and every rail's NICs share one of them."""
    by_host: dict[int | None, list[int]] = {}
    for rank, gpu in enumerate(fabric.gpus):
        by_host.setdefault(fabric.devices[gpu].host, []).append(rank)
    return bool(fabric.relays) and sharp_switches(fabric, list(by_host.values())) is not None


def sharp_switches(fabric: Fabric, groups: Sequence[Sequence[int]]) -> list[str] | None:
    """Per local index, the reducing switch every host's NIC of that index is cabled to, or None."""
    reducing = set(fabric.relays)
    switches = []
    for index in range(min(len(group) for group in groups)):
        shared = set.intersection(*({link.dst for link in fabric.out_links(fabric.nic_of.get(fabric.gpus[group[index]], ""))
                                     if link.dst in reducing} for group in groups))
        if len(shared) != 1:
            return None
        switches.append(shared.pop())
    return switches
