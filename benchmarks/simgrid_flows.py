"""SimGrid's flow model (C++ core, Python bindings) on the same links and flows, for benchmarks/run.py.

Run by the interpreter that has SimGrid (``/usr/bin/python3`` with Debian's python3-simgrid):
``simgrid_flows.py SPEC.json`` reads ``{"links": [[bandwidth_bps, latency_ps], ...], "hosts": n,
"flows": [[src_host, dst_host, [link, ...], route_latency_ps, nbytes], ...]}``, builds one SimGrid
host per GPU and one link per fabric link (the route's latency beyond its links' own goes on a
fat-pipe link of that latency), starts every flow at time 0, and prints ``{"wall_s", "simulated_ps"}``
as JSON. The model is CM02 with its latency and bandwidth factors at 1, no TCP window, no cross
traffic: plain max-min sharing, as fabricsim's flow model.
"""

import json
import sys
import time

import simgrid

CONFIG = ["--cfg=network/model:CM02", "--cfg=network/latency-factor:1", "--cfg=network/bandwidth-factor:1",
          "--cfg=network/weight-S:0", "--cfg=network/TCP-gamma:0", "--cfg=network/crosstraffic:0",
          "--log=root.thres:critical"]


def main(spec_path: str) -> None:
    with open(spec_path) as file:
        spec = json.load(file)
    started = time.perf_counter()
    engine = simgrid.Engine(["simgrid_flows", *CONFIG])
    zone = simgrid.NetZone.create_full_zone("fabric")
    hosts = [zone.create_host(f"h{index}", 1e9) for index in range(spec["hosts"])]
    links = []
    for index, (bandwidth_bps, latency_ps) in enumerate(spec["links"]):
        link = zone.create_link(f"l{index}", bandwidth_bps / 8)  # SimGrid counts bytes per second
        link.set_latency(latency_ps / 1e12)
        links.append(link.seal())
    extra: dict[int, simgrid.Link] = {}
    routed = set()
    for src, dst, route, route_latency_ps, _ in spec["flows"]:
        if (src, dst) in routed:
            continue
        extra_ps = route_latency_ps - sum(spec["links"][link][1] for link in route)
        if extra_ps not in extra:
            pipe = zone.create_link(f"latency{len(extra)}", 1e18)
            pipe.set_latency(extra_ps / 1e12)
            pipe.set_sharing_policy(simgrid.Link.SharingPolicy.FATPIPE, None)
            extra[extra_ps] = pipe.seal()
        routed.add((src, dst))
        hops = [simgrid.LinkInRoute(links[link]) for link in route] + [simgrid.LinkInRoute(extra[extra_ps])]
        zone.add_route(hosts[src].netpoint, hosts[dst].netpoint, None, None, hops, False)
    zone.seal()
    sending: dict[int, list] = {}
    receiving: dict[int, list] = {}
    for src, dst, _, _, nbytes in spec["flows"]:
        sending.setdefault(src, []).append((f"{src}-{dst}", nbytes))
        receiving.setdefault(dst, []).append(f"{src}-{dst}")

    def sender(flows):
        simgrid.Comm.wait_all([simgrid.Mailbox.by_name(name).put_async(name, nbytes) for name, nbytes in flows])

    def receiver(names):
        pending = [simgrid.Mailbox.by_name(name).get_async() for name in names]  # (comm, its buffer): keep both
        simgrid.Comm.wait_all([comm for comm, _ in pending])

    for host, flows in sending.items():
        simgrid.Actor.create(f"send{host}", hosts[host], sender, flows)
    for host, names in receiving.items():
        simgrid.Actor.create(f"recv{host}", hosts[host], receiver, names)
    engine.run()
    print(json.dumps({"wall_s": time.perf_counter() - started, "simulated_ps": round(engine.clock * 1e12)}))


if __name__ == "__main__":
    main(sys.argv[1])
