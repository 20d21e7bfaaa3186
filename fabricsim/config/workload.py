"""The workload section: models (layer lists, transformers), the parallelism plan, and the rule
that turns them into each trial's collectives."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, ConfigDict, Discriminator, Field, Tag, model_validator

from fabricsim.config.base import Bytes, KeyedValueError, SizeWithUnit, Spec
from fabricsim.config.devices import DEVICES
from fabricsim.config.hf_config import transformer_keys
from fabricsim.config.size_range import expand_size_range


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

    model_config = ConfigDict(strict=True)  # a config.json's "32" or true is not a head count

    @model_validator(mode="before")
    @classmethod
    def _accept_hf_config(cls, data: Any) -> Any:
        data = transformer_keys(data)
        if isinstance(data, dict) and "head_dim" not in data and type(data.get("hidden_size")) is int \
                and type(data.get("heads")) is int and data["heads"] > 0:
            raise KeyedValueError("heads", f"heads dividing hidden_size {data['hidden_size']} (num_attention_heads "
                                           f"in a config.json), or a head_dim; got {data['heads']}")
        return data

    @model_validator(mode="after")
    def _check_heads(self) -> TransformerSpec:
        if self.heads % self.kv_heads:
            raise KeyedValueError("kv_heads", f"expected KV heads dividing the {self.heads} heads, got {self.kv_heads}")
        return self


class ParallelismSpec(Spec):
    tp: int | None = Field(None, ge=1)
    dp: int | None = Field(None, ge=1)
    pp: int = Field(1, ge=1)
    sequence_parallel: bool = False
    micro_batches: int = Field(1, ge=1, description="per step, per pipeline")
    dp_mode: Literal["ddp", "fsdp"] = "ddp"
    bucket_bytes: SizeWithUnit = Field(25 * 2**20, alias="bucket", gt=0, description="DDP gradient bucket")
    virtual_stages: int | None = Field(None, ge=1, description="model chunks per pipeline stage (Megatron's "
                                                               "interleaved 1F1B); default 1")

    omitted_when_none = frozenset({"virtual_stages"})


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
    data_sizes: Annotated[tuple[Annotated[Bytes, Field(ge=1)], ...], BeforeValidator(expand_size_range)] = Field(
        (), description="per-rank sizes: a list, or a range {start, end, step} (step multiplies)")
    trials: int | None = Field(None, ge=1, description="overrides batch_count x epochs")
    scope: Literal["job", "rank0"] | None = Field(
        None, description="megatron: a trial is the whole job's step, every group at once (job, the flow "
                          "model's default), or rank 0's calls one at a time (rank0, as KCCB runs them)")

    omitted_when_none = frozenset({"scope"})

    @model_validator(mode="after")
    def _check_rule_inputs(self) -> WorkloadSpec:
        _refuse_unused(self, RULE_KEYS[self.rule], "", self.rule)
        _refuse_unused(self.parallelism, RULE_PARALLELISM_KEYS[self.rule], "parallelism.", self.rule)
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


_KCCB_KEYS = {"model", "dataset_samples", "batch_size", "epochs", "trials", "parallelism"}
# the workload keys (and parallelism keys) each rule uses; any other given a value of its own is refused
RULE_KEYS = {
    "data_sizes": {"data_sizes", "trials"},
    "tensor_parallel": _KCCB_KEYS, "data_parallel": _KCCB_KEYS, "data_parallel_layerwise": _KCCB_KEYS,
    "megatron": {"transformer", "seq_len", "device", "dataset_samples", "dataset_tokens", "batch_size", "epochs",
                 "trials", "parallelism", "scope"},
}
RULE_PARALLELISM_KEYS = {
    "data_sizes": set(), "tensor_parallel": {"tp"}, "data_parallel": {"dp"}, "data_parallel_layerwise": {"dp"},
    "megatron": set(ParallelismSpec.model_fields),
}


def _refuse_unused(spec: Spec, used: set[str], prefix: str, rule: str) -> None:
    """A key the rule ignores, set to a value other than its default, is an error rather than a no-op."""
    for name, field in type(spec).model_fields.items():
        if name not in used and name != "rule" and getattr(spec, name) != field.get_default(call_default_factory=True):
            key = field.alias or name
            raise KeyedValueError(f"{prefix}{key}",
                                  f"expected no {prefix}{key} under rule {rule}, which does not use it")
