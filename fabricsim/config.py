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
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, PlainSerializer, Tag,
                      ValidationError, field_validator, model_validator)

from fabricsim.models.devices import DEVICES
from fabricsim.models.hf_config import transformer_keys
from fabricsim.collectives import algorithms_for
from fabricsim.size_range import expand_size_range
from fabricsim.units import parse_bytes, parse_rate_bps, parse_time_ps

Bytes = Annotated[int, BeforeValidator(parse_bytes)]
# Rates and times always carry their unit, in the resolved scenario too (bare numbers are refused).
RateBps = Annotated[float, BeforeValidator(parse_rate_bps), Field(gt=0),
                    PlainSerializer(lambda bps: f"{bps:.12g}bps", return_type=str)]
TimePs = Annotated[int, BeforeValidator(parse_time_ps), PlainSerializer(lambda ps: f"{ps}ps", return_type=str)]


class ScenarioError(ValueError):
    """Bad input: one line naming the file, the key path and what was expected."""


class KeyedValueError(ValueError):
    """A check made where several keys meet, about one of them: the error names that key."""

    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(message)
        self.key_path = key_path


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- fabric -------------------------------------------------------------------------------------

class LinkSpec(Spec):
    bandwidth_bps: RateBps = Field(alias="bandwidth")
    latency_ps: TimePs = Field(alias="latency")


class NicSpec(Spec):
    """A NIC: ``preset`` (a name, or ``nic: roce_400g``) fills the keys not given (fabric/presets.py)."""

    preset: Literal["roce_100g", "roce_200g", "roce_400g", "roce_800g"] | None = None
    bandwidth_bps: RateBps = Field(100e9, alias="bandwidth", description="line rate")
    latency_ps: TimePs = Field(1_000_000, alias="latency", description="NIC processing, per traversal")
    mtu_bytes: Bytes = Field(4096, alias="mtu", gt=0)
    header_bytes: Bytes = Field(0, alias="header", ge=0, description="wire bytes added to each MTU packet")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        from fabricsim.fabric.presets import NIC_PRESETS, with_preset
        return with_preset({"preset": data} if isinstance(data, str) else data, NIC_PRESETS)

    @property
    def effective_bandwidth_bps(self) -> float:
        """The payload rate: line rate x MTU / (MTU + per-packet header bytes)."""
        return self.bandwidth_bps / (1 + self.header_bytes / self.mtu_bytes)


class SwitchSpec(Spec):
    latency_ps: TimePs = Field(600_000, alias="latency", description="port-to-port, per hop")


class EcnSpec(Spec):
    """RED marking of switch egress queues; thresholds are stated at 25 Gb/s and scale with the port's
    line rate. Kmin 100 KB, Kmax 400 KB, Pmax 0.2: HPCC simulator config (reference/formulas.md)."""

    enabled: bool = True
    kmin_bytes: Bytes = Field(100_000, alias="kmin", ge=0)
    kmax_bytes: Bytes = Field(400_000, alias="kmax", gt=0)
    pmax: float = Field(0.2, gt=0, le=1)

    @model_validator(mode="after")
    def _check_thresholds(self) -> EcnSpec:
        if self.kmax_bytes <= self.kmin_bytes:
            raise ValueError("kmax above kmin")
        return self


class DcqcnSpec(Spec):
    """The DCQCN reaction point at the sending NIC; increase steps are stated at 25 Gb/s and scale with
    line rate. HPCC simulator config (reference/formulas.md): alpha interval 1 us, decrease interval
    4 us, increase timer 300 us, g = 1/256, steps 5 and 50 Mb/s, minimum rate 100 Mb/s; fast recovery
    F = 5 steps (Zhu et al., SIGCOMM 2015)."""

    enabled: bool = True
    g: float = Field(1 / 256, gt=0, le=1, description="alpha EWMA gain")
    alpha_resume_interval_ps: TimePs = Field(1_000_000, alias="alpha_resume_interval", gt=0)
    rate_decrease_interval_ps: TimePs = Field(4_000_000, alias="rate_decrease_interval", gt=0)
    rate_increase_timer_ps: TimePs = Field(300_000_000, alias="rate_increase_timer", gt=0)
    fast_recovery_steps: int = Field(5, ge=0)
    additive_increase_bps: RateBps = Field(5e6, alias="additive_increase")
    hyper_increase_bps: RateBps = Field(50e6, alias="hyper_increase")
    min_rate_bps: RateBps = Field(100e6, alias="min_rate")


