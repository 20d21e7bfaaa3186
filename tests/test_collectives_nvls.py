"""NVLS: the NVSwitch reduces and multicasts. Symbolic correctness for any rank count, the bytes on
each GPU's port as NCCL's NVLS moves them, the bandwidth bound of the switch's rate, auto running it.
"""

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabricsim.collectives import ScheduleError, build_schedule, verify
from fabricsim.collectives.nvls import chunks_for
from fabricsim.collectives.tuner import Topology, enabled
from fabricsim.collectives.verify import split_bytes
from fabricsim.config import ScenarioError
from fabricsim.runner.simulation import Simulation
from fabricsim.collectives.schedule import Schedule, Transfer
from tests.conftest import make_scenario

OPS = ("all_reduce", "all_gather", "reduce_scatter")


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(OPS), st.integers(2, 17), st.integers(0, 3 * 2**20))
def test_nvls_computes_its_collective_through_the_switch_for_any_rank_count(op, ranks, size_bytes):
    """Every transfer goes to or from the switch (rank ``ranks``); each GPU's port carries, each way, S
    for an all-reduce, its own block one way and the others' the other way for all-gather and
    reduce-scatter."""
    schedule = build_schedule(op, "nvls", ranks, size_bytes)
    verify(schedule)
    transfers = schedule.transfers
    assert schedule.relays == 1 and all((transfers.src == ranks) ^ (transfers.dst == ranks))
    blocks = split_bytes(size_bytes, ranks)
    for rank in range(ranks):
        sent, received = int(transfers.nbytes[transfers.src == rank].sum()), int(transfers.nbytes[transfers.dst == rank].sum())
        own, others = blocks[rank], size_bytes - blocks[rank]
        assert (sent, received) == {"all_reduce": (size_bytes, size_bytes), "all_gather": (own, others),
                                    "reduce_scatter": (others, own)}[op]


def test_verify_holds_a_relay_to_its_contract():
    """A relay holds nothing of its own: sending from it before it received, a head that takes the
    switch's sum in place of adding it to its own share, or a relay the schedule does not declare, is
    refused."""
    schedule = build_schedule("all_reduce", "nvls", 3, 3)
    with pytest.raises(ScheduleError, match="rank 3 sends piece 0 before it is guaranteed to hold it"):
        verify(Schedule("all_reduce", "nvls", 3, 3, [Transfer(0, 3, 0, 1)], chunks=1, relays=1))
    transfers = list(schedule.transfers)
    ret = next(t for t in transfers if t.src == 3 and t.reduce)
    transfers[ret.id] = dataclasses.replace(ret, reduce=False)
    with pytest.raises(ScheduleError, match=f"rank {ret.dst} ends with piece"):
        verify(dataclasses.replace(schedule, transfers=tuple(transfers)))
    with pytest.raises(ScheduleError, match="outside 0..2"):
        verify(dataclasses.replace(schedule, relays=0))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("ranks", [2, 3, 8])
