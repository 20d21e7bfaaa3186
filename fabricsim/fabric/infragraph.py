"""InfraGraph fabrics in and out (Keysight's infrastructure-as-a-graph, the ``infragraph`` package,
schema 3.1: ``pip install -e '.[infragraph]'``).

In: ``fabric: {infragraph: cluster.yaml}`` (YAML or JSON, an InfraGraph ``Infrastructure``:
devices with their components and internal edges, links, instances and the edges between them;
``infragraph_annotations: ranks.yaml``, an InfraGraph ``Annotation``, may give each xpu node a ``rank``).
The package expands the document into its graph (nodes ``instance.i.component.j``); each xpu is a GPU,
each nic a NIC, every other node a forwarding device of no latency of its own; each edge a cable
with its link's bandwidth (Gb/s or GB/s) and latency (ms, us, ns) both ways. A link's kind comes from
its name or description (naming NVLink or PCIe), else it is RoCE between devices and internal within one. What
InfraGraph leaves out comes from the scenario's keys: a link without a bandwidth (or given in GT/s)
or a latency takes the scenario's ``nvlink``, ``pcie`` or NIC (effective rate, ``cable_latency``)
value by its kind, an internal one is not limiting (UNLIMITED_BPS, no latency); ECMP mode, queue
pairs, buffers, PFC and the packet model stay scenario keys. Hosts are the device instances that hold
xpus (all with as many), ranks follow the ``rank`` annotations or else the graph's xpu order, and
each GPU's own NIC is the nic of its index in the same device instance.

Out: ``fabricsim export-fabric`` writes any fabric as an Infrastructure: one device ``host`` (its
GPUs as xpu, NICs as nic, NVSwitch and PCIe switches as switch components, its cables as one2one
edges), one instance per network switch group (``leaf``, ``spine``, ``rail``, ``switch``: a device
whose one switch component is the asic), the cables between them as instance edges, and the rank
order as an Annotation. InfraGraph has no device latency: each device's forwarding latency is split
in halves onto its cables, so that every path between GPUs (which forward nothing) keeps its latency
to the picosecond when device latencies are whole even picoseconds (every preset's are).
"""

from __future__ import annotations

import re
from typing import Any

from fabricsim.config import FabricSpec
from fabricsim.config.infragraph_document import InfraGraphError, graph_of
from fabricsim.fabric.graph import Device, Fabric
from fabricsim.fabric.nic_paths import derive_nic_paths
from fabricsim.units import PS_PER_UNIT

UNLIMITED_BPS = 1e16  # an internal link InfraGraph gives no bandwidth: not a bottleneck (10 Pb/s)
PS_PER = {unit: PS_PER_UNIT[unit] for unit in ("ms", "us", "ns")}  # InfraGraph's latency units
BPS_PER = {"gigabits_per_second": 1e9, "gigabytes_per_second": 8e9}
_LOCAL = re.compile(r"^(.*?)\.?(\d*)$")  # "gpu3" -> ("gpu", "3"), "xpu.3" -> ("xpu", "3")


def fabric_from_infragraph(spec: FabricSpec) -> Fabric:
    """The Fabric of ``spec.infragraph`` (validated: the shape check ran on load)."""
    document = spec.infragraph
    graph = graph_of(document)
    links = _link_table(document)
    hosts: dict[str, int] = {}
    for node, data in graph.nodes(data=True):
        if data.get("type") == "xpu":
            hosts.setdefault(data["composed_device"], len(hosts))
    fabric = Fabric()
    for node, data in graph.nodes(data=True):
        kind = {"xpu": "gpu", "nic": "nic"}.get(data.get("type"), "switch")
        fabric.add_device(Device(node, kind, hosts.get(data.get("composed_device"))))
    for a, b, data in graph.edges(data=True):
        inside = graph.nodes[a].get("composed_device") == graph.nodes[b].get("composed_device")
        device = graph.nodes[a].get("device") if inside else None
        kind, bandwidth_bps, latency_ps = _link_values(spec, links, device, data.get("link"), inside)
        fabric.connect(a, b, kind, bandwidth_bps, latency_ps)
    fabric.gpus = _ranked(fabric.gpus, spec.infragraph_annotations)
    nics = {}  # composed device -> its nic component's name
    for node, data in graph.nodes(data=True):
        if data.get("type") == "nic":
            nics.setdefault(data["composed_device"], node.split(".")[-2])
    for gpu in fabric.gpus:
        composed, index = graph.nodes[gpu]["composed_device"], gpu.rpartition(".")[2]
        nic = f"{gpu.rsplit('.', 2)[0]}.{nics.get(composed)}.{index}"
        if nic in fabric.devices and fabric.devices[nic].kind == "nic":
            fabric.nic_of[gpu] = nic
    derive_nic_paths(fabric)
    fabric.description = (f"InfraGraph {document.get('name', '')}: {len(hosts)} host(s) x "
                          f"{len(fabric.gpus) // max(1, len(hosts))} GPU, {len(fabric.links) // 2} cables")
    return fabric


