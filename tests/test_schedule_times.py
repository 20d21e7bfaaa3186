"""Schedule times: the depth-first longest path, plain and compiled, equals the transfer-by-transfer
one on any DAG, in any numbering; a cycle is refused; and the columnar table round-trips its transfers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fabricsim.collectives import build_schedule
from fabricsim.collectives.schedule import Schedule, Transfer, TransferTable
from fabricsim.collectives import schedule_times
from fabricsim.collectives.schedule_times import dag_times, released_by


@st.composite
def dags(draw):
    """Random DAGs in topological order, with both kinds of dependency, and random durations."""
    count = draw(st.integers(0, 30))
    transfers = []
    for tid in range(count):
        after = draw(st.sets(st.integers(0, tid - 1), max_size=3)) if tid else set()
        after_sent = draw(st.sets(st.integers(0, tid - 1), max_size=2)) if tid else set()
        transfers.append(Transfer(tid, 0, 1, 1, tuple(sorted(after)), after_sent=tuple(sorted(after_sent))))
    durations = st.lists(st.integers(0, 1000), min_size=count, max_size=count)
    return (Schedule("custom", "direct", 2, count, transfers), np.array(draw(durations), dtype=np.int64),
            np.array(draw(durations), dtype=np.int64), draw(st.integers(0, 10**6)))


@settings(max_examples=150, deadline=None)
@given(dags(), st.booleans())
def test_dag_times_equal_the_sequential_longest_path(case, compiled):
    schedule, send_ps, deliver_ps, start_ps = case
    sent, delivered = [], []
    for t in schedule.transfers:
        ready = max([start_ps] + [delivered[p] for p in t.after] + [sent[p] for p in t.after_sent])
        sent.append(ready + int(send_ps[t.id]))
        delivered.append(sent[-1] + int(deliver_ps[t.id]))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(schedule_times, "COMPILED_FROM", 0 if compiled else 10**9)
        times = dag_times(schedule.transfers, start_ps, send_ps, deliver_ps)
    n = len(schedule.transfers)
    assert times[:n].tolist() == sent
    assert times[n:2 * n].tolist() == delivered
    for t in schedule.transfers:  # the dependency named as the releaser is one that made it ready
        parent = released_by(schedule.transfers, times, t.id)
        ready = sent[t.id] - int(send_ps[t.id])
        if parent is None:
            assert not t.after and not t.after_sent
        else:
            tid, kind = parent
            assert (delivered if kind == "delivered" else sent)[tid] == ready
            assert tid in (t.after if kind == "delivered" else t.after_sent)


@pytest.mark.parametrize("compiled", [False, True])
def test_dag_times_need_no_topological_numbering(compiled, monkeypatch):
    """Transfer 0 waits on 2's delivery, 2 on 1's last bit: timed in the DAG's order, not the ids'."""
    monkeypatch.setattr(schedule_times, "COMPILED_FROM", 0 if compiled else 10**9)
    table = TransferTable.of([Transfer(0, 0, 1, 1, (2,)), Transfer(1, 1, 0, 1), Transfer(2, 0, 1, 1, after_sent=(1,))])
    times = dag_times(table, 5, np.array([10, 20, 30]), np.array([1, 2, 3]))
    # 1 sent at 5 + 20 = 25, delivered 27; 2 ready at 25, sent 55, delivered 58; 0 ready at 58, sent 68
    assert times.tolist() == [68, 25, 55, 69, 27, 58, 5]


def test_the_table_round_trips_its_transfers_and_rejects_misnumbered_ones():
    schedule = build_schedule("all_gather", "ring", 4, 4000, 2)
    table = schedule.transfers
    assert TransferTable.of(tuple(table)) == table
    assert table[-1] == tuple(table)[-1] and table[1:3] == tuple(table)[1:3]
    with pytest.raises(ValueError, match="position 0 has id 1"):
        TransferTable.of([Transfer(1, 0, 1, 10)])
    cyclic = Schedule("custom", "direct", 2, 1, [Transfer(0, 0, 1, 1, (1,)), Transfer(1, 1, 0, 1, (0,))]).transfers
    for compiled_from in (0, 10**9):
        with pytest.MonkeyPatch.context() as monkeypatch, pytest.raises(ValueError, match="cycle"):
            monkeypatch.setattr(schedule_times, "COMPILED_FROM", compiled_from)
            dag_times(cyclic, 0, np.ones(2, dtype=np.int64), np.ones(2, dtype=np.int64))