@pytest.mark.parametrize("size_bytes", [2**20, 64 * 2**20])
def test_nvls_runs_at_the_switch_rate_pipelined_in_its_chunks(op, ranks, size_bytes):
    """On NVLink far faster than the switch's rate r per port, each GPU moves S (all-reduce) or
    (n - 1) / n S (the others) through the switch at r: t >= that / r, and the chunks' pipeline
    costs at most two chunks more (the last one's return, store and multicast after its pull),
    t <= that / r x (1 + 2/k), plus nanoseconds of link latency."""
    scenario = make_scenario(fabric={"hosts": 1, "gpus_per_host": ranks, "nvlink": {"bandwidth": "1000GB/s",
                                     "latency": "1ns"}, "nvswitch": {"latency": "1ns", "nvls_bandwidth": "100GB/s"}},
                             collective={"op": op, "algorithm": "nvls"},
                             workload={"rule": "data_sizes", "data_sizes": [size_bytes]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    size = simulation.schedule(op, ranks, size_bytes).size_bytes
    bound_ps = size * (1 if op == "all_reduce" else (ranks - 1) / ranks) / 100e9 * 1e12
    chunks = chunks_for(ranks, size)
    assert bound_ps <= record.latency_ps <= bound_ps * (1 + 2 / chunks) + 20_000


def test_auto_runs_nvls_where_nccl_picks_it_and_its_bytes_cross_the_switch():
    scenario = make_scenario(fabric={"preset": "dgx_h100", "hosts": 1},
                             collective={"op": "all_reduce", "algorithm": "auto", "protocol": "auto"},
                             workload={"rule": "data_sizes", "data_sizes": ["256MiB"]})
    simulation = Simulation(scenario)
    layout = simulation.layout(tuple(range(8)))
    pick = simulation.pick("all_reduce", 8, 2**28, layout)
    assert (pick.algorithm, pick.protocol) == ("nvls", "simple") and pick.reason.startswith("NCCL's model: NVLS/Simple")
    assert "not modelled" not in pick.reason
    schedule = simulation.schedule("all_reduce", 8, 2**28)
    assert schedule.algorithm == "nvls" and simulation.fabric.relays == ["h0.nvls"]
    assert simulation.call_endpoints(simulation.plan.trials[0].calls[0], schedule)[-1] == 8
    assert [link.name for link in simulation.fabric.links if link.kind == "nvls"] == ["h0.nvswitch->h0.nvls",
                                                                                      "h0.nvls->h0.nvswitch"]


def test_nvls_is_not_offered_where_no_switch_reduces_or_no_relay_runs():
    """Without NVSwitches that reduce, across nodes, or in a whole-job step (no relays placed), NCCL's
    tuner does not get NVLS; an A100 preset's switch has no NVLS at all."""
    on, off = Topology(8, 1, "hopper", True, 370.8, 49, nvls=True), Topology(8, 1, "hopper", True, 370.8, 49)
    assert enabled("all_reduce", "nvls", "simple", on) and not enabled("all_reduce", "nvls", "simple", off)
    assert not enabled("all_reduce", "nvls", "simple", Topology(16, 2, "hopper", True, 370.8, 49, nvls=True))
    with_sharp = Topology(16, 2, "hopper", True, 370.8, 49, sharp=True, nvls=True)  # NCCL's NVLS with CollNet
    assert enabled("all_reduce", "nvls", "simple", with_sharp) and not enabled("all_gather", "nvls", "simple", with_sharp)
    assert not enabled("all_reduce", "nvls", "ll", on)
    assert make_scenario(fabric={"preset": "dgx_a100"}).fabric.nvswitch.nvls_bandwidth_bps is None
    assert make_scenario(collective={"op": "all_gather", "algorithm": "NVLS"},
                         fabric={"preset": "dgx_b200", "hosts": 1}).collective.algorithm == "nvls"


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(2, 5), st.booleans(), st.integers(0, 2**20))
def test_nvls_tree_computes_all_reduce_for_any_hosts_and_placement(hosts, per_host, rail_first, size_bytes):
    """NVLS inside every host, binary trees of the hosts between them: correct for any host count and
    rank order; each GPU's NVLink port carries S each way (as NVLS), and every transfer between hosts
    joins the heads of one slice (the same local index: the same rail)."""
    ranks = hosts * per_host
    groups = tuple(tuple(range(h, ranks, hosts)) if rail_first else tuple(range(h * per_host, (h + 1) * per_host))
                   for h in range(hosts))
    schedule = build_schedule("all_reduce", "nvls_tree", ranks, size_bytes, groups=groups)
    verify(schedule)
    transfers, host_of = schedule.transfers, {rank: h for h, group in enumerate(groups) for rank in group}
    assert schedule.relays == hosts
    for rank in range(ranks):
        relay = ranks + host_of[rank]
        through_switch = [(transfers.src == rank) & (transfers.dst == relay), (transfers.src == relay) & (transfers.dst == rank)]
        assert [int(transfers.nbytes[mask].sum()) for mask in through_switch] == [size_bytes, size_bytes]
    between = (transfers.src < ranks) & (transfers.dst < ranks)
    for src, dst in zip(transfers.src[between].tolist(), transfers.dst[between].tolist()):
        assert host_of[src] != host_of[dst] and groups[host_of[src]].index(src) == groups[host_of[dst]].index(dst)


def test_auto_runs_nvls_tree_across_hosts_and_it_beats_the_nics_sum_on_two():
    """NCCL's model picks NVLSTree for a large all-reduce on 2 DGX H100; it runs, and its busbw passes
    the ring's (bounded by the NICs) as formulas.md says of NCCL's trees on 2 nodes."""
    fabric = {"preset": "dgx_h100", "hosts": 2, "topology": "rail_optimized", "clos": {"spines": 2}}
    busbw = {}
    for algorithm in ("auto", "ring"):
        scenario = make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": algorithm, "protocol": "auto"},
                                 workload={"rule": "data_sizes", "data_sizes": ["256MiB"]})
        simulation = Simulation(scenario)
        (record,) = simulation.run()
        busbw[algorithm] = 2**28 / record.latency_ps * 2 * 15 / 16
        if algorithm == "auto":
            pick = simulation.pick("all_reduce", 16, 2**28, simulation.layout(tuple(range(16))))
            assert pick.algorithm == "nvls_tree" and pick.reason.startswith("NCCL's model: NVLSTree/Simple")
            assert simulation.schedule("all_reduce", 16, 2**28).relays == 2
    assert busbw["auto"] > 1.15 * busbw["ring"]


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(2, 5), st.booleans(), st.integers(0, 2**20), st.integers(1, 6))
def test_nvls_across_hosts_computes_all_reduce_through_the_switches_and_sharp(hosts, per_host, rail_first,
                                                                             size_bytes, hosts_per_leaf):
    """NVLS inside every host, SHARP's tree of each slice between them (one switch, or leaves then a
    root): correct for any hosts, placement and leaves; each GPU's NVLink port carries S each way, each
    head sends its slice once into its leaf's relay and gets it back once, and no GPU sends to another."""
    ranks = hosts * per_host
    groups = tuple(tuple(range(h, ranks, hosts)) if rail_first else tuple(range(h * per_host, (h + 1) * per_host))
                   for h in range(hosts))
    leaves = tuple(h // hosts_per_leaf for h in range(hosts))
    tree = 1 if leaves[-1] == 0 else leaves[-1] + 2
    schedule = build_schedule("all_reduce", "nvls", ranks, size_bytes, groups=groups, leaves=leaves)
    verify(schedule)
    transfers, host_of = schedule.transfers, {rank: h for h, group in enumerate(groups) for rank in group}
    local = {rank: group.index(rank) for group in groups for rank in group}
    blocks = split_bytes(size_bytes, ranks)
    assert schedule.relays == hosts + per_host * tree and not any((transfers.src < ranks) & (transfers.dst < ranks))

    def carried(src, dst):
        return int(transfers.nbytes[(transfers.src == src) & (transfers.dst == dst)].sum())

    for rank in range(ranks):
        switch, leaf = ranks + host_of[rank], ranks + hosts + local[rank] * tree + leaves[host_of[rank]]
        assert carried(rank, switch) == carried(switch, rank) == size_bytes
        share = sum(blocks[block] for block in range(ranks) if local[block] == local[rank])
        assert carried(rank, leaf) == carried(leaf, rank) == share
        assert int(transfers.nbytes[transfers.src == rank].sum()) == size_bytes + share


def test_nvls_across_leaves_runs_at_the_slower_of_the_switch_and_the_nics():
    """4 hosts of 4 GPUs on 2 leaves, SHARP everywhere: each GPU moves S through its NVSwitch's engine
    at r and S / 4 through its NIC, so the all-reduce takes the larger, S / (4 x NIC rate) here, plus
    at most three chunks' pipeline."""
    fabric = {"hosts": 4, "gpus_per_host": 4, "topology": "leaf_spine",
              "clos": {"sharp": True, "spines": 2, "hosts_per_leaf": 2},
              "nic": {"bandwidth": "100Gbps"}, "nvlink": {"bandwidth": "1000GB/s", "latency": "1ns"},
              "nvswitch": {"latency": "1ns", "nvls_bandwidth": "100GB/s"}, "pcie": {"bandwidth": "1000GB/s", "latency": "1ns"},
              "cable_latency": "1ns", "switch": {"latency": "1ns"}}
    scenario = make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": "nvls"},
                             workload={"rule": "data_sizes", "data_sizes": ["64MiB"]})
    (record,) = Simulation(scenario).run()
    nic_ps = 2**26 / 4 * 8 / scenario.fabric.nic.effective_bandwidth_bps * 1e12
    assert nic_ps > 2**26 / 100e9 * 1e12
    assert nic_ps <= record.latency_ps <= nic_ps * (1 + 3 / chunks_for(16, 2**26)) + 100_000


