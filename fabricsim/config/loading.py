"""Loading a scenario: YAML in, overrides applied, referenced files read, one clear line out on
bad input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from fabricsim.config.base import KeyedValueError, ScenarioError
from fabricsim.config.workload import TransformerSpec
from fabricsim.config.scenario import Scenario


def load_scenario(path: str | Path, overrides: tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file; raise ScenarioError with one clear line."""
    path = Path(path)
    raw = _read_yaml(path)
    for override in overrides:
        _apply_override(raw, override, path)
    for key in ("model", "transformer"):
        ref = raw.get("workload", {}).get(key) if isinstance(raw.get("workload"), dict) else None
        if isinstance(ref, str):
            raw["workload"][key] = _read_reference(path, f"workload.{key}", ref)
    _read_sample_files(raw, path, "")
    _read_preset_file(raw, path)
    for key in ("infragraph", "infragraph_annotations"):
        ref = raw.get("fabric", {}).get(key) if isinstance(raw.get("fabric"), dict) else None
        if isinstance(ref, str):
            raw["fabric"][key] = _read_reference(path, f"fabric.{key}", ref)
    return validate_scenario(raw, path)


def _read_preset_file(raw: dict, path: Path) -> None:
    """``fabric.preset_file``: fabric keys in a file (``fabricsim calibrate`` writes one) laid under the
    scenario's own fabric keys, as a named preset is."""
    fabric = raw.get("fabric")
    if not isinstance(fabric, dict) or "preset_file" not in fabric:
        return
    reference = fabric.pop("preset_file")
    if not isinstance(reference, str):
        raise ScenarioError(f"{path}: fabric.preset_file: expected a file path relative to the scenario, "
                            f"got {reference!r}")
    from fabricsim.fabric.presets import merged
    keys = _read_reference(path, "fabric.preset_file", reference)
    for key, value in fabric.items():  # nic: roce_400g names the preset of the mapping the file gives
        if isinstance(value, str) and isinstance(keys.get(key), dict):
            fabric[key] = {"preset": value}
    raw["fabric"] = merged(keys, fabric)


def _read_sample_files(node: Any, path: Path, key_path: str) -> None:
    """Replace each empirical distribution's ``file`` by its ``samples``, one time per line."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in list(children):
        _read_sample_files(child, path, f"{key_path}{key}.")
    if isinstance(node, dict) and node.get("distribution") == "empirical" and isinstance(node.get("file"), str):
        where = f"{key_path}file"
        try:
            lines = (path.parent / node.pop("file")).read_text().split()
        except OSError as error:
            raise ScenarioError(f"{path}: {where}: cannot read the sample file ({error.strerror})") from None
        node["samples"] = lines


def validate_scenario(raw: object, path: str | Path) -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as error:
        raise ScenarioError(_first_error_line(error, path)) from None


def load_transformer(path: str | Path) -> TransformerSpec:
    """Read and validate a transformer model file: a Hugging Face config.json or fabricsim's own keys."""
    path = Path(path)
    try:
        return TransformerSpec.model_validate(_read_yaml(path))
    except ValidationError as error:
        raise ScenarioError(_first_error_line(error, path)) from None


def _read_reference(scenario_path: Path, key_path: str, reference: str) -> dict:
    """A file the scenario names by a path relative to itself; errors inside it name that file."""
    target = scenario_path.parent / reference
    if not target.is_file():
        raise ScenarioError(f"{scenario_path}: {key_path}: expected a file path relative to the scenario, "
                            f"{target} does not exist")
    return _read_yaml(target)


def _read_yaml(path: Path) -> dict:
    where = f"{path}: "
    try:
        text = path.read_text()
    except OSError as error:
        raise ScenarioError(f"{where}cannot read the file ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ScenarioError(f"{where}malformed YAML{at}: {getattr(error, 'problem', error)}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}expected a mapping of keys at the top level, got {type(data).__name__}")
    return data


def _apply_override(raw: dict, override: str, path: Path) -> None:
    key_path, sep, text = override.partition("=")
    if not sep or not key_path:
        raise ScenarioError(f"--set {override}: expected key.path=value")
    keys = key_path.split(".")
    node = raw
    for depth, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            where = ".".join(keys[: depth + 1])
            raise ScenarioError(f"{path}: --set {key_path}: {where} holds a value, not a mapping of keys")
        node = child
    try:
        node[keys[-1]] = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ScenarioError(f"{path}: --set {key_path}: the value {text!r} is not valid YAML") from None


def _first_error_line(error: ValidationError, path: str | Path) -> str:
    detail = error.errors()[0]
    loc = [str(part) for part in detail["loc"]]
    key_path = ".".join(part for part in loc if not part.startswith("function-"))
    cause = detail.get("ctx", {}).get("error")
    if isinstance(cause, KeyedValueError):
        key_path = ".".join(filter(None, (key_path, cause.key_path)))
    return f"{path}: {key_path or '(top level)'}: {_expected(detail)}"


def _expected(detail: dict) -> str:
    kind, message, ctx = detail["type"], detail["msg"], detail.get("ctx", {})
    given = detail.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        text = str(ctx.get("error", message))
        return text if text.startswith(("expected", "rule")) else f"expected {text}"
    if kind == "literal_error":
        return f"expected one of {ctx.get('expected')}, got {given!r}"
    text = message.removeprefix("Input should be ").removeprefix("Value error, ")
    text = re.sub(r"valid dictionary or instance of \w+", "mapping of keys", text)
    return f"expected {text}, got {given!r}"
