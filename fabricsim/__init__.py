"""fabricsim: a discrete-event emulator of a GPU cluster's network fabric for collective communication.

The public API follows four steps::

    import fabricsim
    scenario = fabricsim.load_scenario("scenarios/tp4_ring_allgather.yaml")  # 1. describe
    simulation = fabricsim.Simulation(scenario)                               # 2. build fabric, workload
    records = simulation.run()                                                # 3. run the trials
    records[0].latency_ps, records[0].breakdown                               # 4. read the records

``run_trials(simulation, source, workers=N)`` runs them over worker processes (the same records, in
trial order) and ``collect(simulation, records, out_dir)`` folds records into a run's summary and,
given a folder, writes the result folder ``fabricsim run`` writes. The names are imported when first
used, so that ``import fabricsim`` (and ``fabricsim --help``) stays fast. This package is the top
layer: nothing inside fabricsim imports from it (README.md, "Code layout").
"""

from __future__ import annotations

import importlib

from fabricsim.version import __version__

_API = {
    "Scenario": "fabricsim.config",
    "ScenarioError": "fabricsim.config",
    "load_scenario": "fabricsim.config",
    "validate_scenario": "fabricsim.config",
    "Simulation": "fabricsim.runner.simulation",
    "run_trials": "fabricsim.runner.parallel",
    "Breakdown": "fabricsim.records",
    "TrialRecord": "fabricsim.records",
    "collect": "fabricsim.output.results",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    if name not in _API:
        raise AttributeError(f"module 'fabricsim' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
