"""The critical path of the whole job's step, the pipeline bubble and FSDP's prefetch, on cases known
by construction (DDP's buckets on the critical path: test_workload_job).

Of two jobs whose rings cross the same leaf uplinks, the larger ends last: its DP group holds the path,
and the uplink both share is its most loaded link. 1F1B stages of equal compute idle (p - 1) / (m + p - 1)
of the step's compute critical path, (p - 1) / (v m + p - 1) with v chunks each interleaved. FSDP's
prefetched all-gathers give a step whose critical path follows by hand.
"""

import dataclasses
from fractions import Fraction

import pytest

from fabricsim.config import validate_scenario
from fabricsim.output.results import collect
from fabricsim.runner.simulation import Simulation
from fabricsim.output.summary_text import step_lines
from fabricsim.workload import Call, Trial
from fabricsim.workload.critical_path import call_number, group_name, step_compute
from fabricsim.workload.job import interleaved_one_f_one_b, lower_step
from fabricsim.workload.placement import Mesh
from tests.test_workload_job import TINY, _compute_critical_path_ps, _simulation, engine  # noqa: F401


def test_groups_are_named_by_their_place_in_the_mesh():
    mesh = Mesh(tp=2, dp=3, pp=2)
    assert group_name("tp", mesh.tp_group(2, 1), mesh) == "TP group 5"
    assert group_name("dp", mesh.dp_group(1, 0), mesh) == "DP group 1 of stage 0"
    assert group_name("dp", (1, 3), Mesh(tp=2, dp=2, pp=1)) == "DP group 1"
    assert group_name("pp", (mesh.rank(1, 2, 1), mesh.rank(1, 2, 0)), mesh) == "PP stage 1->0 (TP 1, DP 2)"
    calls = (Call("all_reduce", (0, 1), 8, stream="tp"), Call("send_recv", (0, 6), 8, stream="pp"),
             Call("all_reduce", (6, 7), 8, stream="tp"), Call("all_reduce", (0, 1), 8, stream="tp"))
    assert [call_number(calls, index, mesh) for index in range(4)] == [0, 0, 0, 1]  # per stage and kind


def test_the_larger_of_two_jobs_holds_the_path_on_the_uplink_they_share():
    """Each job a 2-rank ring across the two leaves (fragmented, seed 1), sharing each leaf's one uplink:
    the job with the larger model ends the step, on its DP group, the shared uplink its most loaded link."""
    workload = {"rule": "megatron", "batch_size": 1, "seq_len": 128, "trials": 3, "parallelism": {"dp": 2}}
    raw = {"name": "t", "seed": 1, "collective": {"algorithm": "ring"},
           "fabric": {"topology": "leaf_spine", "hosts": 4, "gpus_per_host": 1,
                      "clos": {"hosts_per_leaf": 2, "spines": 1, "oversubscription": 2}},
           "jobs": [{"name": "small", "hosts": 2, "placement": "fragmented", "workload": workload | {"transformer": TINY}},
                    {"name": "large", "hosts": 2, "placement": "fragmented",
                     "workload": workload | {"transformer": TINY | {"layers": 6}}}]}
    simulation = Simulation(validate_scenario(raw, "<t>"), "<t>")
    _, large = simulation.jobs
    leaf_of = {0: 0, 1: 0, 2: 1, 3: 1}
    assert all({leaf_of[gpu] for gpu in job.gpus} == {0, 1} for job in simulation.jobs)
    records = simulation.run()
    for record in records:
        assert record.job_latency_ps[1] > record.job_latency_ps[0] and record.latency_ps == record.job_latency_ps[1]
        path = record.critical_path
        assert (path.group, path.gpus) == ("large: DP group 0", large.gpus)
        assert path.call.startswith("dp all_reduce ") and path.link.startswith("leaf") and "->spine0" in path.link
        assert path.compute_ps + sum(kind_ps for _, kind_ps in path.kinds_ps) == record.latency_ps
    summary = collect(simulation, records).summary
    assert [row["trial"] for row in summary["critical_path"]] == sorted(
        range(3), key=lambda trial: (-records[trial].latency_ps, -trial))
    assert summary["critical_path"][0]["trial"] == summary["tail_causes"]["max"]["trial"]
    head, group, link = step_lines(summary)
    assert head.startswith(f"critical path of the slowest trial {summary['critical_path'][0]['trial']}: compute ")
    assert "dp all_reduce" in head
    assert group.startswith("  most on it: large: DP group 0 (") and "its longest call dp all_reduce " in group
    assert link.startswith("  most loaded link on it: leaf")


