"""output.trace: Chrome trace-event JSON of chosen trials whose slices are the trial's flow records,
valid trace events (no overlapping slices on one track), instants for stalls, bad input refused."""

import csv
import json

import pytest
import yaml

from fabricsim.cli import main
from tests.conftest import ROOT

SCENARIO = {
    "name": "trace_test", "seed": 7,
    "fabric": {"topology": "leaf_spine", "hosts": 4, "gpus_per_host": 2, "qps_per_rankpair": 2,
               "clos": {"hosts_per_leaf": 2, "spines": 2, "oversubscription": 2}},
    "collective": {"op": "all_reduce", "algorithm": "ring"},
    "workload": {"rule": "data_sizes", "data_sizes": ["1MiB"], "trials": 4},
    "impairments": {"jitter": {"distribution": "lognormal", "median": "2us", "sigma": 1.0}},
    "output": {"plots": False, "flows": True, "trace": "slowest"},
}
PHASES = {"X": ("name", "cat", "ts", "dur", "pid", "tid", "args"), "i": ("name", "s", "ts", "pid", "tid"),
          "M": ("name", "pid", "tid", "args")}


def _run(tmp_path, raw, *extra):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    out = tmp_path / "out"
    return main(["run", str(path), "-o", str(out), *extra]), out


def _rows(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def check_schema(document):
    """The Trace Event Format's fields, and slices that nest on every track (here: never overlap)."""
    assert set(document) >= {"traceEvents", "displayTimeUnit"}
    named = {(e["pid"], e["tid"]) for e in document["traceEvents"] if e["ph"] == "M" and e["name"] == "thread_name"}
    by_track = {}
    for event in document["traceEvents"]:
        assert event["ph"] in PHASES and all(key in event for key in PHASES[event["ph"]])
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        if event["ph"] == "X":
            assert event["ts"] >= 0 and event["dur"] >= 0 and (event["pid"], event["tid"]) in named
            by_track.setdefault((event["pid"], event["tid"]), []).append(
                (event["args"]["start_ps"], event["args"]["sent_ps"]))
        if event["ph"] == "i":
            assert event["s"] in ("t", "p", "g")
    for spans in by_track.values():
        spans.sort()
        assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:]))


def test_slowest_trial_trace_slices_are_its_flow_records(tmp_path):
    code, out = _run(tmp_path, SCENARIO)
    assert code == 0
    trials = _rows(out / "trials.csv")
    slowest = max(trials, key=lambda row: float(row["latency_us"]))
    (trace_file,) = out.glob("trace-*.json")
    assert trace_file.name == f"trace-{slowest['trial']}.json"
    document = json.loads(trace_file.read_text())
    check_schema(document)
    assert document["otherData"]["latency_ps"] == round(float(slowest["latency_us"]) * 1e6)
    flows = [row for row in _rows(out / "flows.csv") if row["trial"] == slowest["trial"]]
    events = document["traceEvents"]
    rank_slices = [e for e in events if e["ph"] == "X" and e["pid"] == 1]
    assert sorted((int(r["transfer"]), int(r["qp"]), int(r["src"]), int(r["bytes"]), round(float(r["start_us"]) * 1e6),
                   round(float(r["sent_us"]) * 1e6)) for r in flows) == sorted(
        (a["transfer"], a["qp"], a["src"], a["bytes"], a["start_ps"], a["sent_ps"]) for a in (e["args"] for e in rank_slices))
    for event in rank_slices:
        assert event["ts"] == event["args"]["start_ps"] / 1e6
        assert event["dur"] == (event["args"]["sent_ps"] - event["args"]["start_ps"]) / 1e6
    threads = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    link_names = {}  # each flow's link tracks are the links flows.csv lists for it
    for event in events:
        if event["ph"] == "X" and event["pid"] == 2:
            key = (event["args"]["transfer"], event["args"]["qp"])
            link_names.setdefault(key, set()).add(threads[(2, event["tid"])].split(" (")[0])
    assert link_names == {(int(r["transfer"]), int(r["qp"])): set(r["links"].split(";")) for r in flows}
    (end,) = [e for e in events if e["ph"] == "i" and e["cat"] == "trial"]
    assert end["name"] == "trial end" and end["args"]["latency_ps"] == document["otherData"]["latency_ps"]
    assert max(a["sent_ps"] for a in (e["args"] for e in rank_slices)) <= end["args"]["latency_ps"]


def test_listed_trials_get_a_trace_each_and_stalls_are_instants(tmp_path):
    raw = yaml.safe_load((ROOT / "scenarios" / "failure_flap.yaml").read_text())
    raw["output"] = {"plots": False, "trace": [0, 2]}
    raw["fabric"]["qps_per_rankpair"] = 8  # a connection's queue pairs keep their paths: with 8, one takes spine0
    code, out = _run(tmp_path, raw, "--trials", "3")
    assert code == 0
    assert sorted(path.name for path in out.glob("trace-*.json")) == ["trace-0.json", "trace-2.json"]
    for path in out.glob("trace-*.json"):
        document = json.loads(path.read_text())
        check_schema(document)
        events = document["traceEvents"]
        stalled = [e for e in events if e["ph"] == "X" and e["pid"] == 1 and e["args"]["stalled_ps"]]
        instants = [e for e in events if e["ph"] == "i" and e["cat"] == "failure"]
        assert stalled and len(instants) == len(stalled)  # the cable flaps in every trial
        assert sorted(i["ts"] for i in instants) == sorted(e["args"]["sent_ps"] / 1e6 for e in stalled)


@pytest.mark.parametrize("changes, expected", [
    ({"output": {"trace": [9]}}, "output.trace: expected trial indices below 4"),
    ({"output": {"trace": "fastest"}}, "output.trace"),
    ({"fabric": {"hosts": 2, "model": "packet"}, "impairments": {}},
     "output.trace: expected fabric.model flow"),
])
def test_bad_trace_requests_are_one_line(tmp_path, capsys, changes, expected):
    raw = {**SCENARIO, **changes}
    code, out = _run(tmp_path, raw)
    assert code == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
