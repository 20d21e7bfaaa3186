"""Every registered algorithm, symbolically: it computes its collective for any rank count, root and
chunk count, its DAG is well formed, and the verifier catches each transfer dropped or flipped."""

import dataclasses
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabricsim.collectives import ALGORITHMS, ScheduleError, algorithms_for, build_schedule, verify
from fabricsim.collectives.channels import Place, ring_orders, tree_parents
from fabricsim.collectives.pat import plan as pat_plan
from fabricsim.collectives.schedule import Schedule
from fabricsim.collectives.trees import binary_tree_parents

NAMES = sorted(ALGORITHMS)


@st.composite
def schedules(draw, min_bytes_per_piece=0):
    op, algorithm = draw(st.sampled_from(NAMES))
    ranks = draw(st.integers(2, 12))
    chunks = draw(st.integers(1, 3))
    size_bytes = draw(st.integers(0, 10**5)) + min_bytes_per_piece * ranks * ranks * 2 * chunks
    root = draw(st.integers(0, ranks - 1))
    local_ranks = draw(st.sampled_from([d for d in range(1, ranks + 1) if ranks % d == 0]))
    orders = tuple(draw(st.lists(st.permutations(range(ranks)), min_size=1, max_size=3)))  # ring's channels
    trees = tree_parents([Place(rank // local_ranks, rank % local_ranks, (rank % local_ranks,))
                          for rank in range(ranks)], draw(st.integers(0, 3)))  # tree's channels
    groups = tuple(tuple(range(start, start + local_ranks)) for start in range(0, ranks, local_ranks))
    hosts_per_leaf = draw(st.integers(1, 4))  # SHARP's leaves (CollNet, NVLS across hosts)
    leaves = tuple(host // hosts_per_leaf for host in range(len(groups))) if len(groups) > 1 else ()
    return build_schedule(op, algorithm, ranks, size_bytes, chunks, root=root, local_ranks=local_ranks,
                          orders=orders, trees=trees, leaves=leaves,
                          groups=groups if len(groups) > 1 and (algorithm not in ("nvls_tree", "nvls")
                                                                or local_ranks > 1) else None)


@settings(max_examples=150, deadline=None)
@given(schedules())
def test_every_algorithm_computes_its_collective_as_a_topological_dag(schedule):
    verify(schedule)
    assert (schedule.op, schedule.algorithm) in ALGORITHMS
    assert [t.id for t in schedule.transfers] == list(range(len(schedule.transfers)))
    assert all(parent < t.id for t in schedule.transfers for parent in t.after + t.after_sent)
    assert all(t.nbytes > 0 for t in schedule.transfers)
    if schedule.size_bytes == 0:
        assert not schedule.transfers


def without(schedule: Schedule, dropped_id: int) -> Schedule:
    """The schedule minus one transfer; its dependents inherit its dependencies."""
    dropped = schedule.transfers[dropped_id]
    transfers = []
    for t in schedule.transfers:
        if t.id == dropped_id:
            continue

        def renumber(parents, inherited):
            kept = set(parents) - {dropped_id} | (set(inherited) if dropped_id in parents else set())
            return tuple(sorted(parent - (parent > dropped_id) for parent in kept))

        transfers.append(dataclasses.replace(t, id=t.id - (t.id > dropped_id),
                                             after=renumber(t.after, dropped.after),
                                             after_sent=renumber(t.after_sent, dropped.after_sent)))
    return dataclasses.replace(schedule, transfers=tuple(transfers))


@settings(max_examples=80, deadline=None)
@given(schedules(min_bytes_per_piece=1), st.data())
def test_verify_rejects_any_dropped_transfer(schedule, data):
    dropped_id = data.draw(st.integers(0, len(schedule.transfers) - 1))
    with pytest.raises(ScheduleError):
        verify(without(schedule, dropped_id))


@settings(max_examples=80, deadline=None)
@given(schedules(min_bytes_per_piece=1), st.data())
def test_verify_rejects_any_flipped_reduce(schedule, data):
    # a relay's copy starts at zero: the first write into it (NVLS) means the same reduced or not
    flippable = [t.id for t in schedule.transfers if t.dst < schedule.ranks]
    flipped = schedule.transfers[data.draw(st.sampled_from(flippable))]
    transfers = list(schedule.transfers)
    transfers[flipped.id] = dataclasses.replace(flipped, reduce=not flipped.reduce)
    with pytest.raises(ScheduleError):
        verify(dataclasses.replace(schedule, transfers=tuple(transfers)))


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["all_gather", "reduce_scatter"]), st.integers(2, 17), st.integers(0, 3 * 2**20))
def test_pat_computes_its_collective_in_nccls_messages_for_any_rank_count(op, ranks, size_bytes):
    """Sizes from one aggregated message to several chunks; every message goes to a peer a power of two
    away, each piece is sent (reduce-scatter) or received (all-gather) once by each rank, and at full
    aggregation a power of two n sends lg n messages."""
    schedule = build_schedule(op, "pat", ranks, size_bytes)
    verify(schedule)
    steps = pat_plan(op, ranks, size_bytes)
    distances = {(t.dst - t.src) % ranks for t in schedule.transfers}
    assert all(d & (d - 1) == 0 for d in distances)
    once = Counter((t.src if op == "reduce_scatter" else t.dst, t.piece) for t in schedule.transfers)
    assert all(count == 1 for count in once.values())  # each contribution sent once, each block received once
    if size_bytes >= ranks * steps.chunks:  # every piece holds bytes
        assert len(schedule.transfers) == ranks * (ranks - 1) * steps.chunks
    assert sorted(s for group in steps.groups for s in group) == list(range(1, ranks))
    if steps.aggregation >= ranks // 2 and ranks & (ranks - 1) == 0:
        assert len(steps.groups) == ranks.bit_length() - 1