def test_a_pipeline_steps_bubble_is_split_out_of_its_exposed_communication():
    """A 2-stage megatron step: the summary's bubble is the compute critical path less the busiest GPU's
    compute, and the exposed communication is the step less that critical path (no longer the bubble's)."""
    simulation = _simulation({"hosts": 1, "gpus_per_host": 2}, {"tp": 1, "pp": 2, "micro_batches": 2},
                             device="h100")
    record = simulation.run()[0]
    step = simulation.step_schedule(simulation.plan.trials[0])
    compute = step_compute(step)
    stage_ps = [sum(call.compute_before_ps for call in calls) + after_ps for calls, after_ps
                in simulation.plan.trials[0].stages]
    assert compute.busiest_ps == max(stage_ps) and compute.critical_ps == _compute_critical_path_ps(step)
    summary = collect(simulation, [record]).summary
    assert summary["bubble_us"] == compute.bubble_ps / 1e6 > 0
    assert summary["bubble_fraction"] == compute.bubble_ps / compute.critical_ps
    assert summary["exposed_comm_us"]["p50"] == pytest.approx((record.latency_ps - compute.critical_ps) / 1e6,
                                                               abs=1e-9)
    assert step_lines(summary)[0].startswith("pipeline bubble: ")
    assert record.critical_path.group.startswith("PP stage ")


def test_fsdp_prefetch_on_the_critical_path_by_hand():
    """FSDP, DP 2 over NVLink, 2 layers, one micro-batch. On the DP stream, in order: forward all-gathers
    of the root unit (R), layer 0 (issued as R's compute starts) and layer 1 (as layer 0's starts); backward
    all-gathers of R, layer 1 (prefetched as R's backward starts), layer 0 (as layer 1's starts), then the
    reduce-scatters of layer 1 (after its backward), layer 0 and R. A unit's compute waits only for its
    own all-gather; no reduce-scatter holds the compute. With each call's time alone (a_R, a_L, r_L, r_R),
    and the compute between, the step is the recurrence below."""
    simulation = _simulation({"hosts": 1, "gpus_per_host": 2}, {"tp": 1, "dp": 2, "dp_mode": "fsdp"}, device="h100")
    alone = _simulation({"hosts": 1, "gpus_per_host": 2}, {"tp": 1, "dp": 2, "dp_mode": "fsdp"}, device="h100",
                        scope="rank0")
    calls = simulation.plan.trials[0].calls
    assert [(call.op, call.blocking) for call in calls] == [("all_gather", False)] * 6 + [("reduce_scatter", False)] * 3
    # the compute before each call: layer 0's forward (f0), then layer 1's and the head's (rest); the head's
    # backward (hb); layer 1's backward (b1), layer 0's (b0)
    f0_ps, head_back_ps = calls[3].waits[0][0], calls[5].compute_before_ps
    rest_ps, b1_ps, b0_ps = calls[3].compute_before_ps - f0_ps, calls[6].compute_before_ps, calls[7].compute_before_ps
    assert min(f0_ps, rest_ps - f0_ps, head_back_ps, b1_ps, b0_ps) > 0
    assert simulation.plan.trials[0].compute_after_ps == 0
    assert [(call.compute_before_ps, call.waits) for call in calls] == [
        (0, ()), (0, ((0, 0),)), (0, ((0, 1),)), (f0_ps + rest_ps, ((f0_ps, 2),)), (0, ((0, 3),)),
        (head_back_ps, ((head_back_ps, 4),)), (b1_ps, ()), (b0_ps, ((0, 5),)), (0, ())]
    a_root, a_layer, _, _, _, _, r_layer, _, r_root = (
        alone.run_trial(Trial(0, (dataclasses.replace(call, compute_before_ps=0, waits=()),))).latency_ps
        for call in calls)
    gathered_layer_0 = a_root + a_layer  # forward: R's gather, then layer 0's, then layer 1's back to back
    gathered_layer_1 = gathered_layer_0 + a_layer
    forward_ps = max(gathered_layer_0 + f0_ps, gathered_layer_1) + rest_ps
    root_back = forward_ps + a_root  # backward: R's gather waits for the forward's end
    layer_1_back = max(root_back + head_back_ps, root_back + a_layer)  # the head's backward, layer 1's gather
    layer_0_gathered = layer_1_back + a_layer
    layer_0_back = max(layer_1_back + b1_ps, layer_0_gathered)
    rs_layer_1 = max(layer_1_back + b1_ps, layer_0_gathered) + r_layer
    compute_end = layer_0_back + b0_ps
    step_ps = max(max(compute_end, rs_layer_1) + r_layer + r_root, compute_end)
    record = simulation.run()[0]
    assert record.latency_ps == step_ps and record.breakdown.ideal_ps == step_ps
    sequential_ps = alone.run()[0].latency_ps  # the same calls one after another, compute between
    assert step_ps < sequential_ps


