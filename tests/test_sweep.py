"""``fabricsim sweep``: the nccl-tests table, sweep.csv and sweep.png, sizes from flags or YAML,
several algorithms side by side, and bad input refused in one line with nothing written."""

import csv
import math

import numpy as np
import pytest
import yaml

from fabricsim.cli import main
from fabricsim.config import load_scenario
from fabricsim.config.size_range import size_range
from fabricsim.formats.nccl_tests_log import read_log
from fabricsim.output import stats
from fabricsim.output.sweep import element_sizes, per_rank_bytes_of, sweep_scenario
from fabricsim.runner.simulation import Simulation
from tests.conftest import ROOT

SCENARIO = {
    "name": "sweep_test",
    "fabric": {"topology": "single_switch", "hosts": 1, "gpus_per_host": 4,
               "nvlink": {"bandwidth": "100GB/s", "latency": "100ns"}},
    "collective": {"op": "all_reduce", "algorithm": "ring", "protocol": "ll"},
    "workload": {"rule": "data_sizes", "data_sizes": {"start": "1KiB", "end": "1MiB", "step": 4}},
    "output": {"plots": False},  # one test draws: plotting is most of a sweep's wall time
}


@pytest.fixture
def scenario_file(tmp_path):
    def write(**changes):
        raw = {key: (dict(value) if isinstance(value, dict) else value) for key, value in SCENARIO.items()}
        for key, value in changes.items():
            raw.setdefault(key, {}).update(value)
        path = tmp_path / "sweep.yaml"
        path.write_text(yaml.safe_dump(raw))
        return path
    return write


def read_csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


# nccl-tests' own header lines (NVIDIA/nccl-tests, as all_reduce_perf prints them), trailing blanks cut
NCCL_TESTS_HEADER = [
    "#                                                              out-of-place                       in-place",
    "#       size         count      type   redop    root     time   algbw   busbw #wrong     time   algbw   busbw #wrong",
    "#        (B)    (elements)                               (us)  (GB/s)  (GB/s)            (us)  (GB/s)  (GB/s)",
]


def parse_nccl_tests(text: str) -> dict:
    """A log parser in the style of those written for nccl-tests: rows are the lines that start with
    a number and hold 13 fields (size, count, type, redop, root, then time, algbw, busbw and #wrong out
    of place and in place); the footer gives the out-of-bounds count and the average bus bandwidth."""
    rows, footer = [], {}
    for line in text.splitlines():
        fields = line.split()
        if fields and fields[0].isdigit():
            assert len(fields) == 13, line
            size, count, dtype, redop, root = fields[:5]
            sides = [dict(zip(("time", "algbw", "busbw", "wrong"), fields[start:start + 4])) for start in (5, 9)]
            rows.append({"size": int(size), "count": int(count), "type": dtype, "redop": redop, "root": int(root),
                         "out": {k: v if k == "wrong" else float(v) for k, v in sides[0].items()},
                         "in": {k: v if k == "wrong" else float(v) for k, v in sides[1].items()}})
        elif line.startswith("# Out of bounds values :"):
            footer["out_of_bounds"] = int(line.split(":")[1].split()[0])
        elif line.startswith("# Avg bus bandwidth    :"):
            footer["avg_busbw"] = float(line.split(":")[1])
    return {"rows": rows, **footer}


