"""Streaming results: records are folded in as they arrive and let go, the plan builds trials on demand,
and trials travel in bounded batches; the numbers are those of the whole list of records."""

import csv
import dataclasses
import json
import tracemalloc

import numpy as np
import pytest

from fabricsim.output import stats
from fabricsim.output.columns import TrialColumns
from fabricsim.output.results import collect
from fabricsim.runner import parallel
from fabricsim.runner.simulation import Simulation
from fabricsim.workload import plan_workload
from tests.conftest import make_scenario

SIZES = ["4KiB", "64KiB", "256KiB"]
LOSSY = {"loss": {"rate": 0.02, "retry_count": 0, "timeout_exponent": 0},
         "jitter": {"distribution": "exponential", "mean": "2us"}}


@pytest.fixture(scope="module")
def lossy_run():
    """Three sizes, ten trials each, some of them failed."""
    simulation = Simulation(make_scenario(impairments=LOSSY, workload={"rule": "data_sizes", "data_sizes": SIZES,
                                                                       "trials": 10}))
    records = simulation.run()
    assert 0 < sum(r.failed for r in records) < len(records)
    return simulation, records


@pytest.fixture(scope="module")
def streamed(lossy_run, tmp_path_factory):
    """The lossy run's results, its records streamed into a result folder."""
    simulation, records = lossy_run
    out = tmp_path_factory.mktemp("streamed") / "run"
    return collect(simulation, iter(records), out), out


def test_streamed_summary_is_that_of_the_whole_list(lossy_run, streamed):
    (_, records), (results, out) = lossy_run, streamed
    summary = results.summary
    ok = [r for r in records if not r.failed]
    assert (summary["trials"], summary["failed_trials"]) == (30, 30 - len(ok))
    assert summary["per_rank_bytes"] == [4096, 65536, 262144]
    assert summary["latency_us"] == stats.latency_summary(np.array([r.latency_ps / 1e6 for r in ok]))
    slowest = max(ok, key=lambda r: r.latency_ps)  # the slowest completed trial, the first of equals
    assert summary["tail_causes"]["max"]["trial"] == slowest.trial
    if len(ok) < 30:
        assert summary["tail_causes"]["failed"]["trials"] == 30 - len(ok)
    assert json.loads((out / "summary.json").read_text()) == summary
    assert {"cdf.png", "ccdf.png", "delay.png", "breakdown.png"} <= {path.name for path in out.iterdir()}