class PfcSpec(Spec):
    """Per-ingress PFC on switches: pause the upstream port when the bytes held from it pass xoff,
    resume at xoff - resume_offset; headroom above xoff is sized per port, 2 x rate x delay + 2 MTU
    (reference/formulas.md). xoff (our choice) sits well above the 100G Kmin so that ECN acts first,
    as DCQCN requires (Zhu et al. 2015); resume_offset (our choice) is two 4 KiB packets."""

    enabled: bool = True
    xoff_bytes: Bytes = Field(1_000_000, alias="xoff", gt=0)
    resume_offset_bytes: Bytes = Field(8192, alias="resume_offset", ge=0)


class PacketSpec(Spec):
    """The packet-level RoCE model (fabric.model: packet)."""

    # 32 MB: the top of the 12-32 MB range of the HPCC simulator config (reference/formulas.md)
    buffer_bytes: Bytes = Field(32_000_000, alias="buffer", gt=0, description="shared by a switch's ports")
    ecn: EcnSpec = EcnSpec()
    dcqcn: DcqcnSpec = DcqcnSpec()
    pfc: PfcSpec = PfcSpec()


class ClosSpec(Spec):
    """The switch tiers above the NICs: leaves (or rail switches) joined by spines."""

    hosts_per_leaf: int = Field(4, ge=1, description="leaf_spine: hosts cabled to each leaf")
    spines: int = Field(2, ge=1)
    oversubscription: float = Field(1.0, gt=0, description="a leaf's downlink over uplink capacity")
    ecmp: Literal["hash", "spray", "adaptive"] = Field(
        "hash", description="per-flow 5-tuple hash, per-packet spraying, or least-loaded next hop")


class FabricSpec(Spec):
    preset: Literal["dgx_a100", "dgx_h100", "pcie_8gpu"] | None = Field(
        None, description="a server model that fills the keys not given (fabric/presets.py)")
    topology: Literal["single_switch", "direct_ring", "leaf_spine", "rail_optimized"] = "single_switch"
    hosts: int = Field(4, ge=1)
    gpus_per_host: int = Field(1, ge=1)
    intra_host: Literal["nvlink", "pcie"] = "nvlink"
    pcie_switches: int = Field(0, ge=0, description="per host; 0: each NIC cabled straight to its GPU")
    placement: Literal["host_first", "rail_first"] = Field(
        "host_first", description="rank order: all GPUs of a host, or GPU i of every host, first")
    clos: ClosSpec = ClosSpec()
    qps_per_rankpair: int = Field(1, ge=1, description="flows (queue pairs) each transfer is split over")
    cable_latency_ps: TimePs = Field(10_000, alias="cable_latency")
    nic: NicSpec = NicSpec()
    switch: SwitchSpec = SwitchSpec()
    # NVLink3 through NVSwitch: 300 GB/s per GPU per direction (NVIDIA A100 datasheet).
    nvlink: LinkSpec = LinkSpec(bandwidth="300GB/s", latency="100ns")
    nvswitch: SwitchSpec = SwitchSpec(latency="100ns")
    # PCIe Gen4 x16: 32 GB/s per direction raw (PCI-SIG); the GPU-NIC path and PCIe-only hosts.
    pcie: LinkSpec = LinkSpec(bandwidth="32GB/s", latency="250ns")
    model: Literal["flow", "packet"] = Field("flow", description="max-min flows, or RoCE packets on queues")
    packet: PacketSpec = Field(PacketSpec(), description="used by model: packet")

    @property
    def gpus(self) -> int:
        return self.hosts * self.gpus_per_host

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        from fabricsim.fabric.presets import HOST_PRESETS, with_preset
        return with_preset(data, HOST_PRESETS)

    @model_validator(mode="after")
    def _check_shape(self) -> FabricSpec:
        if self.pcie_switches and self.gpus_per_host % self.pcie_switches:
            raise ValueError("pcie_switches that divide gpus_per_host")
        if self.topology == "leaf_spine" and self.hosts % self.clos.hosts_per_leaf:
            raise ValueError("hosts a multiple of clos.hosts_per_leaf")
        if self.gpus < 2:
            raise ValueError("at least 2 GPUs in all (hosts x gpus_per_host)")
        if self.topology == "direct_ring" and self.hosts < 2:
            raise ValueError("a direct ring needs at least 2 hosts")
        return self


# --- collective ---------------------------------------------------------------------------------

