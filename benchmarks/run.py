"""fabricsim benchmarks: print wall time, peak memory and engine throughput for the reference cases.

Figures only, never a pass/fail on time. Each case runs in its own process so its peak resident
memory and its CPU time are its own. The all-to-all cases also run SimGrid's flow model on the same
flows (``benchmarks/simgrid_flows.py``, under ``/usr/bin/python3``) when it is installed, and say so
when it is not. Usage: ``python benchmarks/run.py [CASE ...]`` (default: all cases).
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"
SIMGRID_PYTHON = "/usr/bin/python3"  # the interpreter Debian's python3-simgrid installs into


def _ring_all_reduce(hosts: int, size: str, event_loop: bool = False, event_by_event: bool = False) -> dict:
    """One ring all-reduce on a single switch; ``event_loop`` runs it on the event loop even though
    no flows meet (the runner would time it as a longest path): the flow engine's own throughput,
    on the instant loop, or one event at a time if ``event_by_event``."""
    from fabricsim.engine.models import FlowModel

    FlowModel.uncontended_shortcut = not event_loop
    FlowModel.instant_loop = not event_by_event
    loaded = _compiled_code_loaded() if event_loop and not event_by_event else {}
    _, record, figures = _one_call(f"bench_ring_{hosts}", hosts, {"op": "all_reduce", "algorithm": "ring"}, size)
    transfers = 2 * (hosts - 1) * hosts
    return {"transfers": transfers, **loaded, **figures, "transfers_per_s": transfers / figures["run_s"]}


def _one_call(name: str, hosts: int, collective: dict, size: str) -> tuple:
    """One call on a single switch of ``hosts`` hosts: the simulation, its record, build and run times."""
    from fabricsim.config import validate_scenario
    from fabricsim.runner.simulation import Simulation

    scenario = validate_scenario({"name": name, "fabric": {"hosts": hosts}, "collective": collective,
                                  "workload": {"rule": "data_sizes", "data_sizes": [size]}}, "<benchmark>")
    started = time.perf_counter()
    simulation = Simulation(scenario)
    built = time.perf_counter()
    (record,) = simulation.run()
    ran = time.perf_counter()
    return simulation, record, {"build_s": built - started, "run_s": ran - built,
                                "simulated_us": record.latency_ps / 1e6}


def _compiled_code_loaded() -> dict:
    """Load the instant loop's compiled code (numba's import and its cache, once a process) by running
    a small contended call, outside the timed run, as SimGrid's import is outside its own: the time it
    took."""
    started = time.perf_counter()
    _one_call("bench_load_compiled_code", 4, {"op": "all_to_all", "algorithm": "direct"}, "4KiB")
    return {"compiled_code_load_s": time.perf_counter() - started}


def _all_to_all(hosts: int) -> dict:
    """A direct all-to-all of 1 MiB per pair on one switch: every flow shares its hosts' links with
    the others, so all of them run on the event loop at once. Then SimGrid on the same flows."""
    loaded = _compiled_code_loaded()
    simulation, record, figures = _one_call(f"bench_all_to_all_{hosts}", hosts,  # a rank's buffer: 1 MiB a peer
                                            {"op": "all_to_all", "algorithm": "direct"}, f"{hosts}MiB")
    flows = hosts * (hosts - 1)
    return {"flows": flows, **loaded, **figures, "us_per_flow": figures["run_s"] / flows * 1e6,
            **_simgrid(simulation, record.latency_ps)}


def _simgrid(simulation, latency_ps: int) -> dict:
    """SimGrid's flow model on the simulation's first call (benchmarks/simgrid_flows.py), if installed."""
    import tempfile

    if subprocess.run([SIMGRID_PYTHON, "-c", "import simgrid"], capture_output=True).returncode:
        return {"simgrid": "skipped, not installed (apt-get install python3-simgrid)"}
    call = simulation.plan.trials[0].calls[0]
    transfers = simulation.call_schedule(call).transfers
    flows = []
    for src, dst, nbytes in zip(transfers.src.tolist(), transfers.dst.tolist(), transfers.nbytes.tolist()):
        route = simulation.route(call.group[src], call.group[dst])
        flows.append([call.group[src], call.group[dst], list(route.links), route.latency_ps, nbytes])
    spec = {"hosts": len(simulation.fabric.gpus), "flows": flows,
            "links": [[link.bandwidth_bps, link.latency_ps] for link in simulation.fabric.links]}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file:
        json.dump(spec, file)
        file.flush()
        result = subprocess.run([SIMGRID_PYTHON, str(Path(__file__).parent / "simgrid_flows.py"), file.name],
                                capture_output=True, text=True)
    if result.returncode:
        return {"simgrid": f"failed: {result.stderr.strip().splitlines()[-1]}"}
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    return {"simgrid_wall_s": figures["wall_s"], "simgrid_simulated_us": figures["simulated_ps"] / 1e6,
            "simulated_difference_ps": figures["simulated_ps"] - latency_ps}


def _cli_run(name: str, trials: int) -> dict:
    """The whole ``fabricsim run`` command as a user types it: interpreter start, imports, run, output."""
    import tempfile

    with tempfile.TemporaryDirectory() as out:
        return {"trials": trials,
                **_command(["run", str(SCENARIOS / name), "--trials", str(trials), "-o", f"{out}/run"])}


def _command(arguments: list[str]) -> dict:
    """One ``fabricsim`` command in a process of its own (run from a neutral folder, so that the
    fabricsim imported is the one on the path): its exit code, wall time and CPU time."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        started, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        result = subprocess.run([sys.executable, "-m", "fabricsim.cli", *arguments], capture_output=True, cwd=folder,
                                env={**os.environ, "PYTHONPATH": str(ROOT)})
        ran, after = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"exit_code": result.returncode, "command_s": ran - started,
            "command_cpu_s": after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime}


