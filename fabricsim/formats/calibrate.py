"""Calibration: a scenario's link classes fitted to nccl-tests measurements of the user's cluster.

The model is fabricsim's own simulation: the scenario's collective swept over the measured sizes
(``fabricsim.output.sweep.run_sweep``, one run per size, impairments off so that the model is deterministic).
The parameters are each link class's latency (alpha) and bandwidth (beta): NVLink (``fabric.nvlink``),
PCIe (``fabric.pcie``) and the NIC (``fabric.nic``: its line rate, and its per-traversal latency), for
the classes on the collective's routes.
Only the parameters the measurements can tell apart are fitted: from the sensitivity of the simulated
times to each parameter at the scenario's values, bandwidths first (NIC, NVLink, PCIe), then latencies, a
parameter is kept only when it adds a direction no kept parameter has (a link class that is no
route's bottleneck, or a latency that only adds to another on every route, stays at the scenario's
value and is reported as held). A held bandwidth never becomes the bottleneck by the fit: it is raised
to the largest fitted bandwidth when that passes it (the data could not see it, so it must not bind).
The parameters are then chosen again at the fitted values and fitted again, until the choice holds
(at most FIT_ROUNDS times). With an NCCL protocol, its base and per-hop latencies
(``collectives.protocol``) stay NCCL's constants: at one rank count they add the same time to every
size, as the link latencies do, so the measurements cannot tell them apart and the fitted link
latencies take up any difference.

The fit is scipy.optimize.least_squares on log(time simulated) - log(time measured), in log
parameters, so that every size weighs by its relative error and parameters stay positive. Every
``holdout``-th size (the second, then every ``holdout`` sizes after) is held out of the fit; the error
there is the calibration's report, split by regime (``formats.measured``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from fabricsim.collectives.sizes import size_bytes_of
from fabricsim.config import Scenario, ScenarioError, validate_scenario
from fabricsim.formats.measured import SizeError, size_errors
from fabricsim.formats.nccl_tests_log import MeasuredRow, MeasuredRun
from fabricsim.output.sweep import run_sweep, sweep_scenario
from fabricsim.runner.simulation import Simulation

# link kind on the fabric -> the fabric section whose bandwidth and latency it takes
LINK_SECTIONS = {"roce": "nic", "nvlink": "nvlink", "pcie": "pcie"}
MIN_LATENCY_PS = 1_000  # a latency of zero starts the fit at 1 ns (log parameters stay positive)
SENSITIVITY_STEP = 0.05  # relative change of a parameter when probing what it moves
NEGLIGIBLE_RTOL = 1e-3  # a parameter that moves the residuals less than this fraction of the most moves none
COLLINEAR_RTOL = 1e-2  # a smallest singular value below this fraction of the largest: no new direction
# the search stays within 1 Mb/s .. 10 Pb/s and 1 ps .. 1 ms (routing needs bounded latencies)
BOUNDS = {"bandwidth": (1e6, 1e16), "latency": (1.0, 1e9)}
FIT_ROUNDS = 4


@dataclass(frozen=True, slots=True)
class Parameter:
    section: str  # "nic", "nvlink", "pcie"
    quantity: str  # "bandwidth" (bits/s) or "latency" (ps)

    @property
    def name(self) -> str:
        return f"{self.section}.{self.quantity}"

    def text(self, value: float) -> str:
        """The value as a scenario writes it."""
        return f"{value:.9g}bps" if self.quantity == "bandwidth" else f"{round(value)}ps"


@dataclass(frozen=True)
class Calibration:
    start: dict[Parameter, float]
    fitted: dict[Parameter, float]  # the parameters a fit moved, at their new values
    raised: tuple[Parameter, ...]  # of those, the bandwidths raised only to stay off the bottleneck
    held: tuple[Parameter, ...]  # left at the scenario's value
    fit_errors: list[SizeError]
    holdout_errors: list[SizeError]

    def preset(self) -> dict[str, dict[str, str]]:
        """The fitted values as fabric keys (a preset file's content)."""
        keys: dict[str, dict[str, str]] = {}
        for parameter, value in self.fitted.items():
            keys.setdefault(parameter.section, {})[parameter.quantity] = parameter.text(value)
        return keys


class SweepModel:
    """Simulated times of the scenario's collective at given sizes, for given parameter values."""

    def __init__(self, scenario: Scenario, source: str, dtype: str) -> None:
        raw = scenario.resolved()
        raw["impairments"] = {}
        self.raw, self.source, self.dtype = raw, source, dtype
        self.algorithm = scenario.collective.algorithm
        self._cache: dict[tuple, dict[int, float]] = {}

    def times_us(self, values: dict[Parameter, float], sizes_bytes: list[int]) -> dict[int, float]:
        key = (tuple(sorted((p.name, v) for p, v in values.items())), tuple(sizes_bytes))
        if key not in self._cache:
            raw = {**self.raw, "fabric": {name: dict(value) if isinstance(value, dict) else value
                                          for name, value in self.raw["fabric"].items()}}
            for parameter, value in values.items():
                raw["fabric"][parameter.section][parameter.quantity] = parameter.text(value)
            scenario = validate_scenario(raw, self.source)
            rows = run_sweep(scenario, self.source, [self.algorithm], sizes_bytes, 1, self.dtype,
                             lambda simulation: simulation.run())
            self._cache[key] = {row.size_bytes: row.time_us for row in rows}
        return self._cache[key]


def route_link_kinds(scenario: Scenario, source: str) -> set[str]:
    """The kinds of link on the routes of the scenario's collective."""
    simulation = Simulation(sweep_scenario(scenario, source, scenario.collective.algorithm,
                                           [size_bytes_of(scenario.collective.op, scenario.fabric.gpus, 1024)], 1),
                            source)
    links = simulation.fabric.links
    return {links[index].kind for call in simulation.plan.trials[0].calls
            for src, dst in simulation.call_schedule(call).transfers.pairs[0].tolist()
            for index in simulation.route(call.group[src], call.group[dst]).links}


def link_parameters(scenario: Scenario, source: str) -> dict[Parameter, float]:
    """Bandwidth and latency of each link class on the collective's routes, at the scenario's values;
    bandwidths first (NIC, NVLink, PCIe), then latencies."""
    kinds = route_link_kinds(scenario, source)
    sections = [section for kind, section in LINK_SECTIONS.items() if kind in kinds]
    spec = scenario.fabric
    values = {}
    for quantity in ("bandwidth", "latency"):
        for section in sections:
            value = getattr(getattr(spec, section), f"{quantity}_bps" if quantity == "bandwidth" else "latency_ps")
            values[Parameter(section, quantity)] = max(value, MIN_LATENCY_PS) if quantity == "latency" else value
    return values


def split_sizes(rows: list[MeasuredRow], holdout: int) -> tuple[list[MeasuredRow], list[MeasuredRow]]:
    """(fitted, held out): in size order, the second row and every ``holdout``-th after it held out."""
    ordered = sorted(rows, key=lambda row: row.size_bytes)
    held = [row for index, row in enumerate(ordered) if index % holdout == 1]
    return [row for row in ordered if row not in held], held


def calibrate(scenario: Scenario, source: str, run: MeasuredRun, holdout: int = 3,
              rounds: int = FIT_ROUNDS) -> Calibration:
    """Fit the scenario's link classes to ``run`` (its rows' times) in at most ``rounds`` rounds and
    report the held-out error."""
    fit_rows, held_rows = split_sizes(list(run.rows), holdout)
    start = link_parameters(scenario, source)
    if len(fit_rows) < 2:
        raise ScenarioError(f"{run.source}: expected at least 2 sizes to fit after holding out every "
                            f"{holdout}th, got {len(fit_rows)}")
    model = SweepModel(scenario, source, run.rows[0].dtype)
    sizes = [row.size_bytes for row in fit_rows]
    measured = np.log([row.time_us for row in fit_rows])

    def residuals(values: dict[Parameter, float]) -> np.ndarray:
        simulated = model.times_us(values, sizes)
        return np.log([simulated[size] for size in sizes]) - measured

    values, free, ever_free = dict(start), [], set()
    for _round in range(rounds):  # a fit may move the bottleneck to another class: look again
        now_free = identifiable(values, residuals)
        if now_free == free:
            break
        free = now_free
        ever_free.update(free)
        values = _fit(values, free, residuals)
    moved = {p: value for p, value in values.items() if value != start[p]}
    held = tuple(p for p in start if p not in moved)
    all_sizes = sorted(row.size_bytes for row in run.rows)
    simulated = model.times_us(values, all_sizes)
    errors = size_errors(run, simulated)
    held_sizes = {row.size_bytes for row in held_rows}
    return Calibration(start, moved, tuple(p for p in moved if p not in ever_free), held,
                       [e for e in errors if e.size_bytes not in held_sizes],
                       [e for e in errors if e.size_bytes in held_sizes])


def _fit(values: dict[Parameter, float], free: list[Parameter], residuals) -> dict[Parameter, float]:
    """``values`` with the ``free`` parameters moved to the least-squares fit (in log space, within BOUNDS)."""
    if not free:
        return values

    held_bandwidths = [p for p in values if p.quantity == "bandwidth" and p not in free]

    def at(x: np.ndarray) -> dict[Parameter, float]:
        fitted = {**values, **{p: math.exp(v) for p, v in zip(free, x)}}
        ceiling = max((fitted[p] for p in free if p.quantity == "bandwidth"), default=0.0)
        return {**fitted, **{p: max(values[p], ceiling) for p in held_bandwidths}}

    lower, upper = np.log([[BOUNDS[p.quantity][side] for p in free] for side in (0, 1)])
    x0 = np.clip(np.log([values[p] for p in free]), lower, upper)
    result = least_squares(lambda x: residuals(at(x)), x0, bounds=(lower, upper), diff_step=1e-3, xtol=1e-10,
                           ftol=1e-12, gtol=1e-12, max_nfev=200)
    return at(result.x)


def identifiable(start: dict[Parameter, float], residuals) -> list[Parameter]:
    """The parameters, in order, that each move the residuals in a direction the ones before do not."""
    base = residuals(start)
    columns = {p: (residuals({**start, p: start[p] * (1 + SENSITIVITY_STEP)}) - base) / SENSITIVITY_STEP
               for p in start}
    largest = max((np.linalg.norm(column) for column in columns.values()), default=0.0)
    kept: list[Parameter] = []
    for parameter, column in columns.items():
        if largest == 0 or np.linalg.norm(column) < NEGLIGIBLE_RTOL * largest:
            continue
        matrix = np.column_stack([columns[p] / np.linalg.norm(columns[p]) for p in kept + [parameter]])
        singular = np.linalg.svd(matrix, compute_uv=False)
        if singular[-1] > COLLINEAR_RTOL * singular[0]:
            kept.append(parameter)
    return kept
