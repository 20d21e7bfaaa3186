"""Signals during a run: SIGINT and SIGTERM end it with one line (exit 130, 143), SIGKILL ends it at once;
whatever the signal and the number of workers, no result folder appears, the earlier one stays as it
was, and no worker or helper process outlives the run: trial workers, nor the painters that draw the
pictures (a process group of the run's child and its children)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fabricsim.cli import main
from fabricsim.output.painters import PAINTERS
from tests.conftest import ROOT
from tests.folder_snapshot import TINY, snapshot

LONG_RUN = TINY.replace("trials: 2", "trials: 1000000")  # far longer than a test waits
LONG_RUN_WITH_PLOTS = LONG_RUN.replace("plots: false", "plots: true")


def _children(pid: int) -> set[int]:
    """Processes whose parent is pid (workers and multiprocessing's resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.add(int(entry.name))
    return found


def _descendants(pid: int) -> set[int]:
    """The children of pid, theirs, and so on (the painters are the run's child and its children)."""
    found, new = set(), _children(pid)
    while new:
        found |= new
        new = set().union(*map(_children, new)) - found
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's bookkeeping is left


def _wait_until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


CASES = [(signum, code, workers, False) for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143),
                                                            (signal.SIGKILL, -9)) for workers in (1, 2)]
CASES += [(signal.SIGTERM, 143, 1, True), (signal.SIGKILL, -9, 1, True)]  # with the painters up


def test_a_signal_leaves_no_result_folder_and_no_process(tmp_path, monkeypatch, capsys):
    """The eight cases run side by side (each in its own folder), to keep the wait short."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = []
    for signum, code, workers, plots in CASES:
        folder = tmp_path / f"{signum.name}-{workers}{'-plots' if plots else ''}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        (folder / "tiny.yaml").write_text(TINY)
        (folder / "long.yaml").write_text(LONG_RUN_WITH_PLOTS if plots else LONG_RUN)
        assert main(["run", "tiny.yaml", "-o", "out/run"]) == 0  # the earlier result folder
        process = subprocess.Popen([sys.executable, "-m", "fabricsim.cli", "run", "long.yaml", "-o", "out/run",
                                    "--workers", str(workers)], cwd=folder, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # the trial workers, or the painters (the first one forks the second once it has imported matplotlib)
        helpers = workers if workers > 1 else PAINTERS if plots and len(os.sched_getaffinity(0)) > 1 else 0
        runs.append((signum, code, workers, helpers, folder, snapshot(folder), process))
    capsys.readouterr()
    pending, children = list(runs), {}
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:  # signal each run once it writes and its helpers are up
        for run in list(pending):
            signum, _, _, helpers, folder, _, process = run
            assert process.poll() is None, process.communicate()[1]  # still running
            if (any(entry.name.startswith(".run.stage-") for entry in (folder / "out").iterdir())
                    and len(_descendants(process.pid)) >= helpers):
                children[process.pid] = _descendants(process.pid)
                process.send_signal(signum)
                pending.remove(run)
        time.sleep(0.05)
    assert not pending, "a run did not start"
    for signum, code, workers, _, folder, before, process in runs:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == code, (signum, workers, stderr)
        if signum != signal.SIGKILL:  # one line, after the progress lines of a run that lasted (a busy machine)
            lines = [line for line in stderr.strip().splitlines() if not line.startswith("tiny: ")]
            assert lines == [f"fabricsim: {'interrupted' if code == 130 else 'terminated'}; "
                             "no result folder was written"]
        assert _wait_until(lambda: not any(map(_running, children[process.pid])), 10), \
            f"a worker outlived the run ({signum.name}, {workers} workers)"
        if signum == signal.SIGKILL:  # no time to clean up: the next run into the folder removes the stage
            monkeypatch.chdir(folder)
            assert any(entry.name.startswith(".run.stage-") for entry in (folder / "out").iterdir())
            assert main(["run", "tiny.yaml", "-o", "out/run"]) == 0  # the same run again: the same bytes
        assert snapshot(folder) == before, (signum.name, workers)
