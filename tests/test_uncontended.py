"""The longest-path shortcut (engine/uncontended.py) gives the event loop's numbers exactly, is taken
when no flows meet, and hands the call back to the event loop when two flows would share a link."""

import numpy as np
import pytest
import simpy
from hypothesis import event, given, settings
from hypothesis import strategies as st

import fabricsim.engine.models as models
import fabricsim.engine.uncontended as uncontended
from fabricsim.collectives.schedule import Schedule, Transfer
from fabricsim.config import load_scenario
from fabricsim.engine.executor import ScheduleRun
from fabricsim.engine.flows import FlowNetwork
from fabricsim.engine.impairments import TransferImpairments, Transport
from fabricsim.engine.models import FlowModel
from fabricsim.engine.uncontended import run_uncontended
from fabricsim.fabric import Router, build_fabric
from fabricsim.fabric.ecmp import ROCE_SOURCE_PORTS
from fabricsim.fabric.routing import five_tuple_hash
from fabricsim.runner.simulation import Simulation
from tests.conftest import SCENARIOS, make_scenario

LOSSY = {"jitter": {"distribution": "lognormal", "median": "5us", "sigma": 1.0},
         "loss": {"rate": 3.0e-4, "timeout_exponent": 20, "retry_count": 7}}
CASES = {
    "jittered lossy ring all-reduce": make_scenario(
        collective={"op": "all_reduce", "algorithm": "ring"}, impairments=LOSSY,
        workload={"rule": "data_sizes", "data_sizes": ["4MiB", "64KiB"], "trials": 6}),
    "chunked ring, chunks back to back": make_scenario(
        fabric={"hosts": 6}, collective={"op": "all_gather", "algorithm": "ring", "chunks": 4},
        workload={"rule": "data_sizes", "data_sizes": ["1MiB"], "trials": 2}),
    "launch skew and software latency": make_scenario(
        collective={"op": "all_reduce", "algorithm": "ring", "protocol": "simple"},
        impairments={"launch_skew": {"distribution": "uniform", "low": "0us", "high": "20us"}},
        workload={"rule": "data_sizes", "data_sizes": ["1MiB"], "trials": 4}),
    "loss alone (ties between chains), chunks, software latency": make_scenario(
        fabric={"hosts": 16}, collective={"op": "reduce_scatter", "algorithm": "ring", "chunks": 3, "protocol": "simple"},
        impairments={"loss": {"rate": 2.0e-2, "timeout_exponent": 8, "retry_count": 3}},
        workload={"rule": "data_sizes", "data_sizes": ["256KiB"], "trials": 12}),
    "recursive doubling": make_scenario(
        fabric={"hosts": 8}, collective={"op": "all_gather", "algorithm": "recursive_doubling"},
        impairments=LOSSY, workload={"rule": "data_sizes", "data_sizes": ["256KiB"], "trials": 4}),
    "dgx a100": load_scenario(SCENARIOS / "dgx_a100_allreduce.yaml", ("workload.trials=2",)),
    "leaf-spine by hash, one queue pair": load_scenario(
        SCENARIOS / "leaf_spine_ecmp.yaml", ("workload.trials=3", "fabric.qps_per_rankpair=1",
                                             "impairments.background.load=0")),
}


def _records(scenario, shortcut: bool, monkeypatch) -> tuple[list, list[bool]]:
    """The run's records, and per call whether the shortcut timed it."""
    monkeypatch.setattr(FlowModel, "uncontended_shortcut", shortcut)
    taken = []

    def noting(*args, **kwargs):
        run = run_uncontended(*args, **kwargs)
        taken.append(run is not None)
        return run
    monkeypatch.setattr(models, "run_uncontended", noting)
    return Simulation(scenario).run(), taken


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_shortcut_gives_the_event_loops_records(case, monkeypatch):
    fast, taken = _records(CASES[case], True, monkeypatch)
    slow, not_tried = _records(CASES[case], False, monkeypatch)
    assert fast == slow  # latency, breakdown and link usage, to the picosecond and the bit
    assert not not_tried
    if case == "leaf-spine by hash, one queue pair":  # hashed routes collide on spine links in some trials:
        assert taken                                  # those calls go to the event loop
    elif case.startswith("loss alone"):  # queue pairs that fail go to the event loop
        assert any(taken)
    else:
        assert taken and all(taken)


