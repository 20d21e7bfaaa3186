"""Several jobs on one fabric: each job's step in the shared step, against the job alone.

Jobs on links of their own take exactly what each takes alone; two identical jobs whose rings cross
the same leaf uplinks split them max-min, half each; a placement that does not fit is refused.
"""

import json

import pytest
import yaml

from fabricsim.cli import main
from fabricsim.collectives.schedule_times import serialisation_ps
from fabricsim.config import ScenarioError, load_scenario, validate_scenario
from fabricsim.config.matrix import load_variants
from fabricsim.output.results import collect
from fabricsim.runner import work_limits
from fabricsim.runner.simulation import Simulation
from fabricsim.runner.work_limits import transfers_per_trial
from tests.conftest import SCENARIOS

TINY = {"name": "tiny", "hidden_size": 256, "layers": 2, "heads": 8, "kv_heads": 4, "ffn_size": 512,
        "vocab_size": 1000}
WORKLOAD = {"rule": "megatron", "transformer": TINY, "batch_size": 1, "seq_len": 128, "trials": 2,
            "parallelism": {"dp": 2}}
LEAF_SPINE = {"topology": "leaf_spine", "hosts": 4, "gpus_per_host": 1,
              "clos": {"hosts_per_leaf": 2, "spines": 1, "oversubscription": 2}}


def _raw(fabric, placement="packed", seed=0, jobs=2):
    return {"name": "t", "seed": seed, "fabric": fabric, "collective": {"algorithm": "ring"},
            "jobs": [{"hosts": 2, "placement": placement, "workload": WORKLOAD} for _ in range(jobs)]}


def _simulation(raw):
    return Simulation(validate_scenario(raw, "<t>"), "<t>")


def test_jobs_on_links_of_their_own_each_take_what_one_takes_alone():
    """Packed on one non-blocking switch: each job's NICs are its own."""
    shared = _simulation(_raw({"hosts": 4}))
    alone = _simulation({"name": "t", "fabric": {"hosts": 2}, "collective": {"algorithm": "ring"},
                         "workload": WORKLOAD})
    assert [job.gpus for job in shared.jobs] == [(0, 1), (2, 3)]
    alone_ps = alone.run()[0].latency_ps
    for record in shared.run():
        assert record.job_latency_ps == record.job_alone_ps == (alone_ps, alone_ps)
        assert record.latency_ps == alone_ps
    summary = collect(shared, shared.run()).summary
    assert [job["slowdown"] for job in summary["jobs"]] == [1.0, 1.0]


def test_two_jobs_sharing_the_leaf_uplinks_each_get_half():
    """Each job a 2-rank ring across the two leaves (fragmented, seed 1): both rings' flows cross each
    leaf's one uplink of the NIC's rate, so each of the ring's two steps sends S / 2 at B / 2."""
    shared = _simulation(_raw(LEAF_SPINE, "fragmented", seed=1))
    leaf_of = {0: 0, 1: 0, 2: 1, 3: 1}
    assert all({leaf_of[gpu] for gpu in job.gpus} == {0, 1} for job in shared.jobs)
    (call,) = shared.jobs[0].plan.trials[0].calls
    src, dst = shared.jobs[0].gpus
    route = shared.route(src, dst)
    uplink = next(shared.fabric.links[i] for i in route.links if shared.fabric.links[i].name.endswith("->spine0"))
    assert uplink.bandwidth_bps == route.bottleneck_bps
    step_ps = serialisation_ps(8 * call.per_rank_bytes // 2, uplink.bandwidth_bps / 2) + route.latency_ps
    alone_ps = serialisation_ps(8 * call.per_rank_bytes // 2, uplink.bandwidth_bps) + route.latency_ps
    record = shared.run()[0]
    assert record.job_latency_ps == (2 * step_ps, 2 * step_ps)
    assert record.job_alone_ps == (2 * alone_ps, 2 * alone_ps)
    assert record.latency_ps == 2 * step_ps


def test_the_terminal_names_each_jobs_step_shared_and_alone_and_its_slowdown(tmp_path, capsys):
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(_raw(LEAF_SPINE, "fragmented", seed=1)))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("job ")]
    assert len(lines) == 2 and all(" 2 GPUs, step p50 " in line and "(alone " in line for line in lines)
    jobs = json.loads((tmp_path / "out" / "summary.json").read_text())["jobs"]
    for line, job in zip(lines, jobs):  # the closed form above: twice as long less the latency's share
        assert 1.9 < job["slowdown"] < 2 and line.endswith(f"slowdown {job['slowdown']:.2f}x")
        assert job["slowdown"] == pytest.approx(job["latency_us"]["p50"] / job["alone_us"]["p50"], rel=1e-9)


