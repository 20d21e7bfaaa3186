"""Pictures drawn by worker processes (``fabricsim.output.painters``): the same bytes as drawn in the
process itself, a picture's error raised in the parent with the worker's traceback, no worker left,
and ``fabricsim run`` itself never importing matplotlib when painters draw its pictures."""

import os

import pytest

from fabricsim.output import painters as painters_module
from fabricsim.output.painters import PAINTERS, RUN_PICTURE_MODULES, RUN_WARM_UP, Painters, PictureError, draw_here
from fabricsim.output.results import collect
from fabricsim.runner.simulation import Simulation
from tests.conftest import SCENARIOS, make_scenario, python_prints
from tests.test_signals import _descendants, _running, _wait_until

CORES = len(os.sched_getaffinity(0))
needs_fork = pytest.mark.skipif(CORES < 2, reason="painters need a second core")
PICTURES = ("cdf.png", "ccdf.png", "delay.png", "breakdown.png")


@pytest.fixture(autouse=True)
def threads_left_by_other_tests(monkeypatch):
    """Painters fork only from a process with one thread; the suite's own (tqdm's monitor, left by an
    earlier test's progress bar) holds no lock a worker would need, so the tests fork past it."""
    monkeypatch.setattr(painters_module, "can_fork", lambda: CORES > 1)


@needs_fork
def test_painters_draw_the_bytes_drawn_here(tmp_path):
    """A run with outliers and failed trials (every picture's panels and notes), drawn both ways."""
    impairments = {"loss": {"rate": 0.02, "retry_count": 0, "timeout_exponent": 0},
                   "jitter": {"distribution": "exponential", "mean": "2us"}}
    simulation = Simulation(make_scenario(impairments=impairments, workload={
        "rule": "data_sizes", "data_sizes": ["64KiB"], "trials": 40}))
    records = simulation.run()
    assert 0 < sum(record.failed for record in records) < len(records)
    collect(simulation, iter(records), tmp_path / "here", draw_here)
    with Painters(RUN_PICTURE_MODULES, RUN_WARM_UP) as painters:
        collect(simulation, iter(records), tmp_path / "painted", painters.draw)
    for name in PICTURES:
        assert (tmp_path / "painted" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name


@needs_fork
def test_each_worker_draws_and_the_pictures_wait_for_a_free_one():
    pictures = [("os", "getpid", ())] * 5  # more pictures than workers
    before = _descendants(os.getpid())
    with Painters(("os",)) as painters:
        painters.draw(pictures)
        workers = _descendants(os.getpid()) - before
        assert len(workers) == PAINTERS
    assert _wait_until(lambda: not any(map(_running, workers)), 10)


@needs_fork
@pytest.mark.parametrize("modules, pictures, message", [
    (("json",), [("json", "loads", ("{",))], "json.loads: json.decoder.JSONDecodeError: Expecting property name"),
    (("no_such_module",), [("json", "loads", ("1",))],
     "importing the plot modules: ModuleNotFoundError: No module named 'no_such_module'"),
    (("json",), [("os", "_exit", (1,)), ("json", "loads", ("1",))], "os._exit: the painter process ended"),
])
def test_a_picture_that_fails_raises_in_the_parent_and_ends_the_workers(modules, pictures, message):
    before = _descendants(os.getpid())
    with Painters(modules) as painters:
        workers = _descendants(os.getpid()) - before
        with pytest.raises(PictureError) as raised:
            painters.draw(pictures)
    assert str(raised.value).startswith(message)
    if "ended" not in message:  # the worker's traceback, for --debug
        assert "in the painter process:\nTraceback" in str(raised.value.__cause__)
    assert _wait_until(lambda: not any(map(_running, workers)), 10)


def test_without_modules_or_fork_the_pictures_are_drawn_here(monkeypatch):
    drawn = []
    monkeypatch.setattr(painters_module, "_draw", drawn.append)
    with Painters(()) as painters:
        painters.draw([("os", "getpid", ())])
    monkeypatch.setattr(painters_module, "can_fork", lambda: False)
    with Painters(("os",)) as painters:
        painters.draw([("os", "getcwd", ())])
    assert drawn == [("os", "getpid", ()), ("os", "getcwd", ())]


def test_the_run_command_itself_imports_neither_matplotlib_nor_scipy(tmp_path):
    """``fabricsim run`` of a small fabric, in a fresh process: its painters import matplotlib and draw
    the pictures (the same as drawn here, above), so the command's own process never loads it, nor
    scipy (whose routes are for fabrics past 512 devices)."""
    code = ("import sys\nfrom fabricsim.cli import main\nfrom fabricsim.output.painters import can_fork\n"
            f"forked = can_fork()\ncode = main(['run', {str(SCENARIOS / 'tp4_ring_allgather.yaml')!r}, '--trials', "
            f"'20', '-o', {str(tmp_path / 'run')!r}])\n"
            "print(code, forked, sorted(name for name in ('matplotlib', 'scipy', 'PIL') if name in sys.modules))")
    code, forked, heavy = python_prints(code).splitlines()[-1].split(" ", 2)
    assert code == "0" and all((tmp_path / "run" / name).is_file() for name in PICTURES)
    assert heavy == ("[]" if forked == "True" else "['PIL', 'matplotlib']")
