"""SFT with LoRA + merge, DPO smoke run, and the RDKit-oracle preference pairs."""

from __future__ import annotations

import json

import pytest
import torch

from test_train_data import make_data, real_smiles
from test_train_loop import recipe, run_inprocess


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"), n_mols=300)


def test_lora_sft_trains_adapters_only_and_merges(data_dir, tiny_checkpoint, tmp_path):
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.model.cli import app
    from naturelm.train.metrics import read_metrics
    from typer.testing import CliRunner

    cfg = recipe(tmp_path / "r.yaml", data_dir, model={"init": str(tiny_checkpoint)},
                 train={"max_steps": 4, "lr": 1e-2}, log={"eval_every": 2}, ckpt={"every": 0})
    run_inprocess("sft", cfg, tmp_path / "lora", ["lora.r=4", "lora.target_modules=[q_proj, v_proj]"])
    rows = read_metrics(tmp_path / "lora")
    assert len(rows) == 4 and "val_loss" in rows[-1]
    adapter = load_file(tmp_path / "lora" / "adapter_model.safetensors")
    assert adapter and all("lora_" in k for k in adapter)
    result = CliRunner().invoke(app, ["merge-lora", "--adapter", str(tmp_path / "lora"), "--out", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not any("lora" in n for n, _ in merged.named_parameters())
    peft = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_checkpoint), tmp_path / "lora")
    tok = NatureTokenizer.from_pretrained(tmp_path / "merged")
    ids = torch.tensor([tok.encode("Instruction: Generate a molecule.\n\n\nResponse: <mol>CCO</mol>", add_bos=True)])
    with torch.no_grad():
        assert torch.allclose(merged(input_ids=ids).logits, peft(input_ids=ids).logits, atol=1e-4)
        base = AutoModelForCausalLM.from_pretrained(tiny_checkpoint)
        assert not torch.allclose(merged(input_ids=ids).logits, base(input_ids=ids).logits, atol=1e-3)


def test_full_sft_from_pretrained_init(data_dir, tiny_checkpoint, tmp_path):
    from transformers import AutoModelForCausalLM

    from naturelm.train.metrics import read_metrics

    cfg = recipe(tmp_path / "r.yaml", data_dir, model={"init": str(tiny_checkpoint)},
                 train={"max_steps": 6, "lr": 3e-3, "micro_batch_size": 8}, log={"eval_every": 0}, ckpt={"every": 0})
    summary = run_inprocess("sft", cfg, tmp_path / "sft")
    losses = [r["loss"] for r in read_metrics(tmp_path / "sft")]
    assert losses[-1] < losses[0] and summary["train_pairs"] == 240
    check = summary["entity_check"]  # verdict cached beside the data (this or the LoRA test's start checked it)
    assert check["cache"] == str(data_dir / "check_cache" / "instructions" / "train.jsonl.json")
    assert check["records_checked"] + check["records_from_cache"] == 240
    AutoModelForCausalLM.from_pretrained(tmp_path / "sft")


def test_preference_pairs_pass_the_oracle_and_swapped_fail():
    from naturelm.train.prefs import build_pairs, meets_objective

    records = [{"instruction": "Generate a molecule.", "response": f"<mol>{s}</mol>"} for s in real_smiles(600)]
    pairs = build_pairs(records, ["qed", "logp", "donors"], neighbours=8, min_similarity=0.3, max_pairs=60, pool_size=600)
    assert len(pairs) >= 20 and len({p["meta"]["property"] for p in pairs}) == 3
    chosen = [meets_objective(p["meta"]["property"], p["meta"]["source"], p["chosen"]) for p in pairs]
    rejected = [meets_objective(p["meta"]["property"], p["meta"]["source"], p["rejected"]) for p in pairs]
    assert sum(chosen) == len(pairs)  # gold responses: 100 %
    assert sum(rejected) == 0  # the rejected responses: 0 %
    src = pairs[0]["meta"]["source"]
    for bad in ["", "<mol></mol>", "<mol>C1CC</mol>", f"<mol>{src}</mol>", src]:
        assert not meets_objective(pairs[0]["meta"]["property"], src, bad)


def test_dpo_loss_matches_the_formula():
    from naturelm.train.dpo import dpo_loss

    class Fixed(torch.nn.Module):  # logits that give known per-row log-probs
        def __init__(self, logits):
            super().__init__()
            self.logits = logits

        def forward(self, input_ids, attention_mask):
            return type("Out", (), {"logits": self.logits})()

    torch.manual_seed(0)
    logits = torch.randn(4, 5, 7)
    labels = torch.randint(0, 7, (4, 5))
    labels[:, :2] = -100
    batch = {"input_ids": labels.clamp(min=0), "attention_mask": torch.ones(4, 5), "labels": labels, "index": [1, 0]}
    ref = torch.tensor([[-3.0, -4.0], [-5.0, -2.0]])
    loss, stats = dpo_loss(Fixed(logits), batch, ref, beta=0.5)
    lp = torch.log_softmax(logits, -1).gather(2, labels.clamp(min=0)[..., None])[..., 0]
    lp = (lp * (labels != -100)).sum(-1)
    expect = 0.0
    for row, i in enumerate([1, 0]):
        margin = 0.5 * ((lp[row] - ref[i, 0]) - (lp[row + 2] - ref[i, 1]))
        expect += -torch.nn.functional.logsigmoid(margin)
    assert torch.allclose(loss, expect, atol=1e-5)


def test_dpo_smoke_run_starts_at_log2(data_dir, tiny_checkpoint, tmp_path):
    from transformers import AutoModelForCausalLM

    from naturelm.train.metrics import read_metrics

    cfg = recipe(tmp_path / "r.yaml", data_dir, model={"init": str(tiny_checkpoint)},
                 train={"max_steps": 3, "lr": 1e-3, "micro_batch_size": 4, "weight_decay": 0.0},
                 data={"dir": str(data_dir), "max_length": 192}, log={"eval_every": 0}, ckpt={"every": 0})
    summary = run_inprocess("dpo", cfg, tmp_path / "dpo",
                            ["dpo.max_pairs=32", "dpo.pool_size=300", "dpo.min_similarity=0.3"])
    rows = read_metrics(tmp_path / "dpo")
    assert summary["pairs"] >= 8 and (tmp_path / "dpo" / "dpo_pairs.jsonl").is_file()
    # policy == reference at step 1: every margin is 0, so the loss is exactly log 2
    assert abs(rows[0]["loss"] - 0.693147) < 1e-4 and abs(rows[0]["reward_margin"]) < 1e-4
    assert all({"reward_acc", "reward_margin", "tokens_per_s"} <= set(r) for r in rows)
    assert rows[-1]["reward_margin"] > 0  # the policy moves toward the chosen responses
    pair = json.loads((tmp_path / "dpo" / "dpo_pairs.jsonl").read_text().splitlines()[0])
    assert pair["chosen"].startswith("<mol>") and pair["prompt"].count("<mol>") == 1
    AutoModelForCausalLM.from_pretrained(tmp_path / "dpo")
