"""``algorithm: auto``: NCCL's own choice, by its tuning model (src/graph/tuning.cc, 2.29-2.30).

NCCL prices every (algorithm, protocol) it has for the op as latency + bytes / bandwidth and runs
the cheapest (enqueue.cc, topoGetAlgoInfo). The latency is a base per call plus per-step hardware
latencies (NVLink or PCI inside a node, the network between nodes) counted as each algorithm
counts its steps; the bandwidth is the channels' bus bandwidth, capped and scaled per algorithm,
protocol and GPU generation, then turned into algorithm bandwidth. The constants below are NCCL's.
What NCCL's graph search would find is taken from the fabric: every channel of Ring and Tree
together reach the GPU's intra-node bandwidth on one node, and the lesser of that and the node's NICs
across nodes; the channel count is estimated as ``Topology.channels`` says. The CPU is taken to be
Intel's x86 (1 us network overhead).

NVLS (one host, or all-reduce across hosts with CollNet's SHARP switches) and NVLSTree (across hosts)
run as their schedules (collectives/nvls.py) where the NVSwitches reduce
(``fabric.nvswitch.nvls_bandwidth``) and calls run one at a time (``Topology.nvls``); CollNetDirect and
CollNetChain (collectives/collnet.py) where switches reduce in the network (SHARP:
``fabric.clos.sharp``) and each slice's NICs reach a SHARP tree (``Topology.sharp``). Every algorithm
NCCL has is built (under its own name, lower case: ``nvls_tree``, ``collnet_direct``), so auto runs what
NCCL's model picks. Ops NCCL runs without a choice run their one algorithm: broadcast and reduce the
Ring (a chain), all-to-all, gather and send/recv point to point (``direct``).
"""

from __future__ import annotations

from dataclasses import dataclass

from fabricsim.config.collective import MAX_COLLNET_LOCAL_RANKS, MAX_NVLS_ARITY
from fabricsim.config.fabric import FabricSpec

ALGOS = ("tree", "ring", "collnet_direct", "collnet_chain", "nvls", "nvls_tree", "pat")
PROTOCOLS = ("ll", "ll128", "simple")
NCCL_ALGORITHM_OF = {"ring": "ring", "flat_ring": "ring", "tree": "tree", "double_binary_tree": "tree", "pat": "pat",
                     "nvls": "nvls", "nvls_tree": "nvls_tree", "collnet_direct": "collnet_direct",
                     "collnet_chain": "collnet_chain"}
NCCL_NAMES = {"tree": "Tree", "ring": "Ring", "collnet_direct": "CollNetDirect", "collnet_chain": "CollNetChain",
              "nvls": "NVLS", "nvls_tree": "NVLSTree", "pat": "PAT", "ll": "LL", "ll128": "LL128", "simple": "Simple"}
ARCHITECTURES = ("volta", "ampere", "hopper", "blackwell")
ONLY_ALGORITHM = {"broadcast": "ring", "reduce": "ring", "all_to_all": "direct", "gather": "direct",
                  "send_recv": "direct"}

# tuning.cc ncclTunerConstantsDefaults: base latency (us) per algorithm, LL / LL128 / Simple
BASE_LATENCY_US = {"tree": (6.8, 14.0, 8.4), "ring": (6.6, 14.0, 8.4), "collnet_direct": (0, 0, 0),
                   "collnet_chain": (0, 0, 0), "nvls": (0, 0, 0), "nvls_tree": (0, 0, 0), "pat": (8.0, 8.0, 8.0)}