def test_flags_sweep_prints_the_nccl_tests_table_and_writes_csv_and_plot(scenario_file, tmp_path, capsys):
    out = tmp_path / "out"
    path = scenario_file(output={"plots": True})
    argv = ["sweep", str(path), "-b", "8", "-e", "1M", "-f", "2", "-n", "2", "-w", "1", "-o", "max", "-c", "1",
            "--output", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[1] == ("# nThread 1 nGpus 4 minBytes 8 maxBytes 1048576 step: 2(factor) warmup iters: 1 iters: 2 "
                        "agg iters: 1 validation: 1 graph: 0")
    assert [line.rstrip() for line in lines[3:6]] == NCCL_TESTS_HEADER
    parsed = parse_nccl_tests(text)
    rows = parsed["rows"]
    assert [row["size"] for row in rows] == size_range(8, 2**20, 2)  # nccl-tests -e 1M is 1048576
    for row in rows:
        assert (row["count"], row["type"], row["redop"], row["root"]) == (row["size"] // 4, "float", "max", -1)
        assert row["out"]["wrong"] == row["in"]["wrong"] == "N/A"
        assert row["out"] == row["in"]  # no impairment: in place takes what out of place takes
        assert row["out"]["busbw"] == pytest.approx(row["out"]["algbw"] * 2 * 3 / 4, abs=0.02)
    small_us, large_us = rows[0]["out"]["time"], rows[-1]["out"]["time"]
    assert small_us == pytest.approx(6.6 + 6 * (0.6 + 0.3), abs=0.01)  # LL: latency-bound, not zero
    assert large_us > 2 * small_us
    table = read_csv(out / "sweep.csv")
    assert len(table) == len(rows) and {row["iterations"] for row in table} == {"2"}
    average = sum(float(row[key]) for row in table for key in ("busbw_GBps", "inplace_busbw_GBps")) / (2 * len(table))
    assert parsed["out_of_bounds"] == 0 and parsed["avg_busbw"] == pytest.approx(average, rel=1e-5)
    assert lines[-4:-1] == ["# Out of bounds values : 0 OK", f"# Avg bus bandwidth    : {parsed['avg_busbw']:g} ", "#"]
    (log_file := tmp_path / "sweep.log").write_text(text)
    (run,) = read_log(log_file)  # fabricsim's own nccl-tests log reader agrees, in-place times included
    assert run.algorithm == "ring" and run.sizes_bytes() == [row["size"] for row in rows]
    assert [row.in_place_time_us for row in run.rows] == [row["in"]["time"] for row in rows]
    last = table[-1]
    assert float(last["busbw_GBps"]) == pytest.approx(
        float(stats.busbw_GBps("all_reduce", 4, int(last["size_bytes"]), float(last["time_us"]))))
    assert (out / "sweep.png").stat().st_size > 10_000


@pytest.mark.parametrize("name, dtype, element_bytes", [("half", "half", 2), ("bfloat16", "bfloat16", 2),
                                                        ("double", "double", 8), ("float16", "half", 2)])
def test_data_types_by_their_nccl_tests_names(scenario_file, tmp_path, capsys, name, dtype, element_bytes):
    argv = ["sweep", str(scenario_file()), "-b", "64", "-e", "256", "-d", name, "--output", str(tmp_path / "out")]
    assert main(argv) == 0
    rows = parse_nccl_tests(capsys.readouterr().out)["rows"]
    assert [(row["size"], row["count"], row["type"]) for row in rows] == [
        (size, size // element_bytes, dtype) for size in (64, 128, 256)]


def test_yaml_range_and_several_algorithms_give_one_block_and_one_line_each(scenario_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", str(scenario_file()), "-a", "ring,halving_doubling,auto", "--output", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count("# Avg bus bandwidth    : ") == 3 and printed.count("# Out of bounds values : 0 OK") == 3
    table = read_csv(out / "sweep.csv")
    assert [row["algorithm"] for row in table] == ["ring"] * 6 + ["halving_doubling"] * 6 + ["auto"] * 6
    assert [int(row["size_bytes"]) for row in table[:6]] == [4**k * 1024 for k in range(6)]
    auto = {row["size_bytes"]: row for row in table if row["algorithm"] == "auto"}
    for row in table[:6]:  # auto ran what NCCL picks, in the same time when that is the ring
        if auto[row["size_bytes"]]["picked"] == "ring":
            assert float(auto[row["size_bytes"]]["time_us"]) == pytest.approx(float(row["time_us"]))
    assert {row["picked"] for row in auto.values()} <= {"ring", "tree"}


@pytest.mark.parametrize("op, per_rank_count", [("all_gather", True), ("broadcast", False), ("all_to_all", True)])
def test_counts_are_per_rank_where_nccl_tests_counts_per_rank(scenario_file, tmp_path, capsys, op, per_rank_count):
    algorithm = {"all_gather": "ring", "broadcast": "binomial_tree", "all_to_all": "direct"}[op]
    path = scenario_file(collective={"op": op, "algorithm": algorithm, "root": 2})
    assert main(["sweep", str(path), "-b", "100", "-e", "4096", "-f", "4", "--output", str(tmp_path / "out")]) == 0
    table = read_csv(tmp_path / "out" / "sweep.csv")
    for row in table:
        size = int(row["size_bytes"])
        assert int(row["count"]) == size // 4 // (4 if per_rank_count else 1)
        assert size % (16 if per_rank_count else 4) == 0
        assert row["root"] == ("2" if op == "broadcast" else "-1")
        assert row["redop"] == "none"
    assert element_sizes(op, 4, [100, 101, 3], "float32") == ([96] if per_rank_count else [100])


@pytest.mark.parametrize("argv_tail, message", [
    (["-b", "1G", "-e", "8"], "-b/-e/-f: expected end >= start"),
    (["-b", "8", "-e", "64", "-f", "1"], "-b/-e/-f: expected a finite multiplicative step above 1"),
    (["-b", "lots"], "-b: expected a size such as"),
    (["-a", "ring,trees"], "collective.algorithm: expected one of"),
    (["-a", "binomial_tree"], "collective: expected algorithm auto or one of"),
    (["-b", "1", "-e", "3"], "sizes: expected at least one size of a whole float32 element"),
    (["-n", "0"], "-n: expected a positive number of iterations"),
    (["-d", "float33"], "expected one of int8"),
    (["-o", "xor"], "invalid choice: 'xor'"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(scenario_file, tmp_path, capsys, argv_tail, message):
    out = tmp_path / "out"
    assert main(["sweep", str(scenario_file()), "--output", str(out), *argv_tail]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert message in captured.err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_a_scenario_without_sizes_needs_flags(scenario_file, capsys):
    model = ROOT / "scenarios" / "models" / "fashion_mnist_mlp.yaml"
    path = scenario_file(workload={"rule": "data_parallel", "data_sizes": [], "model": str(model),
                                   "dataset_samples": 100, "batch_size": 10})
    assert main(["sweep", str(path)]) == 2
    assert "workload.data_sizes: expected sizes to sweep, or -b MIN -e MAX" in capsys.readouterr().err


def test_size_ranges_multiply_up_to_the_end():
    assert size_range(8, 64, 2) == [8, 16, 32, 64]
    assert size_range(1, 10, 1.5) == [1, 2, 3, 4, 6, 9]  # never stuck below a whole byte
    assert size_range(5, 5, 2) == [5]
    assert not math.isnan(size_range(8, 2**40, 2)[-1])


def test_per_iteration_columns_and_the_json_file_hold_each_sizes_spread(scenario_file, tmp_path, capsys):
    """-I 1 adds nccl-tests' i_min i_max i_p99 i_cv% to each column group: the spread of the iterations the
    time column averages (recomputed here from the same trials); sweep-<algorithm>.json holds the rows in
    nccl-tests' -J layout, read back to the same times."""
    out = tmp_path / "out"
    path = scenario_file(impairments={"jitter": {"distribution": "exponential", "mean": "2us"}})
    assert main(["sweep", str(path), "-b", "4K", "-e", "8K", "-n", "100", "-I", "1", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "i_min    i_max    i_p99   i_cv%" in text
    rows = read_csv(out / "sweep.csv")
    scenario = load_scenario(path)
    simulation = Simulation(sweep_scenario(scenario, str(path), "ring", [4096, 8192], 200), str(path))
    records = simulation.run()
    for row in rows:
        per_rank = per_rank_bytes_of("all_reduce", 4, int(row["size_bytes"]))
        times_us = np.array([r.latency_ps / 1e6 for r in records if r.per_rank_bytes == (per_rank,)])
        out_of_place, in_place = times_us[:100], times_us[100:]
        for prefix, times in (("", out_of_place), ("inplace_", in_place)):
            assert float(row[f"{prefix}time_us"]) == pytest.approx(times.mean(), abs=1e-6)
            assert float(row[f"{prefix}iter_min_us"]) == pytest.approx(times.min(), abs=1e-6)
            assert float(row[f"{prefix}iter_max_us"]) == pytest.approx(times.max(), abs=1e-6)
            assert float(row[f"{prefix}iter_p99_us"]) == pytest.approx(np.percentile(times, 99), abs=1e-6)
            assert float(row[f"{prefix}iter_cv_pct"]) == pytest.approx(100 * times.std() / times.mean(), abs=1e-6)
            assert times.min() < times.mean() < times.max()  # jitter spreads the iterations
    (log_file := tmp_path / "sweep.log").write_text(text)
    (run,) = read_log(log_file)  # the reader skips the -I columns to the in-place group
    assert [row.in_place_time_us for row in run.rows] == [round(float(row["inplace_time_us"]), 2) for row in rows]
    (json_run,) = read_log(out / "sweep-ring.json")
    assert json_run.op == "all_reduce" and json_run.ranks == 4
    assert [(row.size_bytes, row.time_us, row.in_place_time_us) for row in json_run.rows] == [
        (int(row["size_bytes"]), pytest.approx(float(row["time_us"]), abs=1e-6),
         pytest.approx(float(row["inplace_time_us"]), abs=1e-6)) for row in rows]


def test_a_p99_needs_100_iterations(scenario_file, tmp_path, capsys):
    assert main(["sweep", str(scenario_file()), "-b", "4K", "-e", "4K", "-n", "20", "-I", "1",
                 "--output", str(tmp_path / "out")]) == 0
    (row,) = [line.split() for line in capsys.readouterr().out.splitlines() if line.startswith(" ") and "float" in line]
    time_us, i_min, i_max, i_p99, i_cv = row[5], row[9], row[10], row[11], row[12]
    assert float(i_min) == float(i_max) == pytest.approx(float(time_us), abs=0.01)
    assert i_p99 == "N/A" and float(i_cv) == 0  # no impairment: every iteration takes the same time
