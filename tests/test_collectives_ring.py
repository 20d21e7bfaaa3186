"""Ring all-gather, reduce-scatter and all-reduce schedules: data correctness, byte counts, DAG shape,
and a verifier that rejects hand-broken schedules."""

import dataclasses

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fabricsim.collectives import ALGORITHMS, ScheduleError, build_schedule, verify
from fabricsim.collectives.dag import DagBuilder
from fabricsim.collectives.ring import chunk_segments, ring_phase
from fabricsim.collectives.schedule import Schedule, Transfer
from fabricsim.collectives.verify import split_bytes

OPS = ("all_gather", "reduce_scatter", "all_reduce")
PHASES = {"all_gather": 1, "reduce_scatter": 1, "all_reduce": 2}

ops = st.sampled_from(OPS)
ranks = st.integers(2, 24)
sizes = st.integers(0, 10**7)
chunk_counts = st.integers(1, 4)


def expected_bytes_sent(op: str, ranks: int, size_bytes: int, rank: int) -> int:
    """Rank r forwards every piece but r + 1 in all-gather and every piece but r in reduce-scatter."""
    pieces_bytes = split_bytes(size_bytes, ranks)
    all_gather = size_bytes - pieces_bytes[(rank + 1) % ranks]
    reduce_scatter = size_bytes - pieces_bytes[rank]
    by_op = {"all_gather": all_gather, "reduce_scatter": reduce_scatter, "all_reduce": all_gather + reduce_scatter}
    return by_op[op]


def longest_data_path(schedule: Schedule) -> int:
    """Transfers on the longest chain of ``after`` (delivery) dependencies."""
    depth: list[int] = []
    for t in schedule.transfers:
        depth.append(1 + max((depth[parent] for parent in t.after), default=0))
    return max(depth, default=0)


@settings(max_examples=60, deadline=None)
@given(ops, ranks, sizes, chunk_counts)
def test_ring_schedule_is_a_topological_dag_that_computes_its_collective(op, p, size_bytes, chunks):
    schedule = build_schedule(op, "ring", p, size_bytes, chunks)
    verify(schedule)
    header = (schedule.op, schedule.algorithm, schedule.ranks, schedule.size_bytes)
    assert header == (op, "ring", p, size_bytes)
    assert [t.id for t in schedule.transfers] == list(range(len(schedule.transfers)))
    assert all(parent < t.id for t in schedule.transfers for parent in t.after)
    reduce_scatter_count = len(schedule.transfers) // PHASES[op] if op != "all_gather" else 0
    assert [t.reduce for t in schedule.transfers] == [
        t.id < reduce_scatter_count for t in schedule.transfers
    ]
    assert sum({t.piece: t.nbytes for t in schedule.transfers}.values()) == size_bytes


@settings(max_examples=60, deadline=None)
@given(ops, ranks, sizes, chunk_counts)
def test_each_rank_sends_its_share_and_the_ring_sends_p_minus_1_buffers_per_phase(op, p, size_bytes, chunks):
    schedule = build_schedule(op, "ring", p, size_bytes, chunks)
    phases = PHASES[op]
    for rank in range(p):
        sent_bytes = schedule.bytes_sent_by(rank)
        assert sent_bytes == expected_bytes_sent(op, p, size_bytes, rank)
        assert abs(sent_bytes - phases * (p - 1) * size_bytes / p) <= phases
    assert sum(t.nbytes for t in schedule.transfers) == phases * (p - 1) * size_bytes


@settings(max_examples=60, deadline=None)
@given(ops, ranks, sizes, chunk_counts)
def test_each_chunk_crosses_one_hop_per_step_on_a_fifo_channel(op, p, size_bytes, chunks):
    # Data dependencies chain one transfer per step; each rank's channel sends its transfers in order.
    schedule = build_schedule(op, "ring", p, size_bytes, chunks)
    expected = PHASES[op] * (p - 1) if size_bytes else 0
    assert longest_data_path(schedule) == expected
    for rank in range(p):
        sent = [t for t in schedule.transfers if t.src == rank]
        assert all(later.after_sent == (earlier.id,) for earlier, later in zip(sent, sent[1:]))