def test_streamed_tables_hold_every_record_in_order(lossy_run, streamed):
    (simulation, records), (results, out) = lossy_run, streamed
    with (out / "trials.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["trial"]) for row in rows] == list(range(30))
    assert [row["latency_us"] for row in rows] == [f"{r.latency_ps / 1e6:.6f}" for r in records]
    assert [(row["failed"], row["busbw_GBps"] == "") for row in rows] == [(str(int(r.failed)), r.failed)
                                                                          for r in records]
    assert results.columns.latency_ps.tolist() == [r.latency_ps for r in records]
    assert results.columns.parts_ps.tolist() == [r.breakdown.parts_ps() for r in records]
    link = simulation.fabric.link_named("h0.nic0->switch")
    links = {row["link"]: row for row in csv.DictReader((out / "links.csv").open())}
    carried_bits = sum(r.link_usage.carried_bits[link.index] for r in records)
    assert int(links[link.name]["bytes"]) == round(carried_bits / 8) > 0


def test_results_without_a_folder_summarize_the_same(lossy_run, streamed):
    simulation, records = lossy_run
    results = collect(simulation, iter(records))
    assert results.summary == streamed[0].summary
    assert results.columns.trial.tolist() == list(range(30))


def test_an_interrupted_run_leaves_no_folder_and_the_old_one_in_place(lossy_run, tmp_path):
    simulation, records = lossy_run
    out = tmp_path / "run"
    collect(simulation, iter(records[:5]), out)
    before = (out / "trials.csv").read_text()

    def interrupted():
        yield from records[:12]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        collect(simulation, interrupted(), out)
    assert [path.name for path in tmp_path.iterdir()] == ["run"]  # no stage left behind
    assert (out / "trials.csv").read_text() == before


def test_columns_grow_beyond_the_trials_expected(lossy_run):
    _, records = lossy_run
    columns = TrialColumns(expected_trials=4)
    for record in records:
        columns.append(record, shape=record.trial // 10)
    assert columns.count == 30 and columns.trial.tolist() == list(range(30))
    assert columns.shape.tolist() == [i // 10 for i in range(30)]
    assert columns.failed.tolist() == [r.failed for r in records]


def _traced_peak_bytes(action) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        action()
        return tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


def _peak_bytes_of_results(trials: int, out) -> int:
    """Peak memory of folding ``trials`` records into a result folder, records that a run would deliver
    one after another: each a real trial of its size under a new index."""
    scenario = make_scenario(fabric={"hosts": 2}, impairments=LOSSY, output={"plots": False},
                             workload={"rule": "data_sizes", "data_sizes": ["4KiB", "8KiB"], "trials": trials // 2})
    simulation = Simulation(scenario)
    plan = simulation.plan.trials
    firsts = [simulation.run_trial(plan[i]) for i in (0, len(plan) - 1)]
    records = (dataclasses.replace(firsts[plan.shape_of(i)], trial=i) for i in range(trials))
    return _traced_peak_bytes(lambda: collect(simulation, records, out))


def test_results_memory_grows_only_by_the_columns(tmp_path):
    small = _peak_bytes_of_results(1_000, tmp_path / "small")
    large = _peak_bytes_of_results(10_000, tmp_path / "large")
    # bytes a trial: the columns (69) and the summary's arrays; holding on to the records would add ~180
    assert (large - small) / 9_000 < 150
    assert len((tmp_path / "large" / "trials.csv").read_text().splitlines()) == 10_001


def test_the_plan_builds_trials_on_demand():
    def plan_of(trials):
        return plan_workload(make_scenario(workload={"rule": "data_sizes", "data_sizes": ["1KiB", "2KiB"],
                                                     "trials": trials}), 4, "<test>")

    assert _traced_peak_bytes(lambda: plan_of(500_000)) - _traced_peak_bytes(lambda: plan_of(5)) < 10_000
    trials = plan_of(500_000).trials
    assert len(trials) == 1_000_000
    assert (trials[-1].index, trials[-1].per_rank_bytes, trials[499_999].per_rank_bytes) == (999_999, (2048,), (1024,))
    assert [trials.shape_of(i) for i in (0, 499_999, 500_000, -1)] == [0, 0, 1, 1]
    with pytest.raises(IndexError):
        trials[1_000_000]


def test_batches_are_capped_and_lazy():
    plan = parallel.batches(10**6, 2)
    sizes = [len(indices) for indices in plan]
    assert sum(sizes) == 10**6 and max(sizes) == parallel.MAX_BATCH_TRIALS


class _Future:
    def __init__(self, indices, pending):
        self.indices, self.pending = indices, pending

    def result(self):
        self.pending.remove(self)
        return list(self.indices)


def test_batches_in_flight_are_bounded_and_read_in_order():
    pending, most = [], []

    def submit(indices):
        pending.append(_Future(indices, pending))
        most.append(len(pending))
        return pending[-1]

    results = parallel._in_order(submit, parallel.batches(1000, 4), in_flight=3)
    assert [i for batch in results for i in batch] == list(range(1000))
    assert max(most) == 3 and not pending


def test_small_batches_over_a_pool_give_the_serial_records(lossy_run, monkeypatch):
    simulation, records = lossy_run
    monkeypatch.setattr(parallel, "MAX_BATCH_TRIALS", 4)  # 8 batches over 2 workers, 4 in flight
    assert list(parallel.run_trials(simulation, "<test>", workers=2)) == records