class CollectiveSpec(Spec):
    op: Literal["all_gather", "reduce_scatter", "all_reduce", "broadcast", "reduce", "gather", "all_to_all",
                "send_recv"] = "all_gather"
    algorithm: Literal["ring", "bidirectional_ring", "halving_doubling", "recursive_doubling",
                       "recursive_halving", "double_binary_tree", "hierarchical", "binomial_tree", "direct",
                       "pxn", "multi_ring", "auto"] = Field("ring", description="auto: the least predicted time, per call")
    chunks: int = Field(1, ge=1, description="pipelined pieces each step is cut into (pipelined algorithms)")
    root: int = Field(0, ge=0, description="broadcast, reduce and gather root; send_recv sender")
    protocol: Literal["none", "simple", "ll", "ll128"] = Field(
        "none", description="per-message software latency: NCCL's constants for this protocol")

    @model_validator(mode="after")
    def _check_algorithm(self) -> CollectiveSpec:
        known = algorithms_for(self.op)
        if self.algorithm != "auto" and self.algorithm not in known:
            raise ValueError(f"expected algorithm auto or one of {known} for op {self.op}, got {self.algorithm!r}")
        return self


# --- workload -----------------------------------------------------------------------------------

# bytes per element (torch.Tensor.element_size)
DTYPE_BYTES = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "float8": 1,
               "int64": 8, "int32": 4, "int16": 2, "int8": 1, "uint8": 1, "bool": 1}
Dtype = Literal[tuple(DTYPE_BYTES)]


class TensorSpec(Spec):
    shape: tuple[Annotated[int, Field(ge=1)], ...] = ()
    dtype: Dtype = "float32"


class _LayerBase(Spec):
    name: str
    dtype: Dtype = "float32"


class LinearSpec(_LayerBase):
    type: Literal["linear"] = "linear"
    in_features: int = Field(ge=1)
    out_features: int = Field(ge=1)
    bias: bool = True


class EmbeddingSpec(_LayerBase):
    type: Literal["embedding"]
    num_embeddings: int = Field(ge=1)
    embedding_dim: int = Field(ge=1)


class Conv2dSpec(_LayerBase):
    type: Literal["conv2d"]
    in_channels: int = Field(ge=1)
    out_channels: int = Field(ge=1)
    kernel_size: Annotated[int, Field(ge=1)] | tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]]
    groups: int = Field(1, ge=1)
    bias: bool = True


class NormSpec(_LayerBase):
    type: Literal["layer_norm", "rms_norm"]
    features: int = Field(ge=1)
    bias: bool = Field(True, description="layer_norm only; rms_norm has a weight alone")


class AttentionSpec(_LayerBase):
    type: Literal["attention"]
    hidden_size: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int | None = Field(None, ge=1, description="default: heads")
    bias: bool = True


class MlpSpec(_LayerBase):
    type: Literal["mlp"]
    hidden_size: int = Field(ge=1)
    ffn_size: int = Field(ge=1)
    gated: bool = Field(False, description="SwiGLU: gate, up and down matrices")
    bias: bool = True


def _layer_tag(value: Any) -> str:
    kind = value.get("type", "linear") if isinstance(value, dict) else getattr(value, "type", "linear")
    return "norm" if kind in ("layer_norm", "rms_norm") else kind


LAYER_TYPES = ("linear", "embedding", "conv2d", "layer_norm", "rms_norm", "attention", "mlp")
LayerSpec = Annotated[
    Annotated[LinearSpec, Tag("linear")] | Annotated[EmbeddingSpec, Tag("embedding")]
    | Annotated[Conv2dSpec, Tag("conv2d")] | Annotated[NormSpec, Tag("norm")]
    | Annotated[AttentionSpec, Tag("attention")] | Annotated[MlpSpec, Tag("mlp")],
    Discriminator(_layer_tag, custom_error_type="layer_type",
                  custom_error_message=f"a layer type in {list(LAYER_TYPES)}"),
]


class ModelSpec(Spec):
    name: str
    input: TensorSpec = Field(description="one sample")
    label: TensorSpec = Field(TensorSpec(dtype="int64"), description="one sample's label")
    layers: tuple[LayerSpec, ...] = Field(min_length=1)