# hardware latency (us) per step, by transport, algorithm and protocol
HW_LATENCY_US = {
    "nvlink": {"tree": (0.6, 1.25, 4.0), "ring": (0.6, 1.9, 3.4), "collnet_direct": (0, 0, 3.7),
               "collnet_chain": (0, 0, 2.8), "nvls": (0, 0, 25), "nvls_tree": (0, 0, 25), "pat": (0, 0, 4.0)},
    "pci": {"tree": (1.0, 1.9, 4.0), "ring": (1.0, 2.5, 5.7), "collnet_direct": (0, 0, 3.7),
            "collnet_chain": (0, 0, 2.8), "nvls": (0, 0, 0), "nvls_tree": (0, 0, 0), "pat": (0, 0, 4.0)},
    "net": {"tree": (5.0, 8.5, 14), "ring": (2.7, 4.0, 14.0), "collnet_direct": (0, 0, 31),
            "collnet_chain": (0, 0, 30), "nvls": (0, 0, 18), "nvls_tree": (0, 0, 20.9), "pat": (0, 0, 14)},
}
# per architecture, for 1 / 2 / more nodes (GB/s)
LL_MAX_BW = {"volta": (39.0, 39.0, 20.4), "ampere": (87.7, 22.5, 19.0), "hopper": (141.0, 45.0, 35.0),
             "blackwell": (282.0, 90.0, 70.0)}
LL_MAX_BW_MULTI_NODE_INTEL = (39.0, 39.0, 20.4)  # row 0: multi-node on an Intel CPU
PER_CHANNEL_RING_LL128_BW = {"volta": (20.0,) * 3, "ampere": (20.0,) * 3, "hopper": (36.7,) * 3,
                             "blackwell": (40.0,) * 3}
PER_CHANNEL_TREE_LL128_BW = {"volta": (20.0,) * 3, "ampere": (20.0,) * 3, "hopper": (36.7, 36.7, 29.0),
                             "blackwell": (55.6, 31.67, 20.0)}
PER_CHANNEL_TREE_BW = {"volta": (26.5, 18.5, 10.0), "ampere": (24.0, 23.6, 17.8), "hopper": (38.7, 41.4, 36.0),
                       "blackwell": (70.0, 42.8, 24.0)}
PER_CHANNEL_NVLS_TREE_BW = {"volta": (26.5, 18.5, 10.0), "ampere": (24.0, 23.6, 17.8), "hopper": (0.0, 57.7, 45.5),
                            "blackwell": (0.0, 96.0, 80.0)}
NVLS_EFFICIENCY = {"volta": 0.0, "ampere": 0.0, "hopper": 0.85, "blackwell": 0.74}
NVLS_CHANNELS = {"hopper": 16, "blackwell": 24}  # NCCL_NVLS_NCHANNELS defaults (src/transport/nvls.cc)
NET_OVERHEAD_US = 1.0  # getNetOverhead on Intel x86
NVLINK_GBPS = {"volta": 20.0, "ampere": 20.0, "hopper": 20.6, "blackwell": 40.1}  # per NVLink (topo.h)
MAX_CHANNELS = 32
# ncclTopoGetAlgoTime: Tree all-reduce's bandwidth correction, powers of two from 64 B, per protocol
TREE_CORRECTION = {
    "ll": (1.0, 1.0, 1.0, 1.0, .9, .8, .7, .7, .7, .7, .6, .5, .4, .4, .5, .6, .7, .8, .9, 1.0, 1.0, 1.0, 1.0, 1.0),
    "ll128": (1.0, 1.0, 1.0, 1.0, 1.0, .9, .8, .8, .8, .7, .6, .6, .6, .6, .6, .6, .8, .9, .9, .9, .9, 1.0, 1.0, 1.0),
    "simple": (.9, .9, .9, .9, .9, .9, .9, .8, .7, .6, .6, .5, .5, .5, .5, .6, .7, .8, .7, .7, .8, .9, .9, .9),
}