def test_fragmented_placement_is_fixed_by_the_seed():
    placements = {seed: [job.gpus for job in _simulation(_raw(LEAF_SPINE, "fragmented", seed)).jobs]
                  for seed in range(4)}
    assert placements[1] == [job.gpus for job in _simulation(_raw(LEAF_SPINE, "fragmented", 1)).jobs]
    assert len({tuple(p) for p in placements.values()}) > 1
    assert all(sorted(a + b) == [0, 1, 2, 3] for a, b in placements.values())


def _placed(fabric, *jobs):
    """Each job's hosts (two GPUs each)."""
    raw = _raw(fabric | {"gpus_per_host": 2}) | {"jobs": [{"hosts": hosts, "placement": placement,
                                                            "workload": WORKLOAD | {"parallelism": {"dp": 2 * hosts}}}
                                                           for hosts, placement in jobs]}
    return [tuple(gpu // 2 for gpu in job.gpus[::2]) for job in _simulation(raw).jobs]


def test_rail_aligned_keeps_a_job_under_one_leaf_or_on_whole_leaves():
    assert _placed(LEAF_SPINE, (1, "packed"), (2, "packed"), (1, "packed")) == [(0,), (1, 2), (3,)]
    assert _placed(LEAF_SPINE, (1, "packed"), (2, "rail_aligned"), (1, "packed")) == [(0,), (2, 3), (1,)]
    assert _placed(LEAF_SPINE, (3, "rail_aligned"), (1, "rail_aligned")) == [(0, 1, 2), (3,)]
    # a rail-optimized fabric's rail switches span every host: rail_aligned packs
    rails = {"topology": "rail_optimized", "hosts": 4}
    assert _placed(rails, (1, "packed"), (2, "rail_aligned")) == [(0,), (1, 2)]


def test_the_work_estimate_counts_every_job(monkeypatch):
    """A limit one job's transfers meet: one job passes it, two jobs are past it."""
    one, two = (validate_scenario(_raw({"hosts": 4}, jobs=jobs), "<t>") for jobs in (1, 2))
    one_job = Simulation(one, "<t>")
    step = one_job.step_schedule(one_job.plan.trials[0])
    assert transfers_per_trial(one, one_job.plan) >= len(step.schedule.transfers)
    monkeypatch.setattr(work_limits, "MAX_TRANSFERS_PER_TRIAL", transfers_per_trial(one, one_job.plan))
    assert work_limits.work_problem(one, "<t>") is None
    key, text = work_limits.work_problem(two, "<t>")
    assert key == "fabric.hosts" and f"got about {2 * transfers_per_trial(one, one_job.plan)}" in text


def test_the_resolved_scenario_has_the_jobs_and_loads_back():
    scenario = validate_scenario(_raw({"hosts": 4}), "<t>")
    resolved = scenario.resolved()
    assert "workload" not in resolved and len(resolved["jobs"]) == 2
    assert validate_scenario(resolved, "<t>") == scenario
    plain = validate_scenario({"name": "t", "workload": WORKLOAD | {"parallelism": {"dp": 4}}}, "<t>")
    assert "jobs" not in plain.resolved()


def test_set_and_matrix_reach_keys_inside_each_job(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_raw(LEAF_SPINE) | {"matrix": {"jobs.1.placement": ["packed", "fragmented"]}}))
    scenario = load_scenario(path, ("jobs.1.placement=fragmented", "jobs.0.workload.parallelism.dp=2"))
    assert [job.placement for job in scenario.jobs] == ["packed", "fragmented"]
    assert scenario.jobs[0].workload.parallelism.dp == 2 == scenario.workload.parallelism.dp
    variants = load_variants([str(path)])
    assert [variant.label for variant in variants] == ["jobs.1.placement=packed", "jobs.1.placement=fragmented"]
    assert [[job.placement for job in variant.scenario.jobs] for variant in variants] == [
        ["packed", "packed"], ["packed", "fragmented"]]


@pytest.mark.parametrize("change, expected", [
    (lambda raw: raw["jobs"].append(raw["jobs"][0]),
     "jobs.2.placement: expected the jobs to fit on the fabric's 4 hosts: job 2 needs 2, 0 left"),
    (lambda raw: raw.update(workload=WORKLOAD), "workload: expected no workload beside jobs"),
    (lambda raw: raw["jobs"].__setitem__(1, {"hosts": 2, "workload": {"rule": "data_sizes", "data_sizes": [1]}}),
     "jobs.1.workload.rule: expected rule megatron"),
    (lambda raw: raw["fabric"].update(model="packet"), "jobs: expected fabric.model flow"),
    (lambda raw: raw["jobs"][0].update(hosts=1), "jobs.0.hosts: expected a job of 2 GPUs or more"),
])
def test_jobs_that_cannot_run_are_refused_in_one_line(change, expected, tmp_path, capsys):
    raw = _raw({"hosts": 4})
    change(raw)
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0] and str(path) in err[0], err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ScenarioError):
        validate_scenario(raw, "<t>")


