"""Named model configs: paper shapes, meta-device parameter counts, the CLI."""

from __future__ import annotations

import json

import pytest


def test_paper_sizes_from_meta_device():
    from naturelm.model.configs import param_count

    moe = param_count("8x7b")
    assert moe["architecture"] == "MixtralForCausalLM" and moe["vocab_size"] == 38_078
    assert abs(moe["total_params"] / 46.7e9 - 1) < 0.01
    assert 12.5e9 < moe["active_params"] < 13.2e9  # top-2 of 8 experts
    assert (moe["num_local_experts"], moe["num_experts_per_tok"]) == (8, 2)
    b8 = param_count("8b")
    assert b8["architecture"] == "LlamaForCausalLM" and abs(b8["total_params"] / 8.03e9 - 1) < 0.01
    b1 = param_count("1b")
    shape = (b1["hidden_size"], b1["intermediate_size"], b1["num_hidden_layers"], b1["num_attention_heads"],
             b1["num_key_value_heads"], b1["max_position_embeddings"], b1["vocab_size"])
    assert shape == (2048, 5504, 16, 32, 8, 8192, 130_239)
    assert 1.0e9 < b1["total_params"] < 1.5e9


def test_tiny_is_a_few_million_and_runs(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.model.configs import build_model, param_count

    tok = NatureTokenizer()
    assert 1e6 < param_count("tiny", len(tok))["total_params"] < 10e6
    model = build_model("tiny", tokenizer=tok, seed=0)
    assert model.config.eos_token_id == tok.eos_token_id and model.config.vocab_size == len(tok)
    ids = torch.tensor([tok.encode("<mol>CCO</mol>", add_bos=True)])
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert torch.equal(again(input_ids=ids).logits, model(input_ids=ids).logits)
    same = build_model("tiny", tokenizer=tok, seed=0)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters()))


def test_unknown_config_is_a_config_error():
    from naturelm.errors import ConfigError
    from naturelm.model.configs import get_config

    with pytest.raises(ConfigError, match="8x7b"):
        get_config("70b")


def test_model_info_cli_json():
    from typer.testing import CliRunner

    from naturelm.model.cli import app

    result = CliRunner().invoke(app, ["info", "--config", "8x7b", "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.output)
    assert abs(counts["total_params"] / 46.7e9 - 1) < 0.01 and counts["architecture"] == "MixtralForCausalLM"
