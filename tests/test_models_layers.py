"""Layer-list models: parameter counts of each layer kind against well-known networks' published totals."""

import pytest

from fabricsim.config import ModelSpec, ScenarioError, validate_scenario
from fabricsim.models.layers import layer_gradient_bytes, layer_parameters


def _model(layers):
    return ModelSpec.model_validate({"name": "m", "input": {"shape": [1]}, "layers": layers})


def _parameters(layers) -> int:
    return sum(layer_parameters(layer) for layer in _model(layers).layers)


def test_lenet5_has_61706_parameters():
    """LeCun et al. 1998 as usually rebuilt in PyTorch: two 5x5 convolutions and three Linear layers."""
    assert _parameters([
        {"name": "conv1", "type": "conv2d", "in_channels": 1, "out_channels": 6, "kernel_size": 5},
        {"name": "conv2", "type": "conv2d", "in_channels": 6, "out_channels": 16, "kernel_size": [5, 5]},
        {"name": "fc1", "in_features": 400, "out_features": 120},
        {"name": "fc2", "in_features": 120, "out_features": 84},
        {"name": "fc3", "in_features": 84, "out_features": 10},
    ]) == 61_706


def test_bert_base_has_109482240_parameters():
    """BERT-base (Devlin et al. 2019), as transformers' BertModel counts it, pooler included."""
    block = [
        {"name": "attention", "type": "attention", "hidden_size": 768, "heads": 12},
        {"name": "attention_norm", "type": "layer_norm", "features": 768},
        {"name": "mlp", "type": "mlp", "hidden_size": 768, "ffn_size": 3072},
        {"name": "output_norm", "type": "layer_norm", "features": 768},
    ]
    assert _parameters([
        {"name": "word", "type": "embedding", "num_embeddings": 30522, "embedding_dim": 768},
        {"name": "position", "type": "embedding", "num_embeddings": 512, "embedding_dim": 768},
        {"name": "token_type", "type": "embedding", "num_embeddings": 2, "embedding_dim": 768},
        {"name": "embedding_norm", "type": "layer_norm", "features": 768},
        *block * 12,
        {"name": "pooler", "in_features": 768, "out_features": 768},
    ]) == 109_482_240


def test_a_llama_layer_as_blocks_matches_the_transformer_count():
    """Llama-2 7B's decoder layer from blocks: 202,383,360 parameters (4 h^2 + 3 h f + 2 h)."""
    assert _parameters([
        {"name": "input_norm", "type": "rms_norm", "features": 4096},
        {"name": "attention", "type": "attention", "hidden_size": 4096, "heads": 32, "bias": False},
        {"name": "post_norm", "type": "rms_norm", "features": 4096},
        {"name": "mlp", "type": "mlp", "hidden_size": 4096, "ffn_size": 11008, "gated": True, "bias": False},
    ]) == 4 * 4096**2 + 3 * 4096 * 11008 + 2 * 4096


def test_gradient_bytes_follow_the_layer_dtype():
    (layer,) = _model([{"name": "e", "type": "embedding", "num_embeddings": 10, "embedding_dim": 4,
                        "dtype": "bfloat16"}]).layers
    assert layer_gradient_bytes(layer) == 10 * 4 * 2


def test_unknown_layer_type_is_one_clear_line():
    raw = {"name": "t", "workload": {"rule": "data_parallel", "dataset_samples": 1, "batch_size": 1,
                                     "model": {"name": "m", "input": {"shape": [1]},
                                               "layers": [{"name": "x", "type": "lstm"}]}}}
    with pytest.raises(ScenarioError, match=r"workload.model.layers.0: expected a layer type in \['linear'"):
        validate_scenario(raw, "<t>")
