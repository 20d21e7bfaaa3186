"""Signals during a run: SIGINT and SIGTERM end it with one line (exit 130, 143), SIGKILL ends it at once;
whatever the signal and the number of workers, no result folder appears, the earlier one stays as it
was, and no worker or helper process outlives the run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fabricsim.cli import main
from tests.conftest import ROOT
from tests.folder_snapshot import TINY, snapshot

LONG_RUN = TINY.replace("trials: 2", "trials: 1000000")  # far longer than a test waits


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


CASES = [(signum, code, workers) for signum, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143),
                                                     (signal.SIGKILL, -9)) for workers in (1, 2)]


def test_a_signal_leaves_no_result_folder_and_no_process(tmp_path, monkeypatch, capsys):
    """The six cases run side by side (each in its own folder), to keep the wait short."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    runs = []
    for signum, code, workers in CASES:
        folder = tmp_path / f"{signum.name}-{workers}"
        folder.mkdir()
        monkeypatch.chdir(folder)
        (folder / "tiny.yaml").write_text(TINY)
        (folder / "long.yaml").write_text(LONG_RUN)
        assert main(["run", "tiny.yaml", "-o", "out/run"]) == 0  # the earlier result folder
        process = subprocess.Popen([sys.executable, "-m", "fabricsim.cli", "run", "long.yaml", "-o", "out/run",
                                    "--workers", str(workers)], cwd=folder, env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        runs.append((signum, code, workers, folder, snapshot(folder), process))
    capsys.readouterr()
    pending, children = list(runs), {}
    deadline = time.monotonic() + 90
    while pending and time.monotonic() < deadline:  # signal each run once it writes and its workers are up
        for run in list(pending):
            signum, _, workers, folder, _, process = run
            assert process.poll() is None, process.communicate()[1]  # still running
            if (any(entry.name.startswith(".run.stage-") for entry in (folder / "out").iterdir())
                    and len(_children(process.pid)) >= (workers if workers > 1 else 0)):
                children[process.pid] = _children(process.pid)
                process.send_signal(signum)
                pending.remove(run)
        time.sleep(0.05)
    assert not pending, "a run did not start"
    for signum, code, workers, folder, before, process in runs:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == code, (signum, workers, stderr)
        if signum != signal.SIGKILL:
            assert stderr.strip().splitlines() == [f"fabricsim: {'interrupted' if code == 130 else 'terminated'}; "
                                                   "no result folder was written"]
        assert _wait_until(lambda: not any(map(_running, children[process.pid])), 10), \
            f"a worker outlived the run ({signum.name}, {workers} workers)"
        if signum == signal.SIGKILL:  # no time to clean up: the next run into the folder removes the stage
            monkeypatch.chdir(folder)
            assert any(entry.name.startswith(".run.stage-") for entry in (folder / "out").iterdir())
            assert main(["run", "tiny.yaml", "-o", "out/run"]) == 0  # the same run again: the same bytes
        assert snapshot(folder) == before, (signum.name, workers)
