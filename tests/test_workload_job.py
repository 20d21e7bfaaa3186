"""The whole job's step: every group of the mesh runs its calls at once on the shared fabric.

Groups on links of their own take exactly as long together as alone; groups that share one
bottleneck link split it max-min, which has a closed form for identical rings.
"""

import dataclasses
from fractions import Fraction

import numpy as np
import pytest

from fabricsim.collectives.schedule_times import serialisation_ps
from fabricsim.config import ScenarioError, validate_scenario
from fabricsim.engine.models import FlowModel
from fabricsim.output.results import collect
from fabricsim.runner.simulation import Simulation
from fabricsim.runner.work_limits import transfers_per_trial
from fabricsim.workload import Call, Trial
from fabricsim.workload.critical_path import StepCompute, step_compute
from fabricsim.workload.job import job_groups, lower_step, one_f_one_b, step_pairs
from fabricsim.workload.placement import Mesh

TINY = {"name": "tiny", "hidden_size": 256, "layers": 2, "heads": 8, "kv_heads": 4, "ffn_size": 512,
        "vocab_size": 1000}


@pytest.fixture(autouse=True, params=["longest path", "event loop"])
def engine(request, monkeypatch):
    monkeypatch.setattr(FlowModel, "uncontended_shortcut", request.param == "longest path")


def _simulation(fabric, parallelism, **workload):
    raw = {"name": "t", "fabric": fabric, "collective": {"algorithm": "ring"},
           "workload": {"rule": "megatron", "transformer": TINY, "batch_size": 1, "seq_len": 128, "trials": 1,
                        "parallelism": parallelism} | workload}
    return Simulation(validate_scenario(raw, "<t>"), "<t>")


def test_every_group_of_the_mesh_runs_rank_0s_calls():
    mesh = Mesh(tp=2, dp=2, pp=3)
    assert job_groups(mesh, mesh.tp_group()) == ((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11))
    assert job_groups(mesh, mesh.dp_group()) == ((0, 2), (1, 3), (4, 6), (5, 7), (8, 10), (9, 11))
    # pipeline pairs between neighbouring stages, forward and back
    assert job_groups(mesh, (0, 4)) == ((0, 4), (1, 5), (2, 6), (3, 7), (4, 8), (5, 9), (6, 10), (7, 11))
    assert job_groups(mesh, (4, 0)) == ((4, 0), (5, 1), (6, 2), (7, 3), (8, 4), (9, 5), (10, 6), (11, 7))


@pytest.mark.parametrize("device", [None, "h100"])
def test_groups_on_links_of_their_own_take_as_long_as_alone(device):
    """TP groups each inside a host, DP groups each on NICs of their own through one non-blocking switch."""
    fabric = {"hosts": 2, "gpus_per_host": 4}
    job = _simulation(fabric, {"tp": 4, "dp": 2}, device=device)
    alone = _simulation(fabric, {"tp": 4, "dp": 2}, device=device, scope="rank0")
    trial = job.plan.trials[0]
    step = job.step_schedule(trial)
    assert {len(job_groups(job.plan.mesh, call.group)) for call in trial.calls} == {2, 4}
    assert (~step.marks).sum() == sum(len(job.call_schedule(call).transfers)
                                     * len(job_groups(job.plan.mesh, call.group)) for call in trial.calls)
    assert step.marks.sum() == 8 * (len(trial.calls) + 1)  # each GPU's compute before each call, and after
    latency_ps = job.run()[0].latency_ps
    assert latency_ps == alone.run()[0].latency_ps
    one_call = Trial(0, trial.calls[:1])
    assert job.run_trial(one_call).latency_ps == alone.run_trial(one_call).latency_ps


def test_each_calls_latency_on_links_of_its_own_is_its_latency_alone():
    """TP groups inside hosts, DP groups on NICs of their own: every group's call, from its first
    transfer's ready time to its last delivery, takes as long as the call alone; summarised per kind."""
    fabric = {"hosts": 2, "gpus_per_host": 4}
    job = _simulation(fabric, {"tp": 4, "dp": 2, "bucket": "100KiB"}, device="h100")
    alone = _simulation(fabric, {"tp": 4, "dp": 2}, scope="rank0")
    trial = job.plan.trials[0]
    record = job.run()[0]
    expected = {}
    for call in trial.calls:
        alone_ps = alone.run_trial(Trial(0, (dataclasses.replace(call, compute_before_ps=0),))).latency_ps
        expected.setdefault(f"{call.stream} {call.op}", []).extend([alone_ps] * len(job_groups(job.plan.mesh,
                                                                                                 call.group)))
    assert set(record.call_latency_ps) == {"tp all_reduce", "dp all_reduce"} == set(expected)
    for kind, latency_ps in record.call_latency_ps.items():
        assert sorted(latency_ps.tolist()) == sorted(expected[kind])
    summary = collect(job, [record]).summary["call_latency_us"]
    buckets = sum(1 for call in trial.calls if call.stream == "dp")
    assert buckets > 1 and summary["dp all_reduce"]["calls"] == len(expected["dp all_reduce"]) == 4 * buckets
    assert summary["tp all_reduce"]["max"] == pytest.approx(max(expected["tp all_reduce"]) / 1e6, abs=1e-9)
    assert "call_latency_us" not in collect(alone, alone.run()).summary