def test_auto_runs_nvls_across_hosts_where_sharp_switches_reduce():
    """On 4 DGX H100 whose rail switches reduce, NCCL's model picks NVLS (with CollNet) for 1 GiB; it runs
    through each host's NVSwitch and the rail switches, within 10% of its bound: S through each GPU's
    share of the NVSwitch's engine (above the NICs' S / 8)."""
    fabric = {"preset": "dgx_h100", "hosts": 4, "topology": "rail_optimized", "clos": {"sharp": True, "spines": 2}}
    scenario = make_scenario(fabric=fabric, collective={"op": "all_reduce", "algorithm": "auto", "protocol": "auto"},
                             workload={"rule": "data_sizes", "data_sizes": ["1GiB"]})
    simulation = Simulation(scenario)
    (record,) = simulation.run()
    pick = simulation.pick("all_reduce", 32, 2**30, simulation.layout(tuple(range(32))))
    assert pick.algorithm == "nvls" and pick.reason.startswith("NCCL's model: NVLS/Simple")
    call = simulation.plan.trials[0].calls[0]
    relays = [simulation.endpoints[i] for i in simulation.call_endpoints(call, simulation.call_schedule(call))[32:]]
    assert relays == [f"h{host}.nvls" for host in range(4)] + [f"rail{index}" for index in range(8)]
    spec = scenario.fabric
    bound_ps = 2**30 * 8 / spec.nvswitch.nvls_bandwidth_bps * 1e12
    assert bound_ps > 2**30 / 8 * 8 / spec.nic.effective_bandwidth_bps * 1e12
    assert bound_ps <= record.latency_ps <= 1.1 * bound_ps