def test_a_rail_aligned_job_with_no_room_is_refused_in_one_line(tmp_path, capsys):
    """One host taken from the first leaf: 3 hosts are free, but not a whole leaf's start for 3."""
    raw = _raw(LEAF_SPINE | {"gpus_per_host": 2}) | {"jobs": [
        {"hosts": 1, "workload": WORKLOAD},
        {"hosts": 3, "placement": "rail_aligned", "workload": WORKLOAD | {"parallelism": {"dp": 6}}}]}
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{path}: jobs.1.placement: expected room for job 1's 3 hosts rail_aligned" in err[0], err
    assert not (tmp_path / "out").exists()


def test_each_jobs_model_file_is_read_relative_to_the_scenario(tmp_path):
    (tmp_path / "models").symlink_to(SCENARIOS / "models")
    raw = _raw({"hosts": 4})
    raw["jobs"][1]["workload"] = WORKLOAD | {"transformer": "models/llama-2-7b.json"}
    path = tmp_path / "jobs.yaml"
    path.write_text(yaml.safe_dump(raw))
    scenario = load_scenario(path)
    assert scenario.jobs[1].workload.transformer.hidden_size == 4096
    assert scenario.jobs[0].workload.transformer.hidden_size == TINY["hidden_size"]


def test_the_trial_count_and_the_baselines_reach_every_jobs_workload(tmp_path, monkeypatch, capsys):
    """--trials sets each job's trial count (the jobs hold the workloads); check --update and check
    take a scenario of jobs as any other."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "t.yaml"
    path.write_text(yaml.safe_dump(_raw(LEAF_SPINE, "fragmented", seed=1)))
    assert main(["run", str(path), "--trials", "1", "-o", "out"]) == 0
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["trials"] == 1
    assert main(["check", str(path), "--update", "--trials", "3"]) == 0
    assert json.loads((tmp_path / "results" / "baselines" / "t.json").read_text())["trials"] == 3
    assert main(["check", str(path)]) == 0
    assert "ok, 3 trials identical" in capsys.readouterr().out


def test_a_step_under_protocol_auto_pays_each_calls_picked_protocol():
    """The whole job's step adds to each call the software latency of the protocol NCCL's tuner picked
    for it: with every call picking one protocol (TP all-reduces of one size), the step equals the step
    with that protocol named."""
    raw = {"name": "t", "fabric": {"hosts": 1, "gpus_per_host": 4},
           "workload": {**WORKLOAD, "parallelism": {"tp": 4, "dp": 1}},
           "collective": {"algorithm": "ring", "protocol": "auto"}}
    auto = _simulation(raw)
    (picked,) = {auto.call_pick(call).protocol for call in auto.plan.trials[0].calls}
    named = _simulation({**raw, "collective": {"algorithm": "ring", "protocol": picked}})
    assert picked != "none" and auto.run()[0].latency_ps == named.run()[0].latency_ps