def _interleaved_programs(mesh, micro_batches, chunks, forward_ps, backward_ps):
    """Each stage's interleaved 1F1B program of nothing but each chunk's compute and the sends between
    virtual stages (chunk c of the last stage sends to chunk c + 1 of the first)."""
    programs, stages = [], mesh.pp
    for stage in range(stages):
        calls, pending_ps = [], 0
        me, previous, following = (mesh.rank(0, 0, s % stages) for s in (stage, stage - 1, stage + 1))
        for forward, _, chunk in interleaved_one_f_one_b(stages, stage, micro_batches, chunks):
            virtual = chunk * stages + stage
            first, last = virtual == 0, virtual == stages * chunks - 1
            if not (first if forward else last):
                calls.append(Call("send_recv", (previous, me) if forward else (following, me), 4096, pending_ps, "pp"))
                pending_ps = 0
            pending_ps += forward_ps if forward else backward_ps
            if not (last if forward else first):
                calls.append(Call("send_recv", (me, following) if forward else (me, previous), 4096, pending_ps, "pp"))
                pending_ps = 0
        programs.append((tuple(calls), pending_ps))
    return tuple(programs)


def test_megatrons_interleaved_1f1b_order():
    assert interleaved_one_f_one_b(4, 3, 4, 2) == (
        (True, 0, 0), (True, 1, 0), (True, 2, 0), (True, 3, 0), (True, 0, 1), (False, 0, 1), (True, 1, 1),
        (False, 1, 1), (True, 2, 1), (False, 2, 1), (True, 3, 1), (False, 3, 1), (False, 0, 0), (False, 1, 0),
        (False, 2, 0), (False, 3, 0))
    for stage in range(4):  # every chunk's forward and backward of every micro-batch, once
        passes = interleaved_one_f_one_b(4, stage, 8, 3)
        assert sorted(passes) == sorted((forward, k, c) for forward in (True, False) for k in range(8) for c in range(3))


@pytest.mark.parametrize("stages, micro_batches, chunks", [(3, 3, 2), (3, 6, 3), (4, 4, 2), (4, 8, 4)])
def test_the_bubble_of_interleaved_1f1b_shrinks_by_the_chunks(stages, micro_batches, chunks):
    """v chunks per stage of equal compute: each GPU computes v m (t_f + t_b) (t per chunk) and idles
    (p - 1)(t_f + t_b), a bubble of (p - 1) / (v m + p - 1) (Narayanan et al. 2021)."""
    simulation = _simulation({"hosts": 1, "gpus_per_host": 4}, {"tp": 1, "pp": 2, "dp": 2})
    mesh = Mesh(tp=1, dp=1, pp=stages)
    forward_ps, backward_ps = 3_000_001, 6_000_017
    step = lower_step(_interleaved_programs(mesh, micro_batches, chunks, forward_ps, backward_ps), mesh,
                      simulation.call_schedule)
    compute = step_compute(step)
    assert compute.critical_ps == _compute_critical_path_ps(step)
    assert compute.busiest_ps == chunks * micro_batches * (forward_ps + backward_ps)
    assert Fraction(compute.bubble_ps, compute.critical_ps) == Fraction(stages - 1, chunks * micro_batches + stages - 1)


def test_a_megatron_step_with_virtual_stages():
    """TP 1, PP 4, DP 2, 8 layers in 2 chunks per stage: each stage sends its chunks' activations on, the last
    stage its first chunk's to the first stage; the bubble is smaller than without chunks."""
    fabric, parallelism = {"hosts": 1, "gpus_per_host": 8}, {"tp": 1, "pp": 4, "dp": 2, "micro_batches": 4}
    interleaved = _simulation(fabric, parallelism | {"virtual_stages": 2}, device="h100", transformer=TINY | {"layers": 8})
    plain = _simulation(fabric, parallelism, device="h100", transformer=TINY | {"layers": 8})
    stages = interleaved.plan.trials[0].stages
    last_sends = {call.group for call in stages[3][0] if call.op == "send_recv" and call.group[0] == 6}
    assert last_sends == {(6, 0), (6, 4)}  # on to stage 0's second chunk, and gradients back to stage 2
    assert sum(len(calls) for calls, _ in stages) > sum(len(calls) for calls, _ in plain.plan.trials[0].stages)
    records = [simulation.run()[0] for simulation in (interleaved, plain)]
    summaries = [collect(simulation, [record]).summary for simulation, record in zip((interleaved, plain), records)]
    assert 0 < summaries[0]["bubble_fraction"] < summaries[1]["bubble_fraction"]
    assert "virtual_stages" not in plain.scenario.resolved()["workload"]["parallelism"]
    assert interleaved.scenario.resolved()["workload"]["parallelism"]["virtual_stages"] == 2