class TransformerSpec(Spec):
    """A decoder-only (Llama-family) transformer by its shape; a Hugging Face config.json is accepted too."""

    name: str = "transformer"
    hidden_size: int = Field(ge=1)
    layers: int = Field(ge=1)
    heads: int = Field(ge=1)
    kv_heads: int = Field(ge=1, description="default: heads (no grouped-query attention)")
    head_dim: int = Field(ge=1, description="default: hidden_size / heads")
    ffn_size: int = Field(ge=1)
    vocab_size: int = Field(ge=1)
    max_seq_len: int = Field(4096, ge=1)
    gated_mlp: bool = Field(True, description="SwiGLU: gate, up and down matrices")
    attention_bias: Literal["none", "qkv", "qkvo"] = "none"
    mlp_bias: bool = False
    tied_embeddings: bool = False
    dtype: Dtype = "bfloat16"

    @model_validator(mode="before")
    @classmethod
    def _accept_hf_config(cls, data: Any) -> Any:
        return transformer_keys(data)


class ParallelismSpec(Spec):
    tp: int | None = Field(None, ge=1)
    dp: int | None = Field(None, ge=1)
    pp: int = Field(1, ge=1)
    sequence_parallel: bool = False
    micro_batches: int = Field(1, ge=1, description="per step, per pipeline")
    dp_mode: Literal["ddp", "fsdp"] = "ddp"
    bucket_bytes: Bytes = Field(25 * 2**20, alias="bucket", gt=0, description="DDP gradient bucket")


class WorkloadSpec(Spec):
    rule: Literal["tensor_parallel", "data_parallel", "data_parallel_layerwise", "data_sizes",
                  "megatron"] = "data_sizes"
    model: ModelSpec | None = None
    transformer: TransformerSpec | None = None
    seq_len: int | None = Field(None, ge=1, description="default: the transformer's max_seq_len")
    device: Literal[tuple(DEVICES)] | None = Field(None, description="adds compute time between calls")
    dataset_samples: int | None = Field(None, alias="dataset_samples", ge=1)
    dataset_tokens: int | None = Field(None, ge=1, description="megatron: samples = tokens / seq_len")
    batch_size: int | None = Field(None, ge=1)
    epochs: int = Field(1, ge=1)
    parallelism: ParallelismSpec = ParallelismSpec()
    data_sizes: Annotated[tuple[Bytes, ...], BeforeValidator(expand_size_range)] = Field(
        (), description="per-rank sizes: a list, or a range {start, end, step} (step multiplies)")
    trials: int | None = Field(None, ge=1, description="overrides batch_count x epochs")

    @model_validator(mode="after")
    def _check_rule_inputs(self) -> WorkloadSpec:
        if self.rule == "data_sizes":
            if not self.data_sizes:
                raise ValueError("rule data_sizes needs a non-empty data_sizes list")
        elif self.rule == "megatron":
            for key in ("transformer", "batch_size"):
                if getattr(self, key) is None:
                    raise ValueError(f"rule megatron needs workload.{key}")
            if (self.dataset_samples, self.dataset_tokens, self.trials) == (None, None, None):
                raise ValueError("rule megatron needs workload.dataset_samples, dataset_tokens or trials")
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
    "empirical": ("samples",),
}


class DistributionSpec(Spec):
    """A random delay: ``distribution`` names the law and only its own parameters may be given.

    normal is truncated at zero; lognormal is given by its median and the sigma of its logarithm;
    empirical draws from measured ``samples`` (or a ``file`` of them, one time per line, which
    ``load_scenario`` reads relative to the scenario file).
    """

    distribution: Literal["none", "constant", "normal", "lognormal", "exponential", "uniform", "empirical"] = "none"
    value_ps: TimePs | None = Field(None, alias="value")
    mean_ps: TimePs | None = Field(None, alias="mean")
    std_ps: TimePs | None = Field(None, alias="std")
    median_ps: TimePs | None = Field(None, alias="median")
    sigma: float | None = Field(None, gt=0)
    low_ps: TimePs | None = Field(None, alias="low")
    high_ps: TimePs | None = Field(None, alias="high")
    samples_ps: tuple[TimePs, ...] | None = Field(None, alias="samples", min_length=1)

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
    links: dict[str, Annotated[float, Field(ge=0, lt=1)]] = Field(
        default_factory=dict, description="more loss on named links (src->dst), on a transfer's first flow's route")
    timeout_exponent: int = Field(20, ge=0, le=31, description="RTO = 4.096 us x 2^exponent")
    retry_count: int = Field(7, ge=0, le=7, description="retransmissions before the QP fails")


