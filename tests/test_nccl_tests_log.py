"""nccl-tests logs in: the published text log, a -J JSON file, several runs in one log with mpirun
prefixes and the older layout, fabricsim's own sweep table, and `sweep --measured`."""

import csv

import pytest
import yaml

from fabricsim.cli import main
from fabricsim.config import ScenarioError
from fabricsim.formats.measured import regimes
from fabricsim.formats.nccl_tests_log import op_of_program, read_log
from fabricsim.output import stats
from tests.conftest import ROOT

FIXTURES = ROOT / "tests" / "fixtures"
PUBLISHED_LOG = ROOT / "scenarios" / "measured" / "h100_2x8_all_reduce.log"


def test_published_text_log_reads_every_row_with_both_placements():
    (run,) = read_log(PUBLISHED_LOG)
    assert run.ranks == 16 and run.op is None  # this version prints no "Collective test starting" line
    assert run.sizes_bytes() == [8 * 2**k for k in range(31)]  # -b 8 -e 8G -f 2
    last = run.rows[-1]
    assert (last.count, last.dtype, last.redop, last.root) == (2147483648, "float32", "sum", -1)
    assert (last.time_us, last.algbw_GBps, last.busbw_GBps, last.in_place_time_us) == (47535, 180.71, 338.82, 47743)
    for row in run.rows[12:]:  # the printed bandwidths are nccl-tests' S / t and its all-reduce factor
        assert row.algbw_GBps == pytest.approx(float(stats.algbw_GBps(row.size_bytes, row.time_us)), rel=1e-3, abs=0.006)
        assert row.busbw_GBps == pytest.approx(row.algbw_GBps * 2 * 15 / 16, rel=1e-3, abs=0.02)
    regime = regimes(run)  # half the peak busbw (338.82) is passed between 128 MiB and 256 MiB
    assert regime[2**27] == "latency-bound" and regime[2**28] == "bandwidth-bound"


def test_json_log_reads_ranks_op_and_leaves_out_rows_without_a_time():
    (run,) = read_log(FIXTURES / "nccl_tests_all_gather.json")
    assert (run.op, run.ranks) == ("all_gather", 8)  # one device entry per process x ngpus 8
    assert [(row.size_bytes, row.time_us, row.in_place_time_us) for row in run.rows] == [
        (1048576, 20.5, 19.8), (2097152, 26.1, 25.4)]  # the "nan" row is left out
    assert run.rows[0].redop == "none" and run.rows[0].root == -1


def test_two_runs_in_one_log_with_mpirun_prefixes_and_the_older_layout():
    first, second = read_log(FIXTURES / "nccl_tests_two_runs.log")
    assert first.source.endswith("#1") and second.source.endswith("#2")
    assert (first.op, first.ranks, first.rows[0].dtype) == ("all_gather", 4, "float16")
    assert [row.time_us for row in first.rows] == [30.12, 31.40, 33.07]
    assert (first.rows[0].algbw_GBps, first.rows[0].busbw_GBps) == (0.03, 0.03)  # "#wrong" N/A is no number
    assert (second.op, second.ranks) == (None, 4)  # no root column: root -1, redop read
    assert [(row.size_bytes, row.redop, row.root, row.time_us) for row in second.rows] == [
        (8, "sum", -1, 12.10), (16, "sum", -1, 12.30), (32, "sum", -1, 12.40)]


def test_per_iteration_columns_and_timestamps_leave_the_times_in_place():
    per_iteration, timestamped = read_log(FIXTURES / "nccl_tests_columns.log")
    assert (per_iteration.op, timestamped.op) == ("all_reduce", "all_reduce")
    assert [(row.time_us, row.in_place_time_us) for row in per_iteration.rows] == [(10.50, 10.20), (10.80, 10.60)]
    assert [(row.time_us, row.in_place_time_us) for row in timestamped.rows] == [(10.40, 10.30), (10.90, 10.70)]


