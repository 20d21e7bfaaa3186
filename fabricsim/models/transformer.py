"""Transformer arithmetic: the parameter tensors of a Llama-family decoder, their counts and FLOPs.

A layer holds an RMSNorm, the q/k/v/o attention projections (q and o: hidden x heads*head_dim; k and
v: hidden x kv_heads*head_dim, grouped-query attention), a second RMSNorm and the MLP (SwiGLU: gate,
up and down, each hidden x ffn; otherwise up and down). Around the layers sit the token embedding
(vocab x hidden), a final norm and the LM head (vocab x hidden unless tied to the embedding).

FLOPs per token (forward) count 2 per multiply-add: 2 x the layer's matrix parameters, plus the
attention scores and weighted values, 4 x seq_len x heads*head_dim; the LM head adds 2 x hidden x vocab.
Training is 3 x forward (backward = 2 x forward), which sums to PaLM's 6N + 12 L H Q T
(Chowdhery et al. 2022, appendix B) for N parameters outside the input embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabricsim.config import TransformerSpec


@dataclass(frozen=True, slots=True)
class ParamTensor:
    """One parameter tensor: its name, element count, and whether Megatron TP splits it across ranks."""

    name: str
    numel: int
    tp_split: bool


def attention_tensors(model: TransformerSpec) -> tuple[ParamTensor, ...]:
    return attention_block_tensors(model.hidden_size, model.heads * model.head_dim,
                                   model.kv_heads * model.head_dim, model.attention_bias)


def attention_block_tensors(hidden_size: int, q_out: int, kv_out: int, bias: str) -> tuple[ParamTensor, ...]:
    """q and o of hidden x q_out, k and v of hidden x kv_out; ``bias`` "none", "qkv" or "qkvo"."""
    h = hidden_size
    qkv_bias = bias in ("qkv", "qkvo")
    return (
        ParamTensor("q_proj", h * q_out + (q_out if qkv_bias else 0), True),
        ParamTensor("k_proj", h * kv_out + (kv_out if qkv_bias else 0), True),
        ParamTensor("v_proj", h * kv_out + (kv_out if qkv_bias else 0), True),
        # row-parallel: the weight is split, its bias is replicated
        ParamTensor("o_proj", q_out * h, True),
        *((ParamTensor("o_proj.bias", h, False),) if bias == "qkvo" else ()),
    )


def mlp_tensors(model: TransformerSpec) -> tuple[ParamTensor, ...]:
    return mlp_block_tensors(model.hidden_size, model.ffn_size, model.gated_mlp, model.mlp_bias)


def mlp_block_tensors(hidden_size: int, ffn_size: int, gated: bool, bias: bool) -> tuple[ParamTensor, ...]:
    """Up (and gate, when gated) of hidden x ffn, down of ffn x hidden, with or without biases."""
    h, f = hidden_size, ffn_size
    column = ("gate_proj", "up_proj") if gated else ("up_proj",)
    return (
        *(ParamTensor(name, h * f + (f if bias else 0), True) for name in column),
        ParamTensor("down_proj", f * h, True),
        *((ParamTensor("down_proj.bias", h, False),) if bias else ()),
    )


def layer_tensors(model: TransformerSpec) -> tuple[ParamTensor, ...]:
    """One decoder layer's parameter tensors in forward order."""
    norm = model.hidden_size
    return (ParamTensor("input_norm", norm, False), *attention_tensors(model),
            ParamTensor("post_attention_norm", norm, False), *mlp_tensors(model))


def embedding_tensors(model: TransformerSpec) -> tuple[ParamTensor, ...]:
    """The input embedding (vocab-parallel under TP)."""
    return (ParamTensor("embed_tokens", model.vocab_size * model.hidden_size, True),)


def head_tensors(model: TransformerSpec) -> tuple[ParamTensor, ...]:
    """The final norm and the LM head (none when tied: the embedding serves)."""
    norm = ParamTensor("final_norm", model.hidden_size, False)
    if model.tied_embeddings:
        return (norm,)
    return (norm, ParamTensor("lm_head", model.vocab_size * model.hidden_size, True))


def _numel(tensors: tuple[ParamTensor, ...]) -> int:
    return sum(t.numel for t in tensors)


def parameter_count(model: TransformerSpec) -> int:
    return _numel((*embedding_tensors(model), *layer_tensors(model) * model.layers, *head_tensors(model)))


def attention_forward_flops(model: TransformerSpec, tokens: int, seq_len: int) -> int:
    """One layer's attention block, forward, for ``tokens`` tokens in sequences of ``seq_len``."""
    return tokens * (2 * _numel(attention_tensors(model)) + 4 * seq_len * model.heads * model.head_dim)


def mlp_forward_flops(model: TransformerSpec, tokens: int) -> int:
    return tokens * 2 * _numel(mlp_tensors(model))


def head_forward_flops(model: TransformerSpec, tokens: int) -> int:
    """The LM head's logits, forward."""
    return tokens * 2 * model.hidden_size * model.vocab_size


def training_flops(model: TransformerSpec, tokens: int, seq_len: int) -> int:
    """Forward + backward (3 x forward) FLOPs of the whole model for ``tokens`` tokens."""
    per_layer = attention_forward_flops(model, tokens, seq_len) + mlp_forward_flops(model, tokens)
    return 3 * (model.layers * per_layer + head_forward_flops(model, tokens))


def tp_degree_problem(model: TransformerSpec, tp: int) -> str | None:
    """Why ``tp`` cannot split the model's attention (heads and KV heads must divide by it), or None."""
    if model.heads % tp or model.kv_heads % tp:
        return (f"expected a TP degree dividing the {model.heads} attention heads and {model.kv_heads} "
                f"KV heads of {model.name}, got {tp}")
    return None
