"""The whole job's step: every group of the mesh runs its calls at once on the shared fabric.

Groups on links of their own take exactly as long together as alone; groups that share one
bottleneck link split it max-min, which has a closed form for identical rings.
"""

import pytest

from fabricsim.config import ScenarioError, validate_scenario
from fabricsim.engine.models import FlowModel
from fabricsim.results import collect
from fabricsim.runner import Simulation
from fabricsim.schedule_times import serialisation_ps
from fabricsim.workload import Call, Trial
from fabricsim.workload.job import job_groups
from fabricsim.workload.placement import Mesh
from fabricsim.work_limits import transfers_per_trial

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
    assert record.contention_ps == 2 * (step_ps - serialisation_ps(8 * size_bytes // 2, route.bottleneck_bps)
                                        - route.latency_ps)


def test_the_work_estimate_counts_every_group_of_the_step():
    job = _simulation({"hosts": 2, "gpus_per_host": 4}, {"tp": 2, "pp": 2, "dp": 2})
    alone = _simulation({"hosts": 2, "gpus_per_host": 4}, {"tp": 2, "pp": 2, "dp": 2}, scope="rank0")
    step = job.step_schedule(job.plan.trials[0])
    assert transfers_per_trial(job.scenario, job.plan) >= len(step.schedule.transfers)
    # 2 x 2 TP groups, 2 x 2 DP groups, 2 x 2 pipeline pairs: each of rank 0's calls four times, and the marks
    assert transfers_per_trial(job.scenario, job.plan) == 4 * transfers_per_trial(alone.scenario, alone.plan) \
        + step.marks.sum()


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
    assert record.ideal_ps == record.latency_ps
    # what compute did not hide: the step less its compute, here all before B's launch
    exposed_us = collect(simulation, [record]).summary["exposed_comm_us"]["p50"]
    assert exposed_us == pytest.approx((record.latency_ps - t_b) / 1e6, abs=1e-9)
    assert exposed_us < (alone_ps(first) + alone_ps(second)) / 1e6  # A is partly hidden under backward


def test_the_packet_model_plays_rank_0s_calls_and_refuses_the_whole_job():
    packet = {"hosts": 2, "gpus_per_host": 2, "model": "packet"}
    assert _simulation(packet, {"tp": 2, "dp": 2}).plan.mesh is None
    with pytest.raises(ScenarioError, match="workload.scope: expected fabric.model flow"):
        _simulation(packet, {"tp": 2, "dp": 2}, scope="job")


def test_the_kccb_rules_run_one_call_at_a_time_and_refuse_a_scope():
    raw = {"name": "t", "workload": {"rule": "data_sizes", "data_sizes": [1024], "scope": "job"}}
    with pytest.raises(ScenarioError, match="workload.scope: expected no scope under rule data_sizes"):
        validate_scenario(raw, "<t>")