class BackgroundSpec(Spec):
    """Competing traffic for the whole trial: one flow per chosen link, at most ``load`` of its capacity."""

    load: float = Field(0.0, ge=0, lt=1, description="fraction of each chosen link the competing flow asks for")
    links: tuple[str, ...] = Field((), description="directed links by name, e.g. leaf0->spine1")
    hosts_fraction: float = Field(0.0, ge=0, le=1, description="hosts drawn per trial: their NIC links in and out")


class FailureSpec(Spec):
    """A cable (both directions) going down, ``flaps`` times, ``period`` apart, from a per-trial start time."""

    cable: tuple[str, str] = Field(description="the two devices it joins, e.g. [leaf0, spine1]")
    down_at: DistributionSpec = Field(description="time of the first failure after the trial starts")
    down_for_ps: TimePs | None = Field(None, alias="down_for", description="default: for good")
    flaps: int = Field(1, ge=1)
    period_ps: TimePs | None = Field(None, alias="period", description="from one failure to the next")
    detection_ps: TimePs = Field(100_000_000, alias="detection_delay", description="until flows re-route")

    @model_validator(mode="after")
    def _check_flaps(self) -> FailureSpec:
        if self.flaps > 1 and (self.down_for_ps is None or self.period_ps is None
                               or self.period_ps <= self.down_for_ps):
            raise ValueError("flapping (flaps > 1) needs down_for and a period longer than down_for")
        return self


class ImpairmentsSpec(Spec):
    jitter: DistributionSpec = DistributionSpec()
    launch_skew: DistributionSpec = Field(DistributionSpec(), description="per rank, per collective: stragglers")
    loss: LossSpec = LossSpec()
    background: BackgroundSpec = BackgroundSpec()
    failures: tuple[FailureSpec, ...] = ()


# --- scenario -----------------------------------------------------------------------------------

class OutputSpec(Spec):
    dir: str | None = Field(None, description="default results/<name>")
    plots: bool = True
    flows: bool = Field(False, description="write flows.csv, one row per flow of every trial")


class Scenario(Spec):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(0, ge=0)
    fabric: FabricSpec = FabricSpec()
    collective: CollectiveSpec = CollectiveSpec()
    workload: WorkloadSpec
    impairments: ImpairmentsSpec = ImpairmentsSpec()
    output: OutputSpec = OutputSpec()
    matrix: dict[str, list[Any]] = Field(
        default_factory=dict, description="key path -> values; `fabricsim compare` runs each combination")

    @field_validator("matrix")
    @classmethod
    def _check_matrix(cls, matrix: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key_path, values in matrix.items():
            if key_path == "matrix" or not _has_key_path(cls, key_path):
                raise ValueError(f"expected key paths of the scenario such as fabric.nic.bandwidth, got {key_path!r}")
            if not values:
                raise ValueError(f"expected a non-empty list of values for {key_path}")
        return matrix

    @model_validator(mode="after")
    def _check_packet_model(self) -> Scenario:
        """fabric.model packet runs the collective alone on its routes: refuse what it would ignore."""
        if self.fabric.model != "packet":
            return self
        impairments = self.impairments
        ignored = [key for key, used in (
            ("impairments.background", impairments.background.load > 0),
            ("impairments.failures", bool(impairments.failures)),
            ("impairments.launch_skew", impairments.launch_skew.distribution != "none")) if used]
        if ignored:
            raise KeyedValueError(ignored[0], "expected fabric.model flow to use it (the packet model does not play it)")
        return self

    def resolved(self) -> dict[str, Any]:
        """Every key with its value in base units; loading this dict gives the same scenario back."""
        return self.model_dump(mode="json", by_alias=True)


def _has_key_path(spec: type[Spec], key_path: str) -> bool:
    """True when a dotted key path (YAML names, as in --set) names a key of the schema."""
    head, _, rest = key_path.partition(".")
    for name, field in spec.model_fields.items():
        if head in (name, field.alias):
            return not rest or any(_has_key_path(sub, rest) for sub in _nested_specs(field.annotation))
    return False


def _nested_specs(annotation: Any) -> list[type[Spec]]:
    """The mappings of keys a field may hold: its Spec type, or those in its union; not list items."""
    if isinstance(annotation, type) and issubclass(annotation, Spec):
        return [annotation]
    if get_origin(annotation) in (tuple, list):
        return []
    return [spec for arg in get_args(annotation) for spec in _nested_specs(arg)]


# --- loading ------------------------------------------------------------------------------------

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
    return validate_scenario(raw, path)


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
