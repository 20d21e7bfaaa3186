"""Loading a scenario: YAML in, overrides applied, referenced files read, one clear line out on
bad input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fabricsim.config.base import KeyedValueError, ScenarioError
from fabricsim.config.presets import merged
from fabricsim.config.scenario import Scenario
from fabricsim.config.workload import TransformerSpec
from fabricsim.config.yaml_text import MAX_DEPTH, YamlProblem, load_yaml_text, read_text_file, read_yaml_file


def load_scenario(path: str | Path, overrides: tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file; raise ScenarioError with one clear line."""
    path = Path(path)
    raw = _read_yaml(path)
    for override in overrides:
        for target in _override_targets(raw, override):
            _apply_override(target, override, path)
    referenced = []  # keys whose values came from other files: their errors quote none of it
    jobs = raw.get("jobs") if isinstance(raw.get("jobs"), list) else []
    workloads = [("workload", raw)] + [(f"jobs.{index}.workload", job) for index, job in enumerate(jobs)
                                       if isinstance(job, dict)]
    for prefix, holder in workloads:  # the scenario's workload, or each job's
        workload = holder.get("workload")
        for key in ("model", "transformer"):
            ref = workload.get(key) if isinstance(workload, dict) else None
            if isinstance(ref, str):
                workload[key] = _read_reference(path, f"{prefix}.{key}", ref)
                referenced.append(f"{prefix}.{key}")
    _read_sample_files(raw, path, "", referenced)
    _read_preset_file(raw, path)
    for key in ("infragraph", "infragraph_annotations"):
        ref = raw.get("fabric", {}).get(key) if isinstance(raw.get("fabric"), dict) else None
        if isinstance(ref, str):
            raw["fabric"][key] = _read_reference(path, f"fabric.{key}", ref)
            referenced.append(f"fabric.{key}")
    return validate_scenario(raw, path, tuple(referenced))


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
    keys = _read_reference(path, "fabric.preset_file", reference)
    for key, value in fabric.items():  # nic: roce_400g names the preset of the mapping the file gives
        if isinstance(value, str) and isinstance(keys.get(key), dict):
            fabric[key] = {"preset": value}
    raw["fabric"] = merged(keys, fabric)


def _read_sample_files(node: Any, path: Path, key_path: str, referenced: list[str]) -> None:
    """Replace each empirical distribution's ``file`` by its ``samples``, one time per line."""
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in list(children):
        _read_sample_files(child, path, f"{key_path}{key}.", referenced)
    if isinstance(node, dict) and node.get("distribution") == "empirical" and isinstance(node.get("file"), str):
        where = f"{key_path}file"
        try:
            node["samples"] = read_text_file(path.parent / node.pop("file")).split()
        except YamlProblem as problem:
            raise ScenarioError(f"{path}: {where}: {problem}") from None
        referenced.append(f"{key_path}samples")


def _override_targets(raw: dict, override: str) -> list[dict]:
    """Where an override applies: the scenario, or, for the trial count (--trials) of a scenario of
    several jobs, each job (whose workloads hold it)."""
    jobs = raw.get("jobs")
    if isinstance(jobs, list) and jobs and override.partition("=")[0].strip() == "workload.trials":
        return [job for job in jobs if isinstance(job, dict)]
    return [raw]


def validate_scenario(raw: object, path: str | Path, referenced: tuple[str, ...] = ()) -> Scenario:
    """The Scenario of a raw mapping; errors under a key in ``referenced`` (read from another file)
    name the key but quote none of the value."""
    try:
        return Scenario.model_validate(raw)
    except ValidationError as error:
        raise ScenarioError(_first_error_line(error, path, referenced)) from None
    except RecursionError:
        raise ScenarioError(f"{path}: expected at most {MAX_DEPTH} levels of nesting") from None


def load_transformer(path: str | Path) -> TransformerSpec:
    """Read and validate a transformer model file: a Hugging Face config.json or fabricsim's own keys."""
    path = Path(path)
    try:
        return TransformerSpec.model_validate(_read_yaml(path))
    except ValidationError as error:
        raise ScenarioError(_first_error_line(error, path)) from None


def _read_reference(scenario_path: Path, key_path: str, reference: str) -> dict:
    """A file the scenario names by a path relative to itself; errors name the scenario and the key, and
    quote nothing of the file."""
    target = scenario_path.parent / reference
    where = f"{scenario_path}: {key_path}"
    if not target.is_file():
        raise ScenarioError(f"{where}: expected a file path relative to the scenario, {target} does not exist")
    return _read_yaml(target, f"{where}: {reference}")


def _read_yaml(path: Path, named_as: str | None = None) -> dict:
    """A YAML file's top-level mapping. ``named_as`` (scenario: key: file) names a file the scenario points
    at: its errors say where reading stopped, not PyYAML's problem, which may quote the file (a key file,
    a password file)."""
    try:
        data = read_yaml_file(path)
    except YamlProblem as problem:
        text = str(problem) if named_as is None else str(problem).partition(": ")[0]
        raise ScenarioError(f"{named_as or path}: {text}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{named_as or path}: expected a mapping of keys at the top level, "
                            f"got {type(data).__name__}")
    return data


def _apply_override(raw: dict, override: str, path: Path) -> None:
    key_path, sep, text = override.partition("=")
    if not sep or not key_path:
        raise ScenarioError(f"--set {override}: expected key.path=value")
    keys = key_path.split(".")
    node: dict | list = raw
    for depth, key in enumerate(keys):
        if isinstance(node, list):  # a list of mappings (jobs.1.placement): its item by index
            key = _list_index(node, key, f"{path}: --set {key_path}: {'.'.join(keys[:depth])}")
        if depth == len(keys) - 1:
            break
        child = node[key] if isinstance(node, list) else node.setdefault(key, {})
        if not isinstance(child, (dict, list)):
            where = ".".join(keys[: depth + 1])
            raise ScenarioError(f"{path}: --set {key_path}: {where} holds a value, not a mapping of keys")
        node = child
    try:
        node[key] = load_yaml_text(text)
    except YamlProblem as problem:
        raise ScenarioError(f"{path}: --set {key_path}: the value {text!r} is not valid YAML ({problem})") from None


def _list_index(items: list, key: str, where: str) -> int:
    """The position ``key`` names in ``items`` (a list the key path runs through), or one clear line."""
    if not key.isdecimal() or int(key) >= len(items):
        raise ScenarioError(f"{where}: expected an index of its {len(items)} items (0 to {len(items) - 1}), "
                            f"got {key!r}" if items else f"{where}: expected an index, but the list is empty")
    return int(key)


def _first_error_line(error: ValidationError, path: str | Path, referenced: tuple[str, ...] = ()) -> str:
    detail = error.errors()[0]
    loc = [str(part) for part in detail["loc"]]
    key_path = ".".join(part for part in loc if not part.startswith("function-"))
    cause = detail.get("ctx", {}).get("error")
    if isinstance(cause, KeyedValueError):
        key_path = ".".join(filter(None, (key_path, cause.key_path)))
    expected = _expected(detail)
    if any(f"{key_path}.".startswith(f"{key}.") for key in referenced):
        expected = expected.split(", got ")[0]  # the value came from another file: quote none of it
    return f"{path}: {key_path or '(top level)'}: {expected}"


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