def _three_transfers(second_after_first: bool) -> tuple[FlowNetwork, Schedule, tuple[np.ndarray, list]]:
    """0 -> 1 and 2 -> 3 of equal size at once; then 2 -> 1 once 2 -> 3 is on the wire, exactly when
    0 -> 1's last bit leaves the link into rank 1 (and, if asked, once 0 -> 1 is on the wire too)."""
    fabric = build_fabric(make_scenario(fabric={"hosts": 4}).fabric)
    router = Router(fabric)
    pairs = [(0, 1), (2, 3), (2, 1)]
    schedule = Schedule("custom", "direct", 4, 3000, [
        Transfer(0, 0, 1, 1000), Transfer(1, 2, 3, 1000),
        Transfer(2, 2, 1, 1000, after_sent=(0, 1) if second_after_first else (1,))])
    routes = [router.route(fabric.gpus[src], fabric.gpus[dst]) for src, dst in pairs]
    network = FlowNetwork(simpy.Environment(), [link.bandwidth_bps for link in fabric.links])
    return network, schedule, (np.arange(3), routes)


@pytest.mark.parametrize("second_after_first", [False, True])
def test_flows_that_meet_on_a_link_go_back_to_the_event_loop(second_after_first):
    """Back to back on one link is apart only when the second waits on the first (then the event
    loop takes the first off the link before it puts the second on)."""
    network, schedule, routes = _three_transfers(second_after_first)
    zeros = np.zeros(3, dtype=np.int64)
    run = run_uncontended(network, 0, schedule, routes, TransferImpairments(zeros, zeros, zeros, zeros > 0),
                          Transport(4096, 10**6, 7), lambda src, dst: routes[1][0])
    assert (run is not None) == second_after_first
    if run is None:
        assert network.usage.carried_bits == [0.0] * len(network.usage.carried_bits)  # nothing counted
    else:
        assert run.times[2] - run.times[0] == run.times[0]  # 2 -> 1 started as 0 -> 1 left: back to back


def test_overlapping_flows_are_left_to_the_event_loop(monkeypatch):
    """A direct all-to-all puts every rank's flows on its NIC at once: never timed as a longest path."""
    scenario = make_scenario(fabric={"hosts": 4}, collective={"op": "all_to_all", "algorithm": "direct"},
                             workload={"rule": "data_sizes", "data_sizes": ["64KiB"], "trials": 2})
    fast, taken = _records(scenario, True, monkeypatch)
    assert taken and not any(taken)
    assert fast == _records(scenario, False, monkeypatch)[0]


@st.composite
def small_calls(draw, ranks: int = 4):
    """A random DAG of transfers among ``ranks`` ranks, with start delays drawn from a few values (so
    flows often meet or touch) and, now and then, go-back-N losses."""
    count = draw(st.integers(1, 12))
    transfers = []
    for tid in range(count):
        src = draw(st.integers(0, ranks - 1))
        dst = (src + draw(st.integers(1, ranks - 1))) % ranks
        after = draw(st.sets(st.integers(0, tid - 1), max_size=2)) if tid else set()
        after_sent = draw(st.sets(st.integers(0, tid - 1), max_size=1)) if tid else set()
        transfers.append(Transfer(tid, src, dst, draw(st.sampled_from([0, 1000, 8192, 65536])), tuple(sorted(after)),
                                  after_sent=tuple(sorted(after_sent))))
    values = st.lists(st.sampled_from([0, 0, 1_000_000, 5_243_000]), min_size=count, max_size=count)
    gaps = st.lists(st.sampled_from([0, 0, 0, 1]), min_size=count, max_size=count)
    zeros = np.zeros(count, dtype=np.int64)
    return (Schedule("custom", "direct", ranks, 0, transfers),
            TransferImpairments(np.array(draw(values), dtype=np.int64), np.array(draw(gaps), dtype=np.int64),
                                zeros, zeros > 0))