def test_verify_rejects_all_to_all_blocks_delivered_to_the_wrong_rank():
    schedule = build_schedule("all_to_all", "direct", 3, 900)
    transfers = list(schedule.transfers)
    to_1, to_2 = (t for t in transfers if t.src == 0)
    transfers[to_1.id] = dataclasses.replace(to_1, piece=to_2.piece)  # rank 0's block for 2 sent to 1
    transfers[to_2.id] = dataclasses.replace(to_2, piece=to_1.piece)
    with pytest.raises(ScheduleError, match=r"rank 1 ends with piece 1 holding contributions of ranks \[\]"):
        verify(dataclasses.replace(schedule, transfers=tuple(transfers)))


def test_verify_rejects_a_broadcast_from_the_wrong_root_and_a_bad_piece_range():
    schedule = build_schedule("broadcast", "binomial_tree", 4, 400, root=2)
    with pytest.raises(ScheduleError, match="rank 2 sends piece 0 before it is guaranteed to hold it"):
        verify(dataclasses.replace(schedule, root=1))
    first = dataclasses.replace(schedule.transfers[0], pieces=3)
    with pytest.raises(ScheduleError, match="carries 400 bytes as pieces 0..2, which hold 300 bytes"):
        verify(dataclasses.replace(schedule, transfers=(first, *schedule.transfers[1:])))


@pytest.mark.parametrize("ranks", range(2, 34))
def test_double_binary_tree_is_two_binary_trees_whose_inner_nodes_differ(ranks):
    trees = [binary_tree_parents(ranks, second) for second in (False, True)]
    inner = []
    for parents in trees:
        children = [parents.count(rank) for rank in range(ranks)]
        assert max(children) <= 2 and parents.count(None) == 1
        inner.append({rank for rank in range(ranks) if children[rank] and parents[rank] is not None})
    assert not inner[0] & inner[1]  # a rank forwards inside at most one tree (Sanders et al.)


def test_registry_names_every_op_of_the_issue_and_rejects_bad_options():
    assert algorithms_for("all_reduce") == ["bidirectional_ring", "collnet_chain", "collnet_direct", "double_binary_tree", "flat_ring",
                                            "halving_doubling", "hierarchical", "nvls", "nvls_tree", "recursive_doubling", "ring", "tree"]
    assert algorithms_for("broadcast") == ["binomial_tree", "ring"]
    assert algorithms_for("reduce") == ["binomial_tree", "ring"]
    assert algorithms_for("all_gather") == ["flat_ring", "nvls", "pat", "recursive_doubling", "ring"]
    assert algorithms_for("reduce_scatter") == ["flat_ring", "nvls", "pat", "recursive_halving", "ring"]
    assert algorithms_for("all_to_all") == ["direct", "pxn"]
    for op in ("gather", "send_recv"):
        assert algorithms_for(op) == ["direct"]
    with pytest.raises(ValueError, match="root must be a rank in 0..3, got 4"):
        build_schedule("broadcast", "ring", 4, 1024, root=4)
    with pytest.raises(ValueError, match="whole hosts of 3 GPUs"):
        build_schedule("all_reduce", "hierarchical", 8, 1024, local_ranks=3)


