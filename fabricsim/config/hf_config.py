"""Hugging Face config.json, read as plain JSON: Llama, Mistral and Qwen2 key names mapped onto
``TransformerSpec``'s, and the defaults a config leaves implicit filled in.

A mapping holding ``model_type`` is a Hugging Face config: its shape keys are renamed and every other
key (rope settings, activation, token ids...) is dropped, since none of them changes the parameter
count or the traffic. Any other mapping is taken as written in fabricsim's own key names.
"""

from __future__ import annotations

from typing import Any

# Hugging Face key -> TransformerSpec key (transformers' LlamaConfig, MistralConfig, Qwen2Config)
HF_KEYS = {
    "_name_or_path": "name",
    "hidden_size": "hidden_size",
    "num_hidden_layers": "layers",
    "num_attention_heads": "heads",
    "num_key_value_heads": "kv_heads",
    "head_dim": "head_dim",
    "intermediate_size": "ffn_size",
    "vocab_size": "vocab_size",
    "max_position_embeddings": "max_seq_len",
    "tie_word_embeddings": "tied_embeddings",
    "mlp_bias": "mlp_bias",
    "torch_dtype": "dtype",
}
MODEL_TYPES = ("llama", "mistral", "qwen2")


def transformer_keys(data: Any) -> Any:
    """A Hugging Face config (or fabricsim's own keys) as TransformerSpec keys, defaults filled in."""
    if not isinstance(data, dict):
        return data
    if "model_type" in data:
        data = _from_hf(data)
    data = dict(data)
    heads, hidden_size = data.get("heads"), data.get("hidden_size")
    if isinstance(heads, int) and heads > 0:  # anything else is left for validation to refuse
        data.setdefault("kv_heads", heads)
        if isinstance(hidden_size, int) and not hidden_size % heads:  # else head_dim must be given
            data.setdefault("head_dim", hidden_size // heads)
    return data


def _from_hf(config: dict) -> dict:
    model_type = config["model_type"]
    if model_type not in MODEL_TYPES:
        raise ValueError(f"expected model_type one of {list(MODEL_TYPES)}, got {model_type!r}")
    keys = {"name": model_type} | {ours: config[theirs] for theirs, ours in HF_KEYS.items()
                                   if config.get(theirs) is not None}
    if model_type == "qwen2":  # biases on q, k and v always (none on o); Llama's attention_bias covers all four
        keys["attention_bias"] = "qkv"
    elif config.get("attention_bias"):
        keys["attention_bias"] = "qkvo"
    return keys
