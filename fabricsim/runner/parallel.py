"""Trial execution: in this process, over a local process pool, or on a Dask distributed cluster.

A trial's numbers depend only on the scenario and the trial's index (its random stream is the
index-th child of the scenario's SeedSequence), so any split of the trials over workers gives the
same records. Trials travel in batches of at most MAX_BATCH_TRIALS, one task each; a worker process
builds the scenario's Simulation once and keeps it for the batches that follow. Records come back in
trial order, and only a few batches per worker are submitted ahead of the one being read, so a run
of any length holds a bounded number of records. Workers end with their parent: on an error, Ctrl-C or
SIGTERM the parent ends them, and a worker whose parent was killed ends on its own.

Progress goes to stderr: a bar on a terminal; elsewhere (a log, CI) a line every PROGRESS_STEP of the
trials with the rate and the time left, once a run has lasted PROGRESS_AFTER_S.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Callable, Iterable, Iterator, Sequence

from tqdm import tqdm

from fabricsim.config import Scenario, ScenarioError
from fabricsim.records import TrialRecord
from fabricsim.runner.simulation import Simulation

BATCHES_PER_WORKER = 8  # enough batches to even out the load, few enough to keep the overhead small
MAX_BATCH_TRIALS = 500  # records a batch brings back at once
BATCHES_IN_FLIGHT_PER_WORKER = 2  # submitted ahead of the batch being read: enough to keep workers busy
PARENT_POLL_S = 0.2  # how often a worker looks whether its parent is still there
PROGRESS_STEP = 0.05  # fraction of the trials between two progress lines when not on a terminal
PROGRESS_AFTER_S = 2.0  # runs shorter than this print no progress lines

_SIMULATIONS: dict[str, Simulation] = {}


def _simulation(scenario: Scenario, source: str) -> Simulation:
    key = scenario.model_dump_json()
    if key not in _SIMULATIONS:
        _SIMULATIONS.clear()
        _SIMULATIONS[key] = Simulation(scenario, source)
    return _SIMULATIONS[key]


def run_batch(scenario: Scenario, source: str, indices: Sequence[int]) -> list[TrialRecord]:
    """Run the trials with these indices in a worker, reusing the worker's Simulation."""
    return _run_indices(_simulation(scenario, source), indices)


def _run_indices(simulation: Simulation, indices: Sequence[int]) -> list[TrialRecord]:
    return [simulation.run_trial(simulation.plan.trials[i]) for i in indices]


def batches(count: int, workers: int) -> Iterator[range]:
    """The trial indices 0..count-1 in consecutive batches: BATCHES_PER_WORKER per worker, at most
    MAX_BATCH_TRIALS each."""
    size = min(MAX_BATCH_TRIALS, max(1, math.ceil(count / (workers * BATCHES_PER_WORKER))))
    return (range(start, min(start + size, count)) for start in range(0, count, size))


def run_trials(simulation: Simulation, source: str, workers: int = 1, scheduler: str | None = None,
               progress: bool | None = None) -> Iterator[TrialRecord]:
    """Every trial of the simulation's plan, in order: here (workers = 1), over ``workers`` local
    processes, or on the Dask scheduler at ``scheduler`` (``tcp://host:port``)."""
    count = len(simulation.plan.trials)
    show = sys.stderr.isatty() if progress is None else progress
    lines = ProgressLines(count, simulation.scenario.name) if progress is None and not show else None
    with tqdm(total=count, unit="trial", disable=not show, file=sys.stderr, smoothing=0.1) as bar:
        for batch in _batch_results(simulation, source, workers, scheduler):
            bar.update(len(batch))
            if lines is not None:
                lines.update(len(batch))
            yield from batch


class ProgressLines:
    """Progress as plain lines on stderr, for logs: one each time another PROGRESS_STEP of `count`
    trials is done, with the rate and the time left, from PROGRESS_AFTER_S into the run."""

    def __init__(self, count: int, name: str, clock: Callable[[], float] = time.monotonic, stream=None) -> None:
        self.count, self.name, self.clock = count, name, clock
        self.stream = stream or sys.stderr
        self.start_s, self.done, self.next_report = clock(), 0, 0

    def update(self, trials: int) -> None:
        self.done += trials
        elapsed_s = self.clock() - self.start_s
        if self.done < self.next_report or elapsed_s < PROGRESS_AFTER_S or self.done >= self.count:
            return
        step = max(1, math.ceil(PROGRESS_STEP * self.count))
        self.next_report = (self.done // step + 1) * step
        rate = self.done / elapsed_s
        print(f"{self.name}: {self.done}/{self.count} trials ({100 * self.done / self.count:.0f}%), "
              f"{rate:.0f} trials/s, about {(self.count - self.done) / rate:.0f} s left", file=self.stream, flush=True)


def _batch_results(simulation: Simulation, source: str, workers: int, scheduler: str | None) -> Iterable[list]:
    scenario = simulation.scenario
    plan = batches(len(simulation.plan.trials), workers)
    if scheduler is not None:
        yield from _on_dask(scenario, source, plan, scheduler)
    elif workers == 1:
        for indices in plan:
            yield _run_indices(simulation, indices)
    else:
        pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_follow_parent,
                                   initargs=(os.getpid(),))
        try:
            yield from _in_order(lambda indices: _submit_holding_signals(pool, scenario, source, indices), plan,
                                 BATCHES_IN_FLIGHT_PER_WORKER * workers)
        except BaseException:  # an error, Ctrl-C, SIGTERM or a reader that stopped: end the workers now
            _stop_workers(pool)
            raise
        pool.shutdown()


def _submit_holding_signals(pool: ProcessPoolExecutor, scenario: Scenario, source: str, indices: range):
    """Submit a batch with Ctrl-C and SIGTERM held until it is submitted: a submit may start a worker,
    and a parent stopped half-way through handing a new worker its start-up data leaves the worker to
    die with a traceback on the shared stderr. A signal that came meanwhile is raised again after."""
    if threading.current_thread() is not threading.main_thread():
        return pool.submit(run_batch, scenario, source, indices)
    held: list[int] = []
    previous = {signum: signal.signal(signum, lambda signum, _frame: held.append(signum))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return pool.submit(run_batch, scenario, source, indices)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        if held:
            signal.raise_signal(held[0])


def _follow_parent(parent_pid: int) -> None:
    """In each worker: leave Ctrl-C to the parent (which stops the workers), and end when the parent
    is gone, whatever signal ended it (SIGKILL included)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what is queued and end the worker processes without waiting for their batches."""
    processes = list((pool._processes or {}).values())  # the executor has no public way to end them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=5)


def _in_order(submit: Callable, plan: Iterable[range], in_flight: int) -> Iterator[list]:
    """Each batch's result, in order, with at most ``in_flight`` batches submitted and not yet read."""
    pending = deque()
    for indices in plan:
        pending.append(submit(indices))
        if len(pending) == in_flight:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _on_dask(scenario: Scenario, source: str, plan: Iterable[range], scheduler: str) -> Iterable[list]:
    try:
        from dask.distributed import Client
    except ImportError:
        raise ScenarioError("--executor dask: expected the dask extra, pip install 'fabricsim[dask]'") from None
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, ValueError, TypeError) as error:
        raise ScenarioError(f"--scheduler {scheduler}: expected a reachable Dask scheduler ({error})") from None
    with client:
        scenario_future = client.scatter(scenario, broadcast=True)
        threads = sum(client.nthreads().values())
        yield from _in_order(lambda indices: client.submit(run_batch, scenario_future, source, indices, pure=False),
                             plan, BATCHES_IN_FLIGHT_PER_WORKER * max(1, threads))
