"""Matrix: the variants a comparison puts side by side.

Each scenario file given to ``fabricsim compare`` is one variant, unless it carries a ``matrix:`` of
key paths and values: then it is one variant per combination of those values (the first value of
every key first), each loaded as the file with those ``--set`` overrides and no matrix of its own.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import yaml

from fabricsim.config import Scenario, load_scenario


@dataclass(frozen=True)
class Variant:
    label: str
    scenario: Scenario
    source: str


def load_variants(paths: list[str], overrides: tuple[str, ...] = ()) -> list[Variant]:
    """The variants of every file, in order; labels are unique (the file path breaks name ties)."""
    variants = [variant for path in paths for variant in _file_variants(path, overrides, len(paths) > 1)]
    labels = [v.label for v in variants]
    return [Variant(f"{v.source}: {v.label}" if labels.count(v.label) > 1 else v.label, v.scenario, v.source)
            for v in variants]


def _file_variants(path: str, overrides: tuple[str, ...], name_labels: bool) -> list[Variant]:
    scenario = load_scenario(path, overrides)
    if not scenario.matrix:
        return [Variant(scenario.name, scenario, path)]
    variants = []
    for values in itertools.product(*scenario.matrix.values()):
        settings = [(key, yaml_text(value)) for key, value in zip(scenario.matrix, values)]
        variant = load_scenario(path, overrides + tuple(f"{key}={text}" for key, text in settings) + ("matrix={}",))
        label = ", ".join(f"{_short(key)}={text}" for key, text in settings)
        variants.append(Variant(f"{scenario.name}: {label}" if name_labels else label, variant, path))
    return variants


def _short(key_path: str) -> str:
    """A matrix key in a variant's label: without its section (fabric.hosts: hosts), whole when the rest
    starts at a list index (jobs.1.placement)."""
    rest = key_path.partition(".")[2]
    return key_path if not rest or rest.partition(".")[0].isdecimal() else rest


def yaml_text(value: object) -> str:
    """One line of YAML that loads back to `value` (as a --set override does)."""
    return yaml.safe_dump(value, default_flow_style=True, width=float("inf")).removesuffix("\n...\n").strip()