@dataclass(frozen=True, slots=True)
class Topology:
    """What NCCL's tuner knows of a communicator: ranks, nodes, GPU generation, links and channels."""

    ranks: int
    nodes: int
    architecture: str  # one of ARCHITECTURES
    nvlink: bool  # GPUs of a node joined by NVLink through NVSwitches (else PCI)
    intra_GBps: float  # one GPU's bandwidth to the others of its node
    nic_GBps: float  # one NIC's, as its GPU reaches it (each GPU its own NIC)
    sharp: bool = False  # switches that reduce in the network (SHARP): NCCL enables CollNet
    nvls: bool = False  # NVSwitches that reduce (NVLS), and a run that places their relays

    @property
    def per_node(self) -> float:
        return self.ranks / self.nodes

    @property
    def channels(self) -> int:
        """Ring's and Tree's channels as NCCL's search finds them: one per NIC across nodes (each at the
        NIC's bandwidth), one per NVLink's worth of bandwidth on one node (PCI: one), then doubled as
        NCCL doubles them (``duplicated_channels``)."""
        if self.nodes > 1:
            found, per_channel = round(self.per_node), self.nic_GBps
        elif self.nvlink:
            found = max(1, round(self.intra_GBps / NVLINK_GBPS[self.architecture]))
            per_channel = self.intra_GBps / found
        else:
            found, per_channel = 1, self.intra_GBps
        return duplicated_channels(found, per_channel, self.architecture)


def nic_path_GBps(fabric: FabricSpec) -> float:
    """One GPU's rate to the network as NCCL's search finds it: its NIC's payload rate, capped by the
    PCIe path to it."""
    return min(fabric.nic.effective_bandwidth_bps, fabric.pcie.bandwidth_bps) / 8e9


def channels_across_hosts(found: int, fabric: FabricSpec) -> int:
    """``found`` channels across hosts, each at a NIC's path rate, after NCCL doubles them."""
    return duplicated_channels(found, nic_path_GBps(fabric), fabric.architecture)


def duplicated_channels(found: int, per_channel_GBps: float, architecture: str) -> int:
    """``found`` channels of ``per_channel_GBps`` each after ncclTopoDupChannels (search.cc): doubled
    (each a second time on the same path) unless a channel has less than 25 GB/s, or, from Hopper on,
    less than 50 GB/s with more than 4 channels; at most 32."""
    hopper_on = ARCHITECTURES.index(architecture) >= ARCHITECTURES.index("hopper")
    doubled = not (per_channel_GBps < 25 or (hopper_on and per_channel_GBps < 50 and found > 4))
    return min(MAX_CHANNELS, 2 * found if doubled else found)


@dataclass(frozen=True, slots=True)
class Pick:
    """What auto runs (fabricsim's algorithm, protocol) and why, in one line."""

    algorithm: str
    protocol: str
    reason: str


def _log2i(n: int) -> int:
    return max(n, 1).bit_length() - 1


def _steps(op: str, ranks: int) -> int:
    return 2 * (ranks - 1) if op == "all_reduce" else ranks - 1 if op in ("all_gather", "reduce_scatter") else ranks


def enabled(op: str, algo: str, protocol: str, topology: Topology) -> bool:
    """Whether NCCL would consider ``algo`` with ``protocol`` for ``op`` on this topology."""
    if op in ("broadcast", "reduce") and algo != "ring":
        return False
    if op in ("all_gather", "reduce_scatter") and algo not in ("pat", "ring", "nvls", "collnet_direct"):
        return False
    if op == "all_reduce" and algo == "pat":
        return False
    if algo in ("nvls", "nvls_tree") and protocol != "simple":
        return False
    if algo == "pat" and (protocol != "simple" or topology.nodes != topology.ranks):
        return False
    if algo.startswith("collnet") and (not topology.sharp or topology.nodes == 1 or protocol != "simple"
                                       or op != "all_reduce"):
        return False  # needs SHARP switches (collnetEnable); all-gather/reduce-scatter need NCCL's plugin ops
    if algo == "collnet_direct" and not topology.nvlink:
        return False  # CollNetDirect only on NVSwitch systems
    if algo.startswith("collnet") and topology.per_node > MAX_COLLNET_LOCAL_RANKS:
        return False  # enqueue.cc: CollNet up to 8 local GPUs
    nvls_capable = (topology.nvls and topology.nvlink and topology.architecture in NVLS_CHANNELS
                    and topology.per_node > 1)
    if algo == "nvls" and (not nvls_capable or (topology.nodes > 1 and not (topology.sharp and op == "all_reduce"))):
        return False  # multi-node NVLS needs CollNet (all-gather/reduce-scatter also the plugin's ops)
    if algo == "nvls" and op in ("all_gather", "reduce_scatter") and topology.per_node > MAX_NVLS_ARITY:
        return False  # enqueue.cc: beside all-reduce, NVLS up to 32 local GPUs
    if algo == "nvls_tree" and (not nvls_capable or topology.nodes == 1):
        return False
    if protocol == "ll128":  # enabled up to PXB paths, inside nodes only over NVLink
        return topology.nvlink or topology.per_node == 1
    return True


