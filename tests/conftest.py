"""Shared test helpers: scenarios built from dicts, and small fabrics built by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabricsim.config import Scenario, validate_scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


def make_scenario(**sections) -> Scenario:
    """A valid scenario from keyword sections; ``workload`` defaults to one 1 MiB data size."""
    raw = {"name": "test", "workload": {"rule": "data_sizes", "data_sizes": ["1MiB"]}}
    raw.update(sections)
    return validate_scenario(raw, "<test>")


@pytest.fixture
def scenario_factory():
    return make_scenario