def _event_by_event(case) -> dict:
    """``case`` with the flow model's instant loop left out: every contended call one event at a time."""
    from fabricsim.engine.models import FlowModel

    FlowModel.instant_loop = False
    return case()


def _naive_simpy(ranks: int) -> dict:
    """The yardstick: a straightforward SimPy model of the same ring (benchmarks/naive_simpy.py)."""
    sys.path.insert(0, str(Path(__file__).parent))
    from naive_simpy import ring_all_reduce_ps

    started = time.perf_counter()
    simulated_ps = ring_all_reduce_ps(ranks)
    transfers = 2 * (ranks - 1) * ranks
    return {"transfers": transfers, "transfers_per_s": transfers / (time.perf_counter() - started),
            "simulated_us": simulated_ps / 1e6}


def _scenario_trials(name: str, trials: int, overrides: tuple[str, ...] = ()) -> dict:
    from fabricsim.config import load_scenario
    from fabricsim.runner.simulation import Simulation

    path = SCENARIOS / name
    scenario = load_scenario(path, (f"workload.trials={trials}", *overrides))
    started = time.perf_counter()
    simulation = Simulation(scenario, str(path))
    built = time.perf_counter()
    records = simulation.run()
    ran = time.perf_counter()
    return {"trials": len(records), "build_s": built - started, "run_s": ran - built,
            "trials_per_s": len(records) / (ran - built)}


def _run_command(name: str, trials: int) -> dict:
    """``fabricsim run`` end to end, results streamed to a temporary folder: its peak memory should
    grow only by the per-trial columns (69 bytes a trial), whatever the trial count."""
    import tempfile

    from fabricsim.cli import main as fabricsim

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        code = fabricsim(["run", str(SCENARIOS / name), "--trials", str(trials), "-o", f"{out}/run"])
        ran = time.perf_counter()
    return {"trials": trials, "exit_code": code, "run_s": ran - started, "trials_per_s": trials / (ran - started)}


CASES = {
    "main_1000_trials": lambda: _scenario_trials("tp4_ring_allgather.yaml", 1000),
    "main_10k_trials_run": lambda: _run_command("tp4_ring_allgather.yaml", 10_000),
    "main_100k_trials_run": lambda: _run_command("tp4_ring_allgather.yaml", 100_000),
    "ring_allreduce_8_ranks_1GiB": lambda: _ring_all_reduce(8, "1GiB"),
    "ring_allreduce_256_ranks": lambda: _ring_all_reduce(256, "1GiB"),
    "ring_allreduce_256_ranks_event_loop": lambda: _ring_all_reduce(256, "1GiB", event_loop=True),
    "ring_allreduce_1024_ranks_event_loop": lambda: _ring_all_reduce(1024, "1GiB", event_loop=True),
    "ring_allreduce_256_ranks_event_by_event": lambda: _ring_all_reduce(256, "1GiB", True, event_by_event=True),
    "ring_allreduce_1024_ranks": lambda: _ring_all_reduce(1024, "1GiB"),
    "naive_simpy_ring_allreduce_1024_ranks": lambda: _naive_simpy(1024),
    **{f"all_to_all_{hosts}_hosts": lambda hosts=hosts: _all_to_all(hosts) for hosts in (16, 32, 64, 128)},
    "cli_run_1000_trials": lambda: _cli_run("tp4_ring_allgather.yaml", 1000),
    "cli_help": lambda: _command(["--help"]),
    "leaf_spine_128_hosts_1_trial": lambda: {**_compiled_code_loaded(),
                                             **_scenario_trials("leaf_spine_ecmp.yaml", 1, ("fabric.hosts=128",))},
    "leaf_spine_128_hosts_1_trial_event_by_event": lambda: _event_by_event(
        lambda: _scenario_trials("leaf_spine_ecmp.yaml", 1, ("fabric.hosts=128",))),
}


def _child(case: str) -> None:
    started = time.perf_counter()
    figures = CASES[case]()
    figures["wall_s"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    figures["cpu_s"] = usage.ru_utime + usage.ru_stime  # steadier than wall time on a shared machine
    figures["peak_rss_MiB"] = usage.ru_maxrss / 1024
    print(json.dumps(figures))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child(argv[1])
        return 0
    cases = argv or list(CASES)
    print(f"# {platform.processor() or platform.machine()}, {platform.python_implementation()} "
          f"{platform.python_version()}, {sys.platform}")
    for case in cases:
        result = subprocess.run([sys.executable, __file__, "--child", case], capture_output=True, text=True)
        if result.returncode:
            print(f"{case}: failed: {result.stderr.strip().splitlines()[-1]}")
            continue
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(f"{case}: " + ", ".join(f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
                                      for key, value in figures.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