def bandwidth_GBps(op: str, algo: str, protocol: str, topology: Topology) -> float:
    """NCCL's algorithm bandwidth for ``op`` by ``algo`` and ``protocol`` (tuning.cc's bandwidths[])."""
    arch, nodes, ranks, ppn = topology.architecture, topology.nodes, topology.ranks, topology.per_node
    size_index = min(nodes, 3) - 1
    ll_max = (LL_MAX_BW[arch] if nodes == 1 else LL_MAX_BW_MULTI_NODE_INTEL)[size_index]
    channels = topology.channels
    bus_total = topology.intra_GBps if nodes == 1 else min(topology.intra_GBps, ppn * topology.nic_GBps)
    bus = bus_total  # nChannels x bw
    if algo in ("nvls", "nvls_tree"):
        channels = NVLS_CHANNELS[arch]
        intra = topology.intra_GBps / channels * NVLS_EFFICIENCY[arch] * (channels - 1) / channels
        intra *= 2.0 if op == "all_reduce" else (ppn - 1) / ppn
        inter = ppn * topology.nic_GBps / channels * (2 if nodes <= 2 and algo == "nvls_tree" else 1)
        per_channel = min(intra, inter if nodes > 1 else intra)
        if algo == "nvls_tree":
            per_channel = min(per_channel, PER_CHANNEL_NVLS_TREE_BW[arch][size_index])
        bus = channels * per_channel
    if algo == "ring" and protocol == "ll":
        bus = min(ll_max, bus * .5)
    if algo == "ring" and protocol == "ll128":
        bus = min(bus * .92, channels * PER_CHANNEL_RING_LL128_BW[arch][size_index])
    if algo == "tree" and op == "all_reduce":
        bus = min(bus * .92, channels * PER_CHANNEL_TREE_BW[arch][size_index])
    if algo == "tree" and protocol == "ll":
        bus = min(bus / 3.8, ll_max)
    if algo == "tree" and protocol == "ll128":
        bus = min(bus * (7 / 9 if nodes == 1 else 120 / 128), channels * PER_CHANNEL_TREE_LL128_BW[arch][size_index])
    if algo == "pat":
        bus *= .75
    if algo == "collnet_direct" and ARCHITECTURES.index(arch) >= 2:  # (every GPU has its own NIC here,
        bus *= .85  # so NCCL's GPU-per-NIC penalty is 1)
    if algo == "ring" or op not in ("all_gather", "reduce_scatter"):
        bus *= ranks / _steps(op, ranks) if algo in ("ring", "nvls", "nvls_tree") else .5
    return bus