def test_fabricsim_sweep_table_reads_back_per_algorithm(tmp_path, capsys):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "t", "fabric": {"hosts": 1, "gpus_per_host": 4}, "collective": {"op": "all_reduce"},
        "workload": {"rule": "data_sizes", "data_sizes": [1024]}, "output": {"plots": False}}))
    assert main(["sweep", str(path), "-b", "1K", "-e", "64K", "-f", "4", "-a", "ring,halving_doubling",
                 "--output", str(tmp_path / "out")]) == 0
    log = tmp_path / "sweep.log"
    log.write_text(capsys.readouterr().out)
    ring, halving = read_log(log)
    assert (ring.algorithm, halving.algorithm) == ("ring", "halving_doubling")
    assert ring.sizes_bytes() == [1024, 4096, 16384, 65536]
    csv_rows = _csv(tmp_path / "out" / "sweep.csv")
    assert [round(float(row["time_us"]), 2) for row in csv_rows[:4]] == [row.time_us for row in ring.rows]


@pytest.mark.parametrize("text, expected", [
    ("", "expected nccl-tests result rows"),
    ("# nThread 1 nGpus 1\n# Avg bus bandwidth : 0\n", "expected nccl-tests result rows"),
    ('{"results": 3}', "results: expected the list"),
    ('{"results": [{"size": 8}]}', "results.0: expected size, count"),
    ("{not json", "malformed JSON"),
])
def test_bad_logs_are_one_line_naming_the_file(tmp_path, text, expected):
    log = tmp_path / "bad.log"
    log.write_text(text)
    with pytest.raises(ScenarioError, match=expected) as error:
        read_log(log)
    assert str(error.value).startswith(str(log)) and "\n" not in str(error.value)


def test_binaries_name_fabricsim_ops():
    assert op_of_program("./build/all_reduce_perf") == "all_reduce"
    assert op_of_program("/opt/nccl-tests/build/alltoall_perf_mpi") == "all_to_all"
    assert op_of_program("hypercube_perf") is None


def _csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _scenario(tmp_path, **fabric):
    path = tmp_path / "h100.yaml"
    raw = yaml.safe_load((ROOT / "scenarios" / "measured" / "h100_2x8_allreduce.yaml").read_text())
    raw["fabric"].update(fabric)
    raw["output"] = {"plots": False}
    path.write_text(yaml.safe_dump(raw))
    return path


def test_sweep_measured_sweeps_the_log_sizes_and_prints_the_error_per_size(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["sweep", str(_scenario(tmp_path)), "--measured", str(PUBLISHED_LOG), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("# measured vs flat_ring"):].splitlines()
    rows = [line.split() for line in table if line and not line.startswith(("#", "results"))]
    (run,) = read_log(PUBLISHED_LOG)
    assert [int(row[0]) for row in rows] == run.sizes_bytes()
    simulated = {int(row["size_bytes"]): float(row["time_us"]) for row in _csv(out / "sweep.csv")}
    for (size, measured_us, simulated_us, error_pct, regime), row in zip(rows, run.rows):
        assert float(measured_us) == row.time_us
        assert float(simulated_us) == pytest.approx(simulated[int(size)], abs=0.006)
        assert float(error_pct) == pytest.approx(100 * (simulated[int(size)] - row.time_us) / row.time_us, abs=0.06)
        assert regime == regimes(run)[int(size)]
    assert "# latency-bound: 25 sizes" in printed and "# bandwidth-bound: 6 sizes" in printed


def test_sweep_measured_draws_the_measurement(tmp_path, capsys):
    out = tmp_path / "out"
    path = _scenario(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["output"] = {"plots": True}
    path.write_text(yaml.safe_dump(raw))
    assert main(["sweep", str(path), "--measured", str(FIXTURES / "nccl_tests_two_runs.log"), "--output", str(out),
                 "--set", "fabric.hosts=2", "--set", "fabric.gpus_per_host=2", "--set", "fabric.pcie_switches=2"]) == 0
    printed = capsys.readouterr().out  # the log's second run: all-reduce of float on 4 ranks, 8..32 B
    assert "# measured vs flat_ring (" in printed and printed.count("#2)") == 1
    assert [line.split()[0] for line in printed.splitlines() if line.endswith("latency-bound")] == ["8", "16", "32"]
    assert (out / "sweep.png").stat().st_size > 10_000


@pytest.mark.parametrize("log, sets, expected", [
    (FIXTURES / "nccl_tests_all_gather.json", [], "expected a run of all_reduce"),
    (PUBLISHED_LOG, ["fabric.hosts=1"], "expected 8 ranks"),
])
def test_sweep_measured_refuses_a_log_of_another_collective(tmp_path, capsys, log, sets, expected):
    argv = ["sweep", str(_scenario(tmp_path)), "--measured", str(log), "--output", str(tmp_path / "out")]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