def test_verify_rejects_bad_roots_chunks_and_unstated_multi_piece_transfers():
    schedule = build_schedule("reduce", "binomial_tree", 4, 400, root=3)
    with pytest.raises(ScheduleError, match="root 4 is outside 0..3"):
        verify(dataclasses.replace(schedule, root=4))
    with pytest.raises(ScheduleError, match="chunks must be >= 1"):
        verify(dataclasses.replace(schedule, chunks=0))
    with pytest.raises(ScheduleError, match="carries 4 pieces; a transfer carries one piece, or several in a "
                                            "schedule that states its chunks"):
        verify(dataclasses.replace(schedule, chunks=None))


@pytest.mark.parametrize("hosts, local_ranks", [(2, 4), (3, 2), (4, 1), (1, 4)])
def test_pxn_all_to_all_crosses_hosts_only_on_the_destinations_rail(hosts, local_ranks):
    ranks = hosts * local_ranks
    schedule = build_schedule("all_to_all", "pxn", ranks, ranks * 1000, local_ranks=local_ranks)
    verify(schedule)
    host, rail = (lambda rank: rank // local_ranks), (lambda rank: rank % local_ranks)
    crossing = [t for t in schedule.transfers if host(t.src) != host(t.dst)]
    assert crossing and all(rail(t.src) == rail(t.dst) for t in crossing) or hosts == 1
    # each block crosses at most one NVLink hop and one NIC hop
    assert len(schedule.transfers) <= 2 * ranks * (ranks - 1)
    assert sum(t.nbytes for t in crossing) == ranks * (ranks - local_ranks) * 1000


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 9), st.data())
def test_ring_channels_enter_each_host_at_a_new_gpu_and_leave_it_near_that_gpus_nic(hosts, local, channels, data):
    """NCCL's channel layout: every channel is a permutation, hosts one after another; channel k enters
    each host at its k-th GPU and leaves it from a GPU near the entry's NIC whenever the host has one."""
    switch = data.draw(st.sampled_from([d for d in range(1, local + 1) if local % d == 0]))  # GPUs per PCIe switch
    places = [Place(host, gpu, tuple(sorted(range(gpu - gpu % switch, gpu - gpu % switch + switch),
                                            key=lambda other, gpu=gpu: other != gpu)))
              for host in range(hosts) for gpu in range(local)]
    orders = ring_orders(places, channels)
    assert len(orders) == (channels or (local if hosts > 1 else 1))
    for channel, order in enumerate(orders):
        assert sorted(order) == list(range(hosts * local))
        if hosts == 1:
            assert list(order) == list(range(local))
            continue
        for host in range(hosts):
            inside = order[host * local:(host + 1) * local]
            assert {places[rank].host for rank in inside} == {host}
            assert places[inside[0]].rail == channel % local
            if switch > 1:
                assert places[inside[0]].rail in places[inside[-1]].near_rails


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5), st.integers(1, 4), st.integers(0, 5), st.integers(1, 3), st.integers(0, 5000))
def test_nccls_tree_chains_each_host_below_its_head_and_reduces_over_every_channel(hosts, local, channels, chunks,
                                                                                    size_bytes):
    places = [Place(host, gpu, (gpu,)) for host in range(hosts) for gpu in range(local)]
    trees = tree_parents(places, channels)
    assert len(trees) == (channels or max(2, local if hosts > 1 else 1))
    for channel, parents in enumerate(trees):
        assert parents.count(None) == 1
        crossing = [(rank, parent) for rank, parent in enumerate(parents)
                    if parent is not None and places[rank].host != places[parent].host]
        assert len(crossing) == hosts - 1  # one link per host up the tree of heads, between heads
        assert all(places[rank].rail == places[parent].rail == channel % local for rank, parent in crossing)
    if hosts * local > 1:
        verify(build_schedule("all_reduce", "tree", hosts * local, size_bytes, chunks, trees=trees))


def test_the_scenario_schema_knows_the_algorithms_built():
    """The names the scenario's validation accepts per op are those of the builders, no more, no fewer."""
    from fabricsim.config.collective import OP_ALGORITHMS
    assert set(OP_ALGORITHMS) == {op for op, _ in ALGORITHMS}
    for op, names in OP_ALGORITHMS.items():
        assert list(names) == algorithms_for(op)