def latency_us(op: str, algo: str, protocol: str, topology: Topology) -> float:
    """NCCL's latency for ``op`` by ``algo`` and ``protocol`` (tuning.cc's latencies[])."""
    p = PROTOCOLS.index(protocol)
    nodes, ranks, ppn = topology.nodes, topology.ranks, topology.per_node
    intra_hw = "nvlink" if topology.nvlink else "pci"
    intra = HW_LATENCY_US[intra_hw][algo][p]
    inter = HW_LATENCY_US["net"]["tree" if ppn == 1 else algo][p]
    latency = BASE_LATENCY_US[algo][p]
    steps = _steps(op, ranks)
    if algo == "ring":
        if op in ("broadcast", "reduce"):
            return latency + HW_LATENCY_US[intra_hw if nodes == 1 else "net"]["ring"][p]
        overhead = NET_OVERHEAD_US * (3 if protocol == "simple" else 1) if nodes > 1 else 0.0
        inter_steps = 0 if nodes == 1 else 2 * (nodes - 1) if op == "all_reduce" else nodes - 1
        return latency + (steps - inter_steps) * max(intra, overhead) + inter_steps * inter
    if algo == "tree":
        return latency + (2 * ((ppn - 1) * intra + _log2i(nodes) * inter) if op == "all_reduce" else 0)
    if algo == "collnet_direct":
        return latency + 2 * (min(1, ppn - 1) * intra + (ppn - 1) * 0.4) + inter
    if algo == "collnet_chain":
        return latency + 2 * (ppn - 1) * intra + inter
    if algo == "nvls":
        return intra + (inter if nodes > 1 else 0)
    if algo == "nvls_tree":
        return latency + intra + 2 * _log2i(nodes) * inter
    if algo == "pat":
        return latency + _log2i(nodes) * inter / 3.5 + ranks * 2.8
    return latency


def time_us(op: str, algo: str, protocol: str, topology: Topology, nbytes: int) -> float:
    """ncclTopoGetAlgoTime: latency + bytes / bandwidth, with Tree's correction and Ring's plateau."""
    bandwidth = bandwidth_GBps(op, algo, protocol, topology)
    latency = latency_us(op, algo, protocol, topology)
    log_size = _log2i(nbytes >> 6) if nbytes >> 6 else -1
    if algo == "tree" and op == "all_reduce" and 0 <= log_size < 23:
        bandwidth *= TREE_CORRECTION[protocol][log_size]
    if (algo == "ring" and protocol == "simple" and topology.nodes > 1 and op == "all_reduce"
            and nbytes / (topology.channels * topology.ranks) >= 64):
        latency *= 1.4 if ARCHITECTURES.index(topology.architecture) >= 1 else 1.9
    return latency + nbytes / (1000 * bandwidth)


def nccl_pick(op: str, topology: Topology, nbytes: int, protocol: str = "auto", only: str | None = None) -> Pick:
    """NCCL's (algorithm, protocol) for ``op`` of ``nbytes`` (``protocol`` fixes it unless "auto";
    "none" prices as Simple). ``only`` names NCCL's algorithm when the scenario fixes it ("" for one
    NCCL has not: Simple then)."""
    if op in ONLY_ALGORITHM or only == "":
        return Pick(ONLY_ALGORITHM.get(op, ""), protocol if protocol != "auto" else "simple",
                    f"{op} has one algorithm in NCCL" if op in ONLY_ALGORITHM else "not an NCCL algorithm")
    protocols = PROTOCOLS if protocol == "auto" else ("simple" if protocol == "none" else protocol,)
    algos = ALGOS if only is None else (only,)
    times = {(algo, proto): time_us(op, algo, proto, topology, nbytes)
             for algo in algos for proto in protocols if enabled(op, algo, proto, topology)}
    if not times:  # a fixed algorithm NCCL has not for this op
        return Pick("", protocol if protocol != "auto" else "simple", f"NCCL has no {only} for {op}")
    ranked = sorted(times, key=times.__getitem__)
    best = ranked[0]
    reason = f"NCCL's model: {_named(best)} {times[best]:.1f} us"
    if len(ranked) > 1:
        reason += f", next {_named(ranked[1])} {times[ranked[1]]:.1f} us"
    return Pick(best[0], best[1] if protocol == "auto" else protocol, reason)


def _named(key: tuple[str, str]) -> str:
    return f"{NCCL_NAMES[key[0]]}/{NCCL_NAMES[key[1]]}"
