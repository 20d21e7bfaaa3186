"""Scenario: the validated, frozen description of one experiment, loaded from YAML.

Every value is checked once here; everything downstream trusts it. Quantities are written with units
in YAML ("100Gbps", "600ns", "64MiB") and held in base units (bits/s, picoseconds, bytes) under names
that say so. Unknown keys are errors. ``load_scenario`` applies ``--set key.path=value`` overrides
before validation, and any failure becomes one ``ScenarioError`` line naming the file, the key path
and what was expected.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from fabricsim.units import parse_bytes, parse_rate_bps, parse_time_ps

Bytes = Annotated[int, BeforeValidator(parse_bytes)]
RateBps = Annotated[float, BeforeValidator(parse_rate_bps), Field(gt=0)]
TimePs = Annotated[int, BeforeValidator(parse_time_ps)]


class ScenarioError(ValueError):
    """Bad input: one line naming the file, the key path and what was expected."""


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- fabric -------------------------------------------------------------------------------------

class LinkSpec(Spec):
    bandwidth_bps: RateBps = Field(alias="bandwidth")
    latency_ps: TimePs = Field(alias="latency")


class NicSpec(Spec):
    bandwidth_bps: RateBps = Field(100e9, alias="bandwidth")
    latency_ps: TimePs = Field(1_000_000, alias="latency", description="NIC processing, per traversal")
    mtu_bytes: Bytes = Field(4096, alias="mtu", gt=0)


class SwitchSpec(Spec):
    latency_ps: TimePs = Field(600_000, alias="latency", description="port-to-port, per hop")


class FabricSpec(Spec):
    topology: Literal["single_switch", "direct_ring"] = "single_switch"
    hosts: int = Field(4, ge=1)
    gpus_per_host: int = Field(1, ge=1)
    intra_host: Literal["nvlink", "pcie"] = "nvlink"
    cable_latency_ps: TimePs = Field(10_000, alias="cable_latency")
    nic: NicSpec = NicSpec()
    switch: SwitchSpec = SwitchSpec()
    # NVLink3 through NVSwitch: 300 GB/s per GPU per direction (NVIDIA A100 datasheet).
    nvlink: LinkSpec = LinkSpec(bandwidth="300GB/s", latency="100ns")
    nvswitch: SwitchSpec = SwitchSpec(latency="100ns")
    # PCIe Gen4 x16: 32 GB/s per direction raw (PCI-SIG); the GPU-NIC path and PCIe-only hosts.
    pcie: LinkSpec = LinkSpec(bandwidth="32GB/s", latency="250ns")

    @property
    def gpus(self) -> int:
        return self.hosts * self.gpus_per_host

    @model_validator(mode="after")
    def _check_shape(self) -> FabricSpec:
        if self.gpus < 2:
            raise ValueError("at least 2 GPUs in all (hosts x gpus_per_host)")
        if self.topology == "direct_ring" and self.hosts < 2:
            raise ValueError("a direct ring needs at least 2 hosts")
        return self


# --- collective ---------------------------------------------------------------------------------

class CollectiveSpec(Spec):
    op: Literal["all_gather", "reduce_scatter", "all_reduce"] = "all_gather"
    algorithm: Literal["ring"] = "ring"
    chunks: int = Field(1, ge=1, description="pipelined pieces each ring step is cut into")


# --- workload -----------------------------------------------------------------------------------

# bytes per element (torch.Tensor.element_size)
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8": 1,
               "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1}
Dtype = Literal[tuple(DTYPE_BYTES)]


class TensorSpec(Spec):
    shape: tuple[Annotated[int, Field(ge=1)], ...] = ()
    dtype: Dtype = "float32"


class LayerSpec(Spec):
    name: str
    type: Literal["linear"] = "linear"
    in_features: int = Field(ge=1)
    out_features: int = Field(ge=1)
    bias: bool = True
    dtype: Dtype = "float32"


class ModelSpec(Spec):
    name: str
    input: TensorSpec = Field(description="one sample")
    label: TensorSpec = Field(TensorSpec(dtype="int64"), description="one sample's label")
    layers: tuple[LayerSpec, ...] = Field(min_length=1)


class ParallelismSpec(Spec):
    tp: int | None = Field(None, ge=1)
    dp: int | None = Field(None, ge=1)


class WorkloadSpec(Spec):
    rule: Literal["tensor_parallel", "data_parallel", "data_parallel_layerwise", "data_sizes"] = "data_sizes"
    model: ModelSpec | None = None
    dataset_samples: int | None = Field(None, alias="dataset_samples", ge=1)
    batch_size: int | None = Field(None, ge=1)
    epochs: int = Field(1, ge=1)
    parallelism: ParallelismSpec = ParallelismSpec()
    data_sizes: tuple[Bytes, ...] = ()
    trials: int | None = Field(None, ge=1, description="overrides batch_count x epochs")

    @model_validator(mode="after")
    def _check_rule_inputs(self) -> WorkloadSpec:
        if self.rule == "data_sizes":
            if not self.data_sizes:
                raise ValueError("rule data_sizes needs a non-empty data_sizes list")
        else:
            for key in ("model", "dataset_samples", "batch_size"):
                if getattr(self, key) is None:
                    raise ValueError(f"rule {self.rule} needs workload.{key}")
        return self


# --- impairments --------------------------------------------------------------------------------

_DISTRIBUTION_PARAMS = {
    "none": (),
    "constant": ("value",),
    "normal": ("mean", "std"),
    "lognormal": ("median", "sigma"),
    "exponential": ("mean",),
    "uniform": ("low", "high"),
}


class DistributionSpec(Spec):
    """A random delay: ``distribution`` names the law and only its own parameters may be given.

    normal is truncated at zero; lognormal is given by its median and the sigma of its logarithm.
    """

    distribution: Literal["none", "constant", "normal", "lognormal", "exponential", "uniform"] = "none"
    value_ps: TimePs | None = Field(None, alias="value")
    mean_ps: TimePs | None = Field(None, alias="mean")
    std_ps: TimePs | None = Field(None, alias="std")
    median_ps: TimePs | None = Field(None, alias="median")
    sigma: float | None = Field(None, gt=0)
    low_ps: TimePs | None = Field(None, alias="low")
    high_ps: TimePs | None = Field(None, alias="high")

    @model_validator(mode="after")
    def _check_params(self) -> DistributionSpec:
        wanted = _DISTRIBUTION_PARAMS[self.distribution]
        given = {alias for alias, value in self._by_alias().items() if value is not None}
        missing = [name for name in wanted if name not in given]
        extra = sorted(given - set(wanted))
        if missing or extra:
            raise ValueError(
                f"expected distribution {self.distribution} to take exactly {list(wanted) or 'no parameters'}"
            )
        if self.distribution == "uniform" and self.high_ps < self.low_ps:
            raise ValueError("expected high >= low")
        return self

    def _by_alias(self) -> dict[str, object]:
        return {field.alias or name: getattr(self, name)
                for name, field in type(self).model_fields.items() if name != "distribution"}


class LossSpec(Spec):
    rate: float = Field(0.0, ge=0, lt=1, description="probability that a packet is lost")
    timeout_exponent: int = Field(20, ge=0, le=31, description="RTO = 4.096 us x 2^exponent")
    retry_count: int = Field(7, ge=0, le=7, description="retransmissions before the QP fails")


class ImpairmentsSpec(Spec):
    jitter: DistributionSpec = DistributionSpec()
    loss: LossSpec = LossSpec()


# --- scenario -----------------------------------------------------------------------------------

class OutputSpec(Spec):
    dir: str | None = Field(None, description="default results/<name>")
    plots: bool = True


class Scenario(Spec):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(0, ge=0)
    fabric: FabricSpec = FabricSpec()
    collective: CollectiveSpec = CollectiveSpec()
    workload: WorkloadSpec
    impairments: ImpairmentsSpec = ImpairmentsSpec()
    output: OutputSpec = OutputSpec()

    def resolved(self) -> dict[str, Any]:
        """Every key with its value in base units; loading this dict gives the same scenario back."""
        return self.model_dump(mode="json", by_alias=True)


# --- loading ------------------------------------------------------------------------------------

def load_scenario(path: str | Path, overrides: tuple[str, ...] = ()) -> Scenario:
    """Read, override and validate a scenario file; raise ScenarioError with one clear line."""
    path = Path(path)
    raw = _read_yaml(path)
    for override in overrides:
        _apply_override(raw, override, path)
    model_ref = raw.get("workload", {}).get("model") if isinstance(raw.get("workload"), dict) else None
    if isinstance(model_ref, str):
        raw["workload"]["model"] = _read_yaml(path.parent / model_ref, key_path="workload.model")
    return validate_scenario(raw, path)


def validate_scenario(raw: object, path: str | Path) -> Scenario:
    try:
        return Scenario.model_validate(raw)
    except ValidationError as error:
        raise ScenarioError(_first_error_line(error, path)) from None


def _read_yaml(path: Path, key_path: str | None = None) -> dict:
    where = f"{path}: {key_path}: " if key_path else f"{path}: "
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