MEGATRON_TP4 = {"rule": "megatron", "batch_size": 1, "seq_len": 4096, "trials": 1, "parallelism": {"tp": 4},
                "transformer": {"hidden_size": 256, "layers": 1, "heads": 4, "ffn_size": 512, "vocab_size": 1000}}


@pytest.mark.parametrize("scope", ["rank0", "job", None])
def test_nvls_runs_where_calls_run_one_at_a_time_named_or_picked(scope):
    """One predicate (Scenario.in_network_collectives) for the config and auto: megatron's calls one at a
    time (scope rank0) run NVLS, named or as auto's pick for a TP all-reduce of 2 MiB; a whole-job step
    (scope job, the flow model's default) refuses it named and auto does not pick it."""
    workload = MEGATRON_TP4 | ({"scope": scope} if scope else {})
    fabric = {"preset": "dgx_h100", "hosts": 1, "gpus_per_host": 4}
    scenario = make_scenario(fabric=fabric, collective={"algorithm": "auto", "protocol": "auto"}, workload=workload)
    assert scenario.in_network_collectives == (scope == "rank0")
    simulation = Simulation(scenario)
    call = next(call for call in simulation.plan.trials[0].calls if call.op == "all_reduce")
    assert (simulation.call_pick(call).algorithm == "nvls") == (scope == "rank0")
    if scope == "rank0":
        assert make_scenario(fabric=fabric, collective={"algorithm": "nvls"}, workload=workload).in_network_collectives
    else:
        with pytest.raises(ScenarioError, match="collective.algorithm: expected nvls on calls run one at a time"):
            make_scenario(fabric=fabric, collective={"algorithm": "nvls"}, workload=workload)