def test_groups_sharing_one_link_each_get_half_of_it():
    """Two DP groups' rings cross one leaf uplink of the NIC's rate: max-min gives each ring half of it,
    so each of a 2-rank ring all-reduce's two steps sends S / 2 at B / 2."""
    fabric = {"topology": "leaf_spine", "hosts": 2, "gpus_per_host": 2,
              "clos": {"hosts_per_leaf": 1, "spines": 1, "oversubscription": 2}}
    simulation = _simulation(fabric, {"tp": 2, "dp": 2})
    size_bytes = 2**20
    call = Call("all_reduce", simulation.plan.mesh.dp_group(), size_bytes)
    route = simulation.route(0, 2)
    uplink = next(simulation.fabric.links[i] for i in route.links if simulation.fabric.links[i].name == "leaf0->spine0")
    assert simulation.route(1, 3).links.count(uplink.index) == 1 and uplink.bandwidth_bps == route.bottleneck_bps
    record = simulation.run_trial(Trial(0, (call,)))
    step_ps = serialisation_ps(8 * size_bytes // 2, uplink.bandwidth_bps / 2) + route.latency_ps
    assert record.latency_ps == 2 * step_ps
    assert record.breakdown.contention_ps == 2 * (step_ps - serialisation_ps(8 * size_bytes // 2, route.bottleneck_bps)
                                        - route.latency_ps)


def test_the_work_estimate_counts_every_group_of_the_step():
    job = _simulation({"hosts": 2, "gpus_per_host": 4}, {"tp": 2, "pp": 2, "dp": 2})
    alone = _simulation({"hosts": 2, "gpus_per_host": 4}, {"tp": 2, "pp": 2, "dp": 2}, scope="rank0")
    step = job.step_schedule(job.plan.trials[0])
    assert transfers_per_trial(job.scenario, job.plan) >= len(step.schedule.transfers)
    # 2 x 2 TP groups, 2 x 2 DP groups, 2 x 2 pipeline pairs: each of rank 0's calls four times, and the marks
    assert transfers_per_trial(job.scenario, job.plan) == 4 * transfers_per_trial(alone.scenario, alone.plan) \
        + step.marks.sum()


def test_a_pipeline_step_lowers_every_stage_program_once_and_counts_its_work():
    """4 stages, DP 2, TP 2: each stage's calls on its own GPUs, a send between stages once."""
    job = _simulation({"hosts": 2, "gpus_per_host": 8}, {"tp": 2, "pp": 4, "dp": 2, "micro_batches": 3},
                      transformer=TINY | {"layers": 4}, device="h100")
    trial = job.plan.trials[0]
    step = job.step_schedule(trial)
    sends = [call for calls, _ in trial.stages for call in calls if call.op == "send_recv"]
    assert len(sends) == 2 * 2 * 3 * (4 - 1)  # each pair's activations and gradients, in both stages' programs
    assert step.marks.sum() == 4 * sum(len(calls) + 1 for calls, _ in trial.stages)
    mesh = job.plan.mesh

    def transfers(call):  # in every group of the call's kind on its stages: 2 TP groups, 2 DP groups, 4 pairs
        return len(job.call_schedule(call).transfers) * len(job_groups(mesh, call.group, along_pp=False))

    assert {len(job_groups(mesh, call.group, along_pp=False)) for call in sends} == {4}
    assert (~step.marks).sum() == sum(transfers(call) for calls, _ in trial.stages for call in calls) \
        - sum(transfers(call) for call in sends) // 2
    assert transfers_per_trial(job.scenario, job.plan) >= len(step.schedule.transfers)
    assert _compute_critical_path_ps(step) <= job.run()[0].latency_ps


def test_a_steps_trials_share_what_no_trial_changes_and_each_reruns_alone_to_its_record():
    """Jitter and launch skew make every trial differ; the step's network part and parts' schedules
    are built once, yet trials run after others, in another order, give what each gives first."""
    impairments = {"jitter": {"distribution": "lognormal", "median": "2us", "sigma": 0.5},
                   "launch_skew": {"distribution": "exponential", "mean": "3us"}}

    def simulation():
        raw = {"name": "t", "seed": 4, "fabric": {"hosts": 4, "gpus_per_host": 2, "topology": "leaf_spine",
                                                  "clos": {"hosts_per_leaf": 2, "spines": 1}},
               "collective": {"algorithm": "ring"}, "impairments": impairments,
               "workload": {"rule": "megatron", "transformer": TINY, "batch_size": 1, "seq_len": 128, "trials": 3,
                            "parallelism": {"tp": 2, "dp": 4, "bucket": "100KiB"}}}
        return Simulation(validate_scenario(raw, "<t>"), "<t>")

    def outcome(record):
        return record.latency_ps, {kind: ps.tolist() for kind, ps in record.call_latency_ps.items()}

    job = simulation()
    records = [outcome(record) for record in job.run()]
    assert len({latency_ps for latency_ps, _ in records}) == 3
    assert job.step_network_part.cache_info().misses == job.step_part_schedules.cache_info().misses == 1
    assert [outcome(job.run_trial(trial)) for trial in reversed(job.plan.trials)] == records[::-1]
    assert [outcome(simulation().run_trial(trial)) for trial in job.plan.trials] == records


@pytest.mark.parametrize("parallelism", [{"tp": 2, "pp": 2, "dp": 4}, {"tp": 2, "pp": 4, "dp": 2, "micro_batches": 3}])
def test_the_pairs_checked_for_routes_are_every_pair_the_lowered_step_joins(parallelism):
    job = _simulation({"hosts": 2, "gpus_per_host": 8}, parallelism, transformer=TINY | {"layers": 4})
    trial = job.plan.trials[0]
    transfers = job.step_schedule(trial).schedule.transfers
    lowered = {(src, dst) for src, dst in zip(transfers.src.tolist(), transfers.dst.tolist()) if src != dst}
    pairs = step_pairs(job.plan.mesh, trial, job.call_schedule)
    assert set(map(tuple, pairs.tolist())) == lowered and len(pairs) == len(lowered)
    rank_0s = {(call.group[src], call.group[dst]) for call in trial.calls
               for src, dst in job.call_schedule(call).transfers.pairs[0].tolist()}
    assert rank_0s < lowered  # what the check once saw: rank 0's groups only


@pytest.mark.parametrize("fabric, bucket_waits", [
    ({"hosts": 1, "gpus_per_host": 2}, False),  # NVLink: a bucket's all-reduce is shorter than a layer's backward
    ({"hosts": 2, "gpus_per_host": 1}, True),  # NICs: the second bucket waits for the first
])
def test_ddp_buckets_overlap_backward_on_the_critical_path_by_hand(fabric, bucket_waits):
    """2 layers, DP 2, two buckets: the LM head's and layer 1's gradients (A, sent once layer 1's backward
    is done), then layer 0's and the embedding's (B, at the end of backward). On the DP stream B follows
    A: the step ends at max(t_B, t_A + T_A) + T_B, t_A and t_B the compute before each launch, T the
    2-rank ring all-reduce alone: 2 steps of S / 2 at the route's rate plus its latency."""
    simulation = _simulation(fabric, {"tp": 1, "dp": 2, "bucket": 1_500_000}, device="h100", seq_len=4096)
    trial = simulation.plan.trials[0]
    first, second = trial.calls
    assert (first.stream, first.blocking, second.stream) == ("dp", False, "dp") and trial.compute_after_ps == 0
    route = simulation.route(0, 1)

    def alone_ps(call):
        return 2 * (serialisation_ps(8 * call.per_rank_bytes // 2, route.bottleneck_bps) + route.latency_ps)

    t_a = first.compute_before_ps
    t_b = t_a + second.compute_before_ps
    assert (t_a + alone_ps(first) > t_b) == bucket_waits
    record = simulation.run()[0]
    assert record.latency_ps == max(t_b, t_a + alone_ps(first)) + alone_ps(second)
    assert record.breakdown.ideal_ps == record.latency_ps
    # what compute did not hide: the step less its compute, here all before B's launch
    summary = collect(simulation, [record]).summary
    exposed_us = summary["exposed_comm_us"]["p50"]
    assert exposed_us == pytest.approx((record.latency_ps - t_b) / 1e6, abs=1e-9)
    assert exposed_us < (alone_ps(first) + alone_ps(second)) / 1e6  # A is partly hidden under backward
    # the critical path: the compute before B's launch then B, or, when A is still running then, the compute
    # before A's, A and B (compute and buckets fill it: compute + buckets = the step); the bucket with the most
    # time on it, and the most loaded link its transfers took
    path = record.critical_path
    assert path.compute_ps == (t_a if bucket_waits else t_b)
    assert path.compute_ps + path.group_ps == record.latency_ps
    on_path = {0: alone_ps(first), 1: alone_ps(second)} if bucket_waits else {1: alone_ps(second)}
    number = max(on_path, key=lambda n: (on_path[n], -n))
    assert (path.group, path.gpus, path.group_ps, path.kinds_ps) == ("DP group 0", (0, 1), sum(on_path.values()),
                                                                     (("dp all_reduce", sum(on_path.values())),))
    assert (path.call, path.call_ps) == (f"dp all_reduce {number}", on_path[number])
    route_links = set(route.links) | set(simulation.route(1, 0).links)
    load = {simulation.fabric.links[link].name: record.link_usage.carried_bits[link]
            / simulation.fabric.links[link].bandwidth_bps / (record.latency_ps / 1e12) for link in route_links}
    assert path.link_utilization == max(load.values()) == load[path.link]
    assert summary["critical_path"] == [{
        "trial": 0, "latency_us": record.latency_ps / 1e6, "compute_us": path.compute_ps / 1e6,
        "by_kind_us": {"dp all_reduce": path.group_ps / 1e6}, "group": "DP group 0", "gpus": [0, 1],
        "group_us": path.group_ps / 1e6, "call": path.call, "call_us": path.call_ps / 1e6,
        "link": path.link, "link_utilization": path.link_utilization}]
    assert summary["bubble_us"] == 0.0  # no pipeline: every GPU computes the whole critical path


def test_the_packet_model_plays_rank_0s_calls_and_refuses_the_whole_job():
    packet = {"hosts": 2, "gpus_per_host": 2, "model": "packet"}
    assert _simulation(packet, {"tp": 2, "dp": 2}).plan.mesh is None
    with pytest.raises(ScenarioError, match="workload.scope: expected fabric.model flow"):
        _simulation(packet, {"tp": 2, "dp": 2}, scope="job")


def test_the_kccb_rules_run_one_call_at_a_time_and_refuse_a_scope():
    raw = {"name": "t", "workload": {"rule": "data_sizes", "data_sizes": [1024], "scope": "job"}}
    with pytest.raises(ScenarioError, match="workload.scope: expected no scope under rule data_sizes"):
        validate_scenario(raw, "<t>")


def _compute_critical_path_ps(step) -> int:
    """The step's end with every transfer taking no time: the longest path of its marks' compute."""
    table = step.schedule.transfers
    end_ps = np.zeros(len(table), dtype=np.int64)
    for deps in (table.after, table.after_sent):
        assert (deps.ids < np.repeat(np.arange(len(table)), deps.counts())).all()  # ids in a topological order
    owners = [np.repeat(np.arange(len(table)), deps.counts()) for deps in (table.after, table.after_sent)]
    parents = [deps.ids for deps in (table.after, table.after_sent)]
    waits_on = [[] for _ in range(len(table))]
    for owner_ids, parent_ids in zip(owners, parents):
        for owner, parent in zip(owner_ids.tolist(), parent_ids.tolist()):
            waits_on[owner].append(parent)
    for tid in range(len(table)):
        end_ps[tid] = max((end_ps[p] for p in waits_on[tid]), default=0) + step.compute_ps[tid]
    return int(end_ps.max())


def _pipeline_programs(mesh, micro_batches, forward_ps, backward_ps):
    """Each stage's 1F1B program of nothing but compute and the sends between stages."""
    programs = []
    for stage in range(mesh.pp):
        calls, pending_ps = [], 0
        me, previous, following = (mesh.rank(0, 0, s) for s in (stage, stage - 1, stage + 1))
        for forward, _ in one_f_one_b(mesh.pp, stage, micro_batches):
            if forward and stage:
                calls.append(Call("send_recv", (previous, me), 4096, pending_ps, "pp"))
                pending_ps = 0
            if not forward and stage < mesh.pp - 1:
                calls.append(Call("send_recv", (following, me), 4096, pending_ps, "pp"))
                pending_ps = 0
            pending_ps += forward_ps if forward else backward_ps
            if forward and stage < mesh.pp - 1:
                calls.append(Call("send_recv", (me, following), 4096, pending_ps, "pp"))
                pending_ps = 0
            if not forward and stage:
                calls.append(Call("send_recv", (me, previous), 4096, pending_ps, "pp"))
                pending_ps = 0
        programs.append((tuple(calls), pending_ps))
    return tuple(programs)


def test_the_1f1b_order_of_megatron():
    assert one_f_one_b(4, 0, 6) == ((True, 0), (True, 1), (True, 2), (True, 3), (False, 0), (True, 4), (False, 1),
                                    (True, 5), (False, 2), (False, 3), (False, 4), (False, 5))
    assert one_f_one_b(4, 3, 2) == ((True, 0), (False, 0), (True, 1), (False, 1))
    assert one_f_one_b(4, 0, 2) == ((True, 0), (True, 1), (False, 0), (False, 1))  # fewer micro-batches than stages


@pytest.mark.parametrize("stages, micro_batches", [(2, 1), (2, 4), (4, 4), (4, 8), (3, 7)])
def test_1f1b_pipelines_show_the_bubble_fraction(stages, micro_batches):
    """Stages of equal compute, communication taking no time: the step is (m + p - 1)(t_f + t_b), so the
    idle share of each stage is (p - 1) / (m + p - 1)."""
    simulation = _simulation({"hosts": 1, "gpus_per_host": 4}, {"tp": 1, "pp": 2, "dp": 2})
    mesh = Mesh(tp=1, dp=1, pp=stages)
    forward_ps, backward_ps = 3_000_001, 6_000_017
    step = lower_step(_pipeline_programs(mesh, micro_batches, forward_ps, backward_ps), mesh,
                      simulation.call_schedule)
    step_ps = _compute_critical_path_ps(step)
    assert step_ps == (micro_batches + stages - 1) * (forward_ps + backward_ps)
    busy_ps = micro_batches * (forward_ps + backward_ps)
    assert Fraction(step_ps - busy_ps, step_ps) == Fraction(stages - 1, micro_batches + stages - 1)
    # the results' figures: the compute critical path, the busiest GPU's compute, the bubble between
    assert step_compute(step) == StepCompute(step_ps, busy_ps) and step_compute(step).bubble_ps == step_ps - busy_ps


def test_a_2_stage_pipeline_on_the_critical_path_by_hand():
    """TP 1, DP 1, 2 stages, 2 micro-batches over NVLink. Stage 0: F, send a0, F, send a1, receive g0, B,
    receive g1, B; stage 1: receive a0, F', B', send g0, receive a1, F', B', send g1 (F', B' with the LM
    head's compute), each send holding its sender until delivered, T alone. g0 arrives at
    G0 = F + T + F' + B' + T, g1 at G0 + F' + B' + T, and the step ends a backward later."""
    simulation = _simulation({"hosts": 1, "gpus_per_host": 2}, {"tp": 1, "pp": 2, "micro_batches": 2},
                             device="h100")
    trial = simulation.plan.trials[0]
    (first, first_after_ps), (last, last_after_ps) = trial.stages
    assert [call.group for call in first] == [(0, 1), (0, 1), (1, 0), (1, 0)] and last_after_ps == 0
    assert [call.group for call in last] == [(0, 1), (1, 0), (0, 1), (1, 0)]
    forward_ps, backward_ps = first[0].compute_before_ps, first_after_ps
    assert first[1].compute_before_ps == forward_ps and first[3].compute_before_ps == backward_ps
    head_forward_ps, head_backward_ps = last[1].compute_before_ps, last[3].compute_before_ps
    assert head_forward_ps > forward_ps and head_backward_ps > backward_ps
    send_ps, back_ps = (simulation.run_trial(Trial(0, (dataclasses.replace(call, compute_before_ps=0),))).latency_ps
                        for call in (first[0], last[1]))
    assert send_ps == back_ps
    g0_ps = forward_ps + send_ps + head_forward_ps + send_ps
    g1_ps = g0_ps + head_forward_ps + send_ps
    record = simulation.run()[0]
    assert record.latency_ps == max(g0_ps + backward_ps, g1_ps) + backward_ps
    assert record.breakdown.ideal_ps == record.latency_ps
    assert record.call_latency_ps["pp send_recv"].tolist() == [send_ps] * 4  # each send as long as alone
