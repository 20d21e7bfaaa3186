"""The import layers: no module of fabricsim imports one of a layer above its own.

Every import counts, at the top of a module or inside a function or a validator, read from the source
(``ast``) so that no import is missed because it never ran. README.md's "Code layout" names the same
layers.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.conftest import python_prints

PACKAGE = Path(__file__).resolve().parent.parent / "fabricsim"

# lowest first; a module may import its own layer and the layers below, never one above
LAYERS = (
    ("leaves", ("fabricsim.units", "fabricsim.records", "fabricsim.version", "fabricsim.compiler")),
    ("config", ("fabricsim.config",)),
    ("models, fabric", ("fabricsim.models", "fabricsim.fabric")),
    ("collectives", ("fabricsim.collectives",)),
    ("workload", ("fabricsim.workload",)),
    ("engine", ("fabricsim.engine",)),
    ("runner", ("fabricsim.runner",)),
    ("output", ("fabricsim.output", "fabricsim.formats", "fabricsim.planner")),
    ("commands", ("fabricsim.commands",)),
    ("cli and the public API", ("fabricsim.cli", "fabricsim")),
)
SIMPY_ONLY_IN = "fabricsim.engine"


def layer_of(module: str) -> int:
    """The layer of a module: that of the longest package prefix the table names."""
    matches = [(len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise KeyError(f"{module} is in no layer of LAYERS")
    return max(matches)[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in the file, nested ones too; ``from a import b`` gives a.b when
    b is a module, else a."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found += [(node.lineno, f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
                      for alias in node.names]
    return found


def arrows_up() -> list[str]:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        for line, target in imported(path):
            where = f"{path.relative_to(PACKAGE.parent)}:{line}: {module}"
            if target.split(".")[0] == "simpy" and not (module + ".").startswith(SIMPY_ONLY_IN + "."):
                wrong.append(f"{where} imports simpy; only {SIMPY_ONLY_IN} does")
            if target.split(".")[0] != "fabricsim":
                continue
            if layer_of(target) > layer_of(module):
                wrong.append(f"{where} ({LAYERS[layer_of(module)][0]}) imports {target} "
                             f"({LAYERS[layer_of(target)][0]}), a layer above")
    return wrong


def test_no_import_runs_back_up_the_layers():
    assert arrows_up() == []


def test_every_module_has_a_layer():
    modules = [module_name(path) for path in PACKAGE.rglob("*.py")]
    assert len(modules) > 80
    for module in modules:
        layer_of(module)  # raises KeyError for a module of no layer


def test_the_check_sees_an_import_inside_a_function(tmp_path, monkeypatch):
    """A config module importing the runner from inside a validator is caught."""
    fake = tmp_path / "fabricsim"
    (fake / "config").mkdir(parents=True)
    (fake / "runner").mkdir()
    for name in ("__init__.py", "config/__init__.py", "runner/__init__.py", "runner/simulation.py"):
        (fake / name).write_text("")
    (fake / "config" / "spec.py").write_text("def check():\n    from fabricsim.runner import simulation\n"
                                             "    import simpy\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert arrows_up() == [
        "fabricsim/config/spec.py:2: fabricsim.config.spec (config) imports fabricsim.runner.simulation (runner), "
        "a layer above",
        "fabricsim/config/spec.py:3: fabricsim.config.spec imports simpy; only fabricsim.engine does"]


@pytest.mark.parametrize("module, layer", [("fabricsim.config.presets", "config"), ("fabricsim.cli", "cli and the public API"),
                                           ("fabricsim.output.results", "output"), ("fabricsim", "cli and the public API")])
def test_layer_of_takes_the_longest_prefix(module, layer):
    assert LAYERS[layer_of(module)][0] == layer


def test_the_public_api_is_imported_when_first_used():
    """``import fabricsim`` loads no layer (the command line's --help stays fast); a name loads its own."""
    code = ("import sys, fabricsim; before = sorted(m for m in sys.modules if m.startswith('fabricsim'));"
            "fabricsim.Simulation; print(before, 'simpy' in sys.modules, sorted(fabricsim.__all__))")
    assert python_prints(code) == ("['fabricsim', 'fabricsim.version'] True ['Breakdown', 'Scenario', "
                                     "'ScenarioError', 'Simulation', 'TrialRecord', '__version__', 'collect', "
                                     "'load_scenario', 'run_trials', 'validate_scenario']")
