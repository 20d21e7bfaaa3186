"""Shared test helpers: scenarios built from dicts, small fabrics built by hand, code run in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fabricsim.config import Scenario, validate_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def python_prints(code: str) -> str:
    """What ``code`` prints (stripped), run by a fresh Python with this tree first on its path, in the
    project's folder: for what a process imports, which the test's own process has long imported."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}).stdout.strip()


def make_scenario(**sections) -> Scenario:
    """A valid scenario from keyword sections; ``workload`` defaults to one 1 MiB data size."""
    raw = {"name": "test", "workload": {"rule": "data_sizes", "data_sizes": ["1MiB"]}}
    raw.update(sections)
    return validate_scenario(raw, "<test>")


@pytest.fixture
def scenario_factory():
    return make_scenario
