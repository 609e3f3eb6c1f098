"""Vocabulary expansion of a base HF model; stage 1 trains only the new rows (bit-for-bit), stage 2 everything."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from test_train_data import make_data

TEXT = ["The reaction of acetic acid with ethanol gives ethyl acetate and water.",
        "Proteins fold into three-dimensional structures determined by their sequence.",
        "Lithium cobalt oxide is a common cathode material in rechargeable batteries."] * 20


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory):
    """A base 'LLM': a BPE tokenizer trained on plain text and a small untied Llama sized to it."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("base")
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(TEXT, trainer)
    tok.save(str(root / "tokenizer.json"))
    (root / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=128, tie_word_embeddings=False)
    LlamaForCausalLM(cfg).save_pretrained(root)
    return root


def test_expand_keeps_old_rows_and_randomises_new(base_dir, tmp_path):
    from naturelm.model.expand import expand_base

    old = load_file(base_dir / "model.safetensors")
    model, tok = expand_base(base_dir, tmp_path / "expanded", seed=0)
    rows = old["model.embed_tokens.weight"].shape[0]
    assert len(tok) > rows and min(tok.new_token_ids) >= rows and tok.token_to_id("<m>C") in tok.new_token_ids
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.shape[0] == head.shape[0] == len(tok)
    assert torch.equal(emb[:rows], old["model.embed_tokens.weight"])
    assert torch.equal(head[:rows], old["lm_head.weight"])
    new = emb[tok.new_token_ids]
    assert 0.01 < new.std().item() < 0.03 and not torch.equal(new, head[tok.new_token_ids])
    assert (tmp_path / "expanded" / "naturelm_tokenizer.json").is_file()


def _train(cfg_sets, out):
    from naturelm.train.config import load_config
    from naturelm.train.loop import run

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run("pretrain", load_config(None, cfg_sets), out)
    finally:
        torch.set_num_threads(n)


def test_stage1_trains_only_new_rows_bit_for_bit_stage2_trains_all(base_dir, tmp_path):
    from naturelm.model.expand import expand_base

    _, tok = expand_base(base_dir, tmp_path / "expanded", seed=0)
    data = make_data(tmp_path / "data", n_mols=60, block_size=32, tok=tok)
    common = [f"data.dir={data}", f"model.init={tmp_path / 'expanded'}", "train.max_steps=3", "train.micro_batch_size=4",
              "train.lr=1e-2", "train.warmup_steps=1", "ckpt.every=0", "log.tensorboard=false", "log.plot=false"]
    _train(common + ["model.stage=1"], tmp_path / "stage1")
    before = load_file(tmp_path / "expanded" / "model.safetensors")
    after = load_file(tmp_path / "stage1" / "model.safetensors")
    new = torch.tensor(tok.new_token_ids)
    old = torch.ones(len(tok), dtype=torch.bool)
    old[new] = False
    for name, w in before.items():
        if name in ("model.embed_tokens.weight", "lm_head.weight"):
            assert torch.equal(after[name][old], w[old]), name  # old rows: bit-for-bit
            assert not torch.equal(after[name][new], w[new]), name  # new rows trained
        else:
            assert torch.equal(after[name], w), name
    _train(common + ["model.stage=2", "train.max_steps=1"], tmp_path / "stage2")
    after2 = load_file(tmp_path / "stage2" / "model.safetensors")
    changed = [n for n, w in before.items() if not torch.equal(after2[n], w)]
    assert set(changed) == set(before)
    assert not torch.equal(after2["model.embed_tokens.weight"][old], before["model.embed_tokens.weight"][old])


def test_stage1_without_expanded_tokenizer_is_a_config_error(tmp_path):
    from naturelm.errors import ConfigError

    data = make_data(tmp_path / "data", n_mols=20, block_size=32)
    with pytest.raises(ConfigError, match="expand"):
        _train([f"data.dir={data}", "model.stage=1", "train.max_steps=1", "ckpt.every=0"], tmp_path / "out")


def test_expand_cli(base_dir, tmp_path):
    from transformers import AutoModelForCausalLM
    from typer.testing import CliRunner

    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.model.cli import app

    result = CliRunner().invoke(app, ["expand", "--base", str(base_dir), "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    tok = NatureTokenizer.from_pretrained(tmp_path / "x")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "x")
    assert model.get_input_embeddings().weight.shape[0] == len(tok) and f"{len(tok.new_token_ids)} new rows" in result.output
