"""Background traffic: competing flows that last the whole trial and take their max-min share.

Each chosen link carries one endless flow that asks for ``load`` x the link's capacity (a private
link of that capacity caps it). Under max-min fairness a collective flow alone with it on the link
then keeps (1 - load) of the link while load <= 1/2; beyond, both get the fair half. Links are
named in the scenario, or are those in and out of the NICs of a fraction of the hosts, drawn per
trial from the trial's stream. Background bits are not counted in links.csv's bytes.
"""

from __future__ import annotations

import numpy as np

from fabricsim.config import BackgroundSpec
from fabricsim.engine.flows import FlowNetwork
from fabricsim.fabric.graph import Fabric


def start_background(network: FlowNetwork, fabric: Fabric, spec: BackgroundSpec, hosts: int,
                     rng: np.random.Generator) -> None:
    if spec.load == 0:
        return
    links = {fabric.link_named(name).index for name in spec.links}
    if spec.hosts_fraction:
        chosen = rng.choice(hosts, size=round(spec.hosts_fraction * hosts), replace=False)
        nics = {name for name, device in fabric.devices.items() if device.kind == "nic" and device.host in chosen}
        links.update(link.index for link in fabric.links
                     if link.kind == "roce" and (link.src in nics or link.dst in nics))
    for link in sorted(links):
        cap = network.private_link(spec.load * network.capacity_bps[link])
        network.start((link, cap), float("inf"), lambda: None)