def test_verify_handles_64_ranks_with_4_chunks():
    for op in OPS:
        verify(build_schedule(op, "ring", 64, 10**9, 4))


def test_registry_and_argument_errors():
    assert {("all_gather", "ring"), ("reduce_scatter", "ring"), ("all_reduce", "ring")} <= set(ALGORITHMS)
    with pytest.raises(ValueError, match="unknown collective op 'gossip'"):
        build_schedule("gossip", "ring", 4, 1024)
    with pytest.raises(ValueError, match="unknown algorithm 'tree' for all_gather"):
        build_schedule("all_gather", "tree", 4, 1024)
    with pytest.raises(ValueError, match="at least 2 ranks"):
        build_schedule("all_reduce", "ring", 1, 1024)
    with pytest.raises(ValueError, match="chunks must be >= 1"):
        build_schedule("all_reduce", "ring", 4, 1024, chunks=0)


# Mutations: every transfer of these schedules carries data (S >= p x chunks), so each one matters.
small_schedules = st.builds(
    lambda op, p, chunks, extra_bytes: build_schedule(op, "ring", p, p * chunks + extra_bytes, chunks),
    ops,
    st.integers(2, 8),
    st.integers(1, 3),
    st.integers(0, 10**5),
)


def with_transfers(schedule: Schedule, transfers: list[Transfer]) -> Schedule:
    return dataclasses.replace(schedule, transfers=tuple(transfers))


def arrival_of(schedule: Schedule, t: Transfer) -> int | None:
    """The dependency that delivered ``t``'s chunk to its sender, if any."""
    for parent in t.after:
        delivered = schedule.transfers[parent]
        if delivered.dst == t.src and delivered.piece == t.piece:
            return parent
    return None


@settings(max_examples=40, deadline=None)
@given(small_schedules, st.data())
def test_verify_rejects_a_dropped_transfer(schedule, data):
    dropped = schedule.transfers[data.draw(st.integers(0, len(schedule.transfers) - 1))]
    transfers = []
    for t in schedule.transfers:
        if t.id == dropped.id:
            continue
        # Dependents of the dropped transfer inherit its dependencies, so the DAG stays well formed.
        parents = set(t.after) - {dropped.id} | (set(dropped.after) if dropped.id in t.after else set())
        sent_parents = set(t.after_sent) - {dropped.id}
        transfers.append(
            dataclasses.replace(
                t,
                id=t.id - (t.id > dropped.id),
                after=tuple(sorted(parent - (parent > dropped.id) for parent in parents)),
                after_sent=tuple(sorted(parent - (parent > dropped.id) for parent in sent_parents)),
            )
        )
    with pytest.raises(ScheduleError):
        verify(with_transfers(schedule, transfers))


@settings(max_examples=40, deadline=None)
@given(small_schedules, st.data())
def test_verify_rejects_a_flipped_reduce(schedule, data):
    flipped = data.draw(st.integers(0, len(schedule.transfers) - 1))
    transfers = list(schedule.transfers)
    transfers[flipped] = dataclasses.replace(transfers[flipped], reduce=not transfers[flipped].reduce)
    with pytest.raises(ScheduleError):
        verify(with_transfers(schedule, transfers))


@settings(max_examples=40, deadline=None)
@given(small_schedules, st.data())
def test_verify_rejects_forwarding_a_chunk_before_it_arrives(schedule, data):
    forwarding = [t for t in schedule.transfers if arrival_of(schedule, t) is not None]
    assume(forwarding)  # a 2-rank all-gather or reduce-scatter forwards nothing
    t = data.draw(st.sampled_from(forwarding))
    transfers = list(schedule.transfers)
    arrival = arrival_of(schedule, t)
    transfers[t.id] = dataclasses.replace(t, after=tuple(parent for parent in t.after if parent != arrival))
    with pytest.raises(ScheduleError):
        verify(with_transfers(schedule, transfers))