ONE_SWITCH = {"hosts": 4}
LEAF_SPINE = {"topology": "leaf_spine", "hosts": 6, "gpus_per_host": 1,  # 3 leaves, 2 spines, 2:1
              "clos": {"hosts_per_leaf": 2, "spines": 2, "oversubscription": 2, "ecmp": "hash"}}


@settings(max_examples=300, deadline=None)
@given(small_calls())
def test_whenever_the_shortcut_answers_it_is_the_event_loops_answer(call):
    _shortcut_is_the_event_loop(call, ONE_SWITCH)


@settings(max_examples=200, deadline=None)
@given(small_calls(ranks=6))
def test_on_a_leaf_spine_whenever_the_shortcut_answers_it_is_the_event_loops_answer(call):
    """Multi-hop: transfers of other leaves cross the spines by ECMP hash and meet on the uplinks."""
    _shortcut_is_the_event_loop(call, LEAF_SPINE)


def _shortcut_is_the_event_loop(call, fabric_spec: dict) -> None:
    schedule, impairments = call
    fabric = build_fabric(make_scenario(fabric=fabric_spec).fabric)
    router = Router(fabric)
    route_of = lambda src, dst: router.route(fabric.gpus[src], fabric.gpus[dst],  # noqa: E731
                                             five_tuple_hash(src, dst, ROCE_SOURCE_PORTS[0]))
    capacities = [link.bandwidth_bps for link in fabric.links]
    env = simpy.Environment()
    events = ScheduleRun(env, FlowNetwork(env, capacities), schedule, route_of, impairments, Transport(4096, 10**9, 7))
    env.run(until=events.done)
    pairs = [(t.src, t.dst) for t in schedule.transfers]
    routes = (np.arange(len(pairs)), [route_of(*pair) for pair in pairs])
    network = FlowNetwork(simpy.Environment(), capacities)
    shortcut = run_uncontended(network, 0, schedule, routes, impairments, Transport(4096, 10**9, 7), route_of)
    event(f"timed as a longest path: {shortcut is not None}")
    if shortcut is not None:
        assert shortcut.end_ps == env.now
        assert shortcut.critical_causes() == events.critical_causes()
        assert shortcut.ideal_ps() == events.ideal_ps()
        assert network.usage == events.network.usage.closed(events.network.flows_on, env.now)


@settings(max_examples=200, deadline=None)
@given(small_calls(ranks=6))
def test_checking_the_first_flows_first_gives_the_whole_checks_verdict(call):
    """The early check of a call's first flows (on for many flows; here for every call, on its first half)
    refuses only calls the whole check refuses."""
    schedule, impairments = call
    fabric = build_fabric(make_scenario(fabric=LEAF_SPINE).fabric)
    router = Router(fabric)
    routes = (np.arange(len(schedule.transfers)),
              [router.route(fabric.gpus[t.src], fabric.gpus[t.dst], five_tuple_hash(t.src, t.dst, ROCE_SOURCE_PORTS[0]))
               for t in schedule.transfers])

    def refused(early_check_from: int) -> bool:
        with pytest.MonkeyPatch.context() as monkeypatch:
            monkeypatch.setattr(uncontended, "EARLY_CHECK_FROM", early_check_from)
            monkeypatch.setattr(uncontended, "EARLY_SHARE", 2)
            network = FlowNetwork(simpy.Environment(), [link.bandwidth_bps for link in fabric.links])
            return run_uncontended(network, 0, schedule, routes, impairments, Transport(4096, 10**9, 7),
                                   lambda src, dst: routes[1][0]) is None
    assert refused(1) == refused(10**9)
