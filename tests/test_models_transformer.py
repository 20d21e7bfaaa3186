"""Transformer models: Hugging Face configs read as plain JSON, parameter counts against the published
sizes, FLOPs against PaLM's formula."""

import json

import pytest

from fabricsim.config import ScenarioError, TransformerSpec, load_transformer
from fabricsim.models.transformer import parameter_count, training_flops, tp_degree_problem
from tests.conftest import SCENARIOS

MODELS = SCENARIOS / "models"

# Parameter counts published with the checkpoints (Hugging Face model cards / safetensors metadata).
PUBLISHED_PARAMETERS = {
    "llama-2-7b": 6_738_415_616,
    "llama-2-70b": 68_976_648_192,
    "llama-3-8b": 8_030_261_248,
    "llama-3.1-405b": 405_853_388_800,
}


@pytest.mark.parametrize("name", PUBLISHED_PARAMETERS)
def test_parameter_count_matches_the_published_size(name):
    model = load_transformer(MODELS / f"{name}.json")
    assert parameter_count(model) == pytest.approx(PUBLISHED_PARAMETERS[name], rel=0.01)


def test_llama2_70b_config_reads_as_grouped_query_attention():
    model = load_transformer(MODELS / "llama-2-70b.json")
    assert (model.hidden_size, model.layers, model.heads, model.kv_heads, model.head_dim) == (8192, 80, 64, 8, 128)
    assert (model.name, model.dtype) == ("meta-llama/Llama-2-70b-hf", "float16")


def test_own_keys_default_kv_heads_and_head_dim():
    model = TransformerSpec.model_validate({"hidden_size": 4096, "layers": 32, "heads": 32, "ffn_size": 11008,
                                            "vocab_size": 32000})
    assert (model.kv_heads, model.head_dim) == (32, 128)
    assert parameter_count(model) == PUBLISHED_PARAMETERS["llama-2-7b"]


def test_qwen2_config_counts_its_qkv_biases(tmp_path):
    # Qwen2-0.5B: published 494,032,768 parameters (tied embeddings, q/k/v biases, head_dim 64).
    config = {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
              "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936,
              "tie_word_embeddings": True, "torch_dtype": "bfloat16", "rope_theta": 1000000.0}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    model = load_transformer(path)
    assert model.attention_bias == "qkv"
    assert parameter_count(model) == 494_032_768


def test_mistral_config_without_a_name_is_named_by_its_type(tmp_path):
    # Mistral-7B-v0.1: published 7,241,732,096 parameters.
    config = {"model_type": "mistral", "hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32,
              "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 32000, "sliding_window": 4096}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    model = load_transformer(path)
    assert model.name == "mistral"
    assert parameter_count(model) == 7_241_732_096


def test_unknown_model_type_is_one_clear_line(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model_type": "gpt2", "n_embd": 768}))
    with pytest.raises(ScenarioError, match=r"config.json: \(top level\): expected model_type one of"):
        load_transformer(path)


def test_own_keys_refuse_unknown_ones(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_text("hidden_size: 64\nlayers: 2\nheads: 4\nffn_size: 128\nvocab_size: 100\nhiden: 3\n")
    with pytest.raises(ScenarioError, match="hiden: unknown key"):
        load_transformer(path)


def test_training_flops_match_palm_formula():
    """PaLM appendix B: 6N + 12 L H Q T per token, N = parameters outside the input embedding."""
    model = load_transformer(MODELS / "llama-2-70b.json")
    seq_len, tokens = 4096, 4096
    n = parameter_count(model) - model.vocab_size * model.hidden_size - model.layers * 2 * model.hidden_size \
        - model.hidden_size  # norms do no matrix work
    palm = (6 * n + 12 * model.layers * model.heads * model.head_dim * seq_len) * tokens
    assert training_flops(model, tokens, seq_len) == palm


def test_tp_degree_must_divide_heads_and_kv_heads():
    model = load_transformer(MODELS / "llama-2-70b.json")
    assert tp_degree_problem(model, 8) is None
    assert "64 attention heads and 8 KV heads" in tp_degree_problem(model, 16)
    assert tp_degree_problem(model, 3) is not None
