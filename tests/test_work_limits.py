"""Work limits: the estimate refuses exactly past its limits, names the key, bounds the transfers of
every schedule from above, and --allow-large lets the work through on purpose."""

import pytest

from fabricsim.collectives import ALGORITHMS, build_schedule
from fabricsim.config import ScenarioError
from fabricsim.runner import work_limits
from fabricsim.runner.work_limits import (MAX_GPUS, MAX_TRIALS, check_work, packet_events, trial_work,
                                          transfers_per_trial, wire_bytes, work_problem)
from fabricsim.workload import plan_workload
from tests.conftest import make_scenario


def _sizes(trials: int, **sections):
    return make_scenario(workload={"rule": "data_sizes", "data_sizes": ["1KiB", "2KiB"], "trials": trials}, **sections)


def test_the_trial_limit_is_exact_and_names_the_key():
    assert work_problem(_sizes(MAX_TRIALS // 2), "s.yaml") is None
    key, text = work_problem(_sizes(MAX_TRIALS // 2 + 1), "s.yaml")
    assert key == "workload.trials" and f"got {MAX_TRIALS + 2}" in text


def test_the_gpu_limit_is_exact():
    """At the limit the fabric passes (a collective over all of its ranks is then past the transfer limit)."""
    key, text = work_problem(_sizes(1, fabric={"hosts": MAX_GPUS // 8, "gpus_per_host": 8}), "s.yaml")
    assert key == "fabric.hosts" and text.startswith("at most 33554432 transfers per trial")
    key, text = work_problem(_sizes(1, fabric={"hosts": MAX_GPUS // 8 + 1, "gpus_per_host": 8}), "s.yaml")
    assert key == "fabric.hosts" and text == f"at most {MAX_GPUS} GPUs (hosts x gpus_per_host), got {MAX_GPUS + 8}"


def test_allow_large_lets_the_work_through_on_purpose():
    scenario = _sizes(MAX_TRIALS)
    with pytest.raises(ScenarioError, match="s.yaml: workload.trials: .* --allow-large runs it anyway"):
        check_work(scenario, "s.yaml")
    check_work(scenario, "s.yaml", allow_large=True)


@pytest.mark.parametrize("op, algorithm", sorted(ALGORITHMS))
def test_every_schedule_has_at_most_the_transfers_the_estimate_counts(op, algorithm):
    hosts, gpus_per_host, chunks = {"pat": (16, 1, 3), "nvls": (1, 16, 3)}.get(algorithm, (4, 4, 3))  # PAT: one
    nvls = {"nvswitch": {"nvls_bandwidth": "200GB/s"}} if algorithm.startswith("nvls") else {}
    nvls |= {"clos": {"sharp": True}} if algorithm.startswith("collnet") else {}  # GPU per host, NVLS one host
    scenario = make_scenario(fabric={"hosts": hosts, "gpus_per_host": gpus_per_host, **nvls},
                             collective={"op": op, "algorithm": algorithm, "chunks": chunks},
                             workload={"rule": "data_sizes", "data_sizes": ["3MiB"], "trials": 1})
    schedule = build_schedule(op, algorithm, hosts * gpus_per_host, 3 * 2**20, chunks, local_ranks=gpus_per_host)
    plan = plan_workload(scenario, hosts * gpus_per_host, "s.yaml")
    assert len(schedule.transfers.src) <= transfers_per_trial(scenario, plan)
    assert schedule.transfers.nbytes.sum() <= wire_bytes(plan.trials[0].calls[0])


def test_the_estimate_walks_each_trial_shapes_calls_once(monkeypatch):
    """Transfers, packets, DCQCN's timers and the clock's bound all come of one walk per trial shape."""
    scenario = _sizes(3, fabric={"hosts": 4, "model": "packet", "packet": {"dcqcn": {"enabled": True}}})
    walked = []
    walk = work_limits._trial_calls
    monkeypatch.setattr(work_limits, "_trial_calls", lambda plan, shape: walked.append(shape) or walk(plan, shape))
    check_work(scenario, "s.yaml")
    assert [shape.per_rank_bytes for shape in walked] == [(1024,), (2048,)]
    work = trial_work(scenario, plan_workload(scenario, 4, "s.yaml"))
    (call,) = walked[1].calls
    assert work.wire_bytes == wire_bytes(call)  # each measure the largest trial's: the larger size's
    assert packet_events(scenario, work) > work.wire_bytes // scenario.fabric.nic.mtu_bytes  # and the timers
