"""Layer-list models: the parameter count of each layer kind, as PyTorch's modules hold them.

- linear: in x out weights (+ out bias);
- embedding: num_embeddings x embedding_dim;
- conv2d: out x in / groups x kh x kw weights (+ out bias);
- layer_norm: weight (+ bias) of ``features``; rms_norm: weight only;
- attention: q, k, v, o projections (k, v of kv_heads x head_dim outputs), biases on all four or none;
- mlp: up and down (and gate when gated) between hidden and ffn, with or without biases.
"""

from __future__ import annotations

from fabricsim.config import DTYPE_BYTES, LayerSpec
from fabricsim.models.transformer import attention_block_tensors, mlp_block_tensors


def layer_parameters(layer: LayerSpec) -> int:
    match layer.type:
        case "linear":
            return layer.in_features * layer.out_features + (layer.out_features if layer.bias else 0)
        case "embedding":
            return layer.num_embeddings * layer.embedding_dim
        case "conv2d":
            kh, kw = (layer.kernel_size,) * 2 if isinstance(layer.kernel_size, int) else layer.kernel_size
            weights = layer.out_channels * layer.in_channels // layer.groups * kh * kw
            return weights + (layer.out_channels if layer.bias else 0)
        case "layer_norm":
            return layer.features * (2 if layer.bias else 1)
        case "rms_norm":
            return layer.features
        case "attention":
            head_dim = layer.hidden_size // layer.heads
            tensors = attention_block_tensors(layer.hidden_size, layer.hidden_size,
                                              (layer.kv_heads or layer.heads) * head_dim,
                                              "qkvo" if layer.bias else "none")
            return sum(t.numel for t in tensors)
        case "mlp":
            return sum(t.numel for t in mlp_block_tensors(layer.hidden_size, layer.ffn_size, layer.gated, layer.bias))
    raise AssertionError(layer.type)


def layer_gradient_bytes(layer: LayerSpec) -> int:
    """A layer's weight + bias gradient bytes (same shapes and dtype as its parameters)."""
    return layer_parameters(layer) * DTYPE_BYTES[layer.dtype]