def _link_table(document: dict[str, Any]) -> dict[tuple[str | None, str], dict]:
    """Each link by (device, or None for the infrastructure's, name)."""
    table = {(None, link["name"]): link for link in document.get("links") or []}
    for device in document.get("devices") or []:
        for link in device.get("links") or []:
            table[(device["name"], link["name"])] = link
    return table


def _link_values(spec: FabricSpec, links: dict, device: str | None, name: str | None,
                 inside: bool) -> tuple[str, float, int]:
    """(kind, bandwidth, latency) of one edge's link, the scenario's values filling what is missing."""
    link = links.get((device, name)) or links.get((None, name)) or {}
    physical = link.get("physical") or {}
    lowered = f"{name} {link.get('description', '')}".lower()
    kind = "nvlink" if "nvlink" in lowered else "pcie" if "pcie" in lowered else \
        "roce" if lowered.startswith("roce") or not inside else "internal"
    default_bps, default_ps = {
        "nvlink": (spec.nvlink.bandwidth_bps, spec.nvlink.latency_ps),
        "pcie": (spec.pcie.bandwidth_bps, spec.pcie.latency_ps),
        "roce": (spec.nic.effective_bandwidth_bps, spec.cable_latency_ps),
    }.get(kind, (UNLIMITED_BPS, 0))
    bandwidth, latency = physical.get("bandwidth") or {}, physical.get("latency") or {}
    bandwidth_bps = next((float(bandwidth[unit]) * factor for unit, factor in BPS_PER.items()
                          if bandwidth.get(unit) is not None), default_bps)
    latency_ps = next((round(float(latency[unit]) * factor) for unit, factor in PS_PER.items()
                       if latency.get(unit) is not None), default_ps)
    if not bandwidth_bps > 0 or latency_ps < 0:
        raise InfraGraphError(f"links.{name}: expected a positive bandwidth and a latency of at least 0")
    return kind, bandwidth_bps, latency_ps


def _ranked(gpus: list[str], annotations: dict[str, Any] | None) -> list[str]:
    """The GPUs in rank order: by their ``rank`` annotations when there are any."""
    ranks = {}
    for node in (annotations or {}).get("nodes") or []:
        for attribute in node.get("attributes") or []:
            if attribute.get("attribute") == "rank":
                ranks[node.get("name")] = int(attribute.get("value"))
    if not ranks:
        return gpus
    if sorted(ranks) != sorted(gpus) or sorted(ranks.values()) != list(range(len(gpus))):
        raise InfraGraphError(f"expected a rank 0..{len(gpus) - 1} for each xpu node, "
                              f"got ranks for {len(ranks)} nodes")
    return sorted(gpus, key=ranks.__getitem__)


# --- out -----------------------------------------------------------------------------------------

def _local_name(name: str) -> str:
    """A host device's name within its host: "h0.gpu1" -> "gpu1", InfraGraph's "server.0.gpu.1" -> "gpu.1"."""
    parts = name.split(".")
    return ".".join(parts[2:] if len(parts) >= 4 and parts[1].isdigit() else parts[1:])


def _split(name: str) -> tuple[str, int]:
    """A local device name as (component, index): "gpu3" -> ("gpu", 3), "nvswitch" -> ("nvswitch", 0)."""
    stem, index = _LOCAL.match(name).groups()
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "device", int(index or 0)