def test_verify_accepts_dropping_only_the_pipelining_dependency():
    # Chunk order on a sender's channel is a timing choice, not a data dependency.
    schedule = build_schedule("all_reduce", "ring", 4, 4096, chunks=2)
    assert any(t.after_sent for t in schedule.transfers)
    transfers = [dataclasses.replace(t, after_sent=()) for t in schedule.transfers]
    verify(with_transfers(schedule, transfers))


def broken(change, ranks=3):
    schedule = build_schedule("all_gather", "ring", ranks, 300)
    transfers = list(schedule.transfers)
    transfers[1] = dataclasses.replace(transfers[1], **change)
    return with_transfers(schedule, transfers)


@pytest.mark.parametrize(
    ("mutated", "message"),
    [
        (broken({"after": (1,)}), "may only name smaller ids"),
        (broken({"after": (2,)}), "may only name smaller ids"),
        (broken({"dst": 1}), "to itself"),
        (broken({"dst": 3}), "outside 0..2"),
        (broken({"nbytes": -1}), "negative nbytes"),
        (broken({"piece": 2, "nbytes": 99}), "piece 2 is sent with 99 bytes and with 100 bytes"),
        (broken({"nbytes": 149}, ranks=2), "do not split 300 bytes into 2 pieces"),
        (dataclasses.replace(build_schedule("all_gather", "ring", 3, 300), op="gossip"), "unknown op"),
    ],
)
def test_verify_rejects_malformed_schedules(mutated, message):
    with pytest.raises(ScheduleError, match=message):
        verify(mutated)


def test_verify_rejects_double_counting_and_racing_overwrites():
    # Rank 0 adds its contribution to rank 1 twice: a set union would hide it, a sum would not.
    twice = Schedule(
        "reduce_scatter",
        "ring",
        2,
        2,
        (
            Transfer(0, 0, 1, 1, (), 1, True),
            Transfer(1, 0, 1, 1, (0,), 1, True),
            Transfer(2, 1, 0, 1, (), 0, True),
        ),
    )
    with pytest.raises(ScheduleError, match="a second time"):
        verify(twice)
    # Two unordered copies of piece 0 into rank 2: the result would depend on which lands last.
    racing = Schedule(
        "all_gather",
        "ring",
        3,
        3,
        (
            Transfer(0, 0, 1, 1, (), 0, False),
            Transfer(1, 0, 2, 1, (), 0, False),
            Transfer(2, 1, 2, 1, (0,), 0, False),
            Transfer(3, 1, 0, 1, (), 1, False),
            Transfer(4, 1, 2, 1, (), 1, False),
            Transfer(5, 2, 0, 1, (), 2, False),
            Transfer(6, 2, 1, 1, (), 2, False),
        ),
    )
    with pytest.raises(ScheduleError, match="without a happens-before order"):
        verify(racing)


RING_PHASES = {"all_gather": ((0, False),), "reduce_scatter": ((1, True),), "all_reduce": ((1, True), (0, False))}


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(RING_PHASES)), st.integers(2, 9), st.integers(1, 4), st.integers(0, 200))
def test_closed_form_rings_are_the_dags_the_builder_derives(op, ranks, chunks, size_bytes):
    """The one-direction rings are built in closed form (numpy); the generic DagBuilder, driven step
    by step, must derive the very same transfers and dependencies, empty chunks skipped included."""
    dag = DagBuilder(op, ranks, size_bytes, chunks)
    for lag, reduce in RING_PHASES[op]:
        ring_phase(dag, list(range(ranks)), chunk_segments(ranks, chunks), lag, reduce)
    assert build_schedule(op, "ring", ranks, size_bytes, chunks).transfers == dag.schedule("ring").transfers
