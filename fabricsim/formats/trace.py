"""Timelines: chosen trials as Chrome trace-event JSON (opens in Perfetto's UI and chrome://tracing).

``output.trace: slowest`` (the slowest trial) or a list of trial indices writes ``trace-<trial>.json``
per chosen trial. The trial is run again with its flows recorded (trials are reproducible: the same
numbers, on the event loop), and each flow becomes a complete event (``"ph": "X"``, times in
microseconds) on its sending rank's track and on the track of every link it crossed (flows at the same
time on one track take lanes of their own, ``rank 3 +1``, so that slices never overlap), with its bytes,
rate, start, last bit sent and stall time in ``args`` (picoseconds exactly, as flows.csv has them). A
flow that stalled on a link that was down gets an instant (``"ph": "i"``) where it ended; the trial's
end is an instant named ``trial end`` or ``trial failed``, with the breakdown's parts (timeouts,
retransmissions, failures) in its ``args``. Ranks are the collective's, as in flows.csv. Link
failure times, NACKs, PFC pauses and the start of each call after compute are not among the records a
flow-model trial keeps, so they are not drawn; the packet model keeps no flows, so ``output.trace`` needs ``fabric.model: flow``.
Trace-event format: "Trace Event Format", Google (docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fabricsim.config import ScenarioError, validate_scenario
from fabricsim.records import PARTS, TrialRecord
from fabricsim.runner.simulation import Simulation
from fabricsim.units import PS_PER_US

RANKS_PID, LINKS_PID, TRIAL_PID = 1, 2, 3


def traced_trials(simulation: Simulation, latency_ps: np.ndarray, trials: np.ndarray) -> list[int]:
    """The trials ``output.trace`` names: the slowest (first of ties), or the listed indices."""
    chosen = simulation.scenario.output.trace
    if chosen is None or not len(trials):
        return []
    if chosen == "slowest":
        return [int(trials[int(np.argmax(latency_ps))])]
    return list(dict.fromkeys(chosen))


def check_trace_trials(simulation: Simulation, source: str) -> None:
    """Refuse (ScenarioError) trial indices the plan does not have, before anything runs."""
    chosen, count = simulation.scenario.output.trace, len(simulation.plan.trials)
    if isinstance(chosen, list) and any(index >= count for index in chosen):
        raise ScenarioError(f"{source}: output.trace: expected trial indices below {count}, got {chosen}")


def traced_record(simulation: Simulation, trial: int) -> TrialRecord:
    """The trial run again with its flows recorded."""
    raw = simulation.scenario.resolved()
    raw["output"]["flows"] = True
    recording = Simulation(validate_scenario(raw, "<trace>"), "<trace>")
    return recording.run_trial(recording.plan.trials[trial])


def trace_events(simulation: Simulation, record: TrialRecord) -> dict:
    """The trial as a trace-event document."""
    links = simulation.fabric.links
    slices: dict[tuple[int, int], list[dict]] = {}  # (pid, rank or link) -> its flows' slices
    instants = []
    for flow in record.flows:
        duration_ps = flow.sent_ps - flow.start_ps
        args = {"transfer": flow.transfer, "qp": flow.qp, "src": flow.src, "dst": flow.dst, "bytes": flow.nbytes,
                "rate_Gbps": flow.rate_Gbps,
                "start_ps": flow.start_ps, "sent_ps": flow.sent_ps, "stalled_ps": flow.stalled_ps}
        slice_ = {"ph": "X", "name": f"t{flow.transfer}.{flow.qp} {flow.src}->{flow.dst}", "cat": "flow",
                  "ts": flow.start_ps / PS_PER_US, "dur": duration_ps / PS_PER_US, "args": args}
        for track in [(RANKS_PID, flow.src)] + [(LINKS_PID, index) for index in flow.links if index < len(links)]:
            slices.setdefault(track, []).append(slice_)
        if flow.stalled_ps:
            instants.append(((RANKS_PID, flow.src), {
                "ph": "i", "s": "t", "name": f"stalled {flow.stalled_ps / PS_PER_US:g} us (link down)",
                "cat": "failure", "ts": flow.sent_ps / PS_PER_US, "args": args}))
    events = [_meta("process_name", RANKS_PID, 0, "ranks"), _meta("process_name", LINKS_PID, 0, "links"),
              _meta("process_name", TRIAL_PID, 0, f"trial {record.trial}")]
    lane_tids: dict[tuple[int, int], list[int]] = {}  # a track's lanes: slices on one lane never overlap
    tids = {RANKS_PID: 0, LINKS_PID: 0}
    for (pid, key), track_slices in sorted(slices.items()):
        name = f"rank {key}" if pid == RANKS_PID else f"{links[key].name} ({links[key].kind})"
        lane_end_ps: list[int] = []
        for slice_ in sorted(track_slices, key=lambda event: (event["args"]["start_ps"], event["args"]["sent_ps"])):
            lane = next((i for i, end_ps in enumerate(lane_end_ps) if end_ps <= slice_["args"]["start_ps"]),
                        len(lane_end_ps))
            if lane == len(lane_end_ps):
                lane_end_ps.append(0)
                lane_tids.setdefault((pid, key), []).append(tids[pid])
                events.append(_meta("thread_name", pid, tids[pid], name if lane == 0 else f"{name} +{lane}"))
                tids[pid] += 1
            lane_end_ps[lane] = slice_["args"]["sent_ps"]
            events.append({**slice_, "pid": pid, "tid": lane_tids[(pid, key)][lane]})
    events += [{**instant, "pid": pid, "tid": lane_tids[(pid, key)][0]} for (pid, key), instant in instants]
    parts = dict(zip(PARTS, record.breakdown.parts_ps()))
    events.append({"ph": "i", "s": "g", "name": "trial failed" if record.failed else "trial end", "cat": "trial",
                   "ts": record.latency_ps / PS_PER_US, "pid": TRIAL_PID, "tid": 0,
                   "args": {"latency_ps": record.latency_ps, **{f"{part}_ps": int(ps) for part, ps in parts.items()}}})
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"scenario": simulation.scenario.name, "trial": record.trial, "latency_ps": record.latency_ps,
                          "fabric": simulation.fabric.description}}


def write_traces(stage: Path, simulation: Simulation, latency_ps: np.ndarray, trials: np.ndarray) -> None:
    """trace-<trial>.json for every trial ``output.trace`` names."""
    for trial in traced_trials(simulation, latency_ps, trials):
        document = trace_events(simulation, traced_record(simulation, trial))
        (stage / f"trace-{trial}.json").write_text(json.dumps(document) + "\n")


def _meta(name: str, pid: int, tid: int, value: str) -> dict:
    return {"ph": "M", "name": name, "pid": pid, "tid": tid, "args": {"name": value}}