def infragraph_of(fabric: Fabric, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fabric as an InfraGraph Infrastructure, and its rank order as an Annotation."""
    endpoint, device_components, switch_groups = {}, {}, {}
    for device in fabric.devices.values():
        if device.host is not None:
            component = _split(_local_name(device.name))
            endpoint[device.name] = (("host", device.host), component)
            if device.host == 0:
                device_components.setdefault(component[0], [device.kind, 0])
                device_components[component[0]][1] = max(device_components[component[0]][1], component[1] + 1)
        else:
            group, index = _split(device.name)
            switch_groups[group] = max(switch_groups.get(group, 0), index + 1)
            endpoint[device.name] = ((group, index), ("asic", 0))
    host_links: dict[tuple, str] = {}
    infra_links: dict[tuple, str] = {}
    host_edges, infra_edges, template = [], [], None
    for link in fabric.links[::2]:  # connect() adds each cable as two links, one each way
        (instance_a, component_a), (instance_b, component_b) = endpoint[link.src], endpoint[link.dst]
        latency_ps = link.latency_ps + (fabric.devices[link.src].latency_ps + fabric.devices[link.dst].latency_ps) / 2
        key = (link.kind, link.bandwidth_bps, latency_ps)
        if instance_a == instance_b and instance_a[0] == "host":
            link_name = _named(host_links, key)
            cable = (component_a, component_b, link_name)
            if instance_a[1] == 0:
                host_edges.append(cable)
            elif cable not in (template := template or set(host_edges)):
                raise InfraGraphError(f"expected every host cabled as host 0, {link.name} is not")
            continue
        infra_edges.append({"ep1": _endpoint(instance_a, component_a), "ep2": _endpoint(instance_b, component_b),
                            "link": _named(infra_links, key), "scheme": "one2one"})
    devices = [{"name": "host", "description": "a fabricsim host", "components": [
        {"name": component, "count": count, "choice": {"gpu": "xpu", "nic": "nic"}.get(kind, "switch")}
        for component, (kind, count) in device_components.items()],
        "links": _links(host_links), "edges": [
            {"ep1": {"component": f"{a[0]}[{a[1]}]"}, "ep2": {"component": f"{b[0]}[{b[1]}]"}, "link": link_name,
             "scheme": "one2one"} for a, b, link_name in host_edges]}]
    devices += [{"name": group, "description": "a fabricsim network switch",
                 "components": [{"name": "asic", "count": 1, "choice": "switch"}], "links": [], "edges": []}
                for group in switch_groups]
    hosts = 1 + max((device.host for device in fabric.devices.values() if device.host is not None), default=0)
    infrastructure = {
        "name": re.sub(r"[^A-Za-z0-9_-]", "_", name), "description": fabric.description,
        "devices": devices, "links": _links(infra_links),
        "instances": [{"name": "host", "device": "host", "count": hosts}]
        + [{"name": group, "device": group, "count": count} for group, count in switch_groups.items()],
        "edges": infra_edges}
    annotation = {"nodes": [{"name": _node_name(endpoint[gpu]), "attributes": [{"attribute": "rank", "value": str(rank)}]}
                            for rank, gpu in enumerate(fabric.gpus)]}
    return infrastructure, annotation


def _named(names: dict[tuple, str], key: tuple) -> str:
    """A link name per distinct (kind, bandwidth, latency): the kind, then kind-2, kind-3, ..."""
    if key not in names:
        same_kind = sum(1 for other in names if other[0] == key[0])
        names[key] = key[0] if not same_kind else f"{key[0]}-{same_kind + 1}"
    return names[key]


def _links(names: dict[tuple, str]) -> list[dict[str, Any]]:
    return [{"name": link_name, "description": f"fabricsim {kind} link", "physical": {
        "bandwidth": {"choice": "gigabits_per_second", "gigabits_per_second": bandwidth_bps / 1e9},
        "latency": {"choice": "ns", "ns": latency_ps / 1e3}}}
        for (kind, bandwidth_bps, latency_ps), link_name in names.items()]


def _endpoint(instance: tuple[str, int], component: tuple[str, int]) -> dict[str, str]:
    return {"instance": f"{instance[0]}[{instance[1]}]", "component": f"{component[0]}[{component[1]}]"}


def _node_name(endpoint: tuple[tuple[str, int], tuple[str, int]]) -> str:
    """The graph node the package names for an endpoint: instance.i.component.j."""
    (instance, i), (component, j) = endpoint
    return f"{instance}.{i}.{component}.{j}"
