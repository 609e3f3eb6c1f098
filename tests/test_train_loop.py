"""The training loop: a tiny pre-training run end to end, and exact resume after SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from test_train_data import make_data

REPO = Path(__file__).resolve().parents[1]
# a very small model so that the default suite stays short on 2 shared cores
MICRO = {"num_hidden_layers": 1, "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 2,
         "num_key_value_heads": 1}


def recipe(path: Path, data_dir: Path, **sections) -> Path:
    """Write a tiny recipe YAML; `sections` update the defaults below."""
    cfg = {"seed": 7, "data": {"dir": str(data_dir), "block_size": 32, "max_length": 128},
           "model": {"config": "tiny", "overrides": MICRO},
           "train": {"max_steps": 8, "micro_batch_size": 4, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 2},
           "log": {"every": 1, "eval_every": 4, "eval_batches": 2}, "ckpt": {"every": 3, "keep_last": 2}}
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_inprocess(task: str, config: Path, out: Path, sets=()):
    import torch

    from naturelm.train.config import load_config
    from naturelm.train.loop import run

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return run(task, load_config(config, list(sets)), out)
    finally:
        torch.set_num_threads(n)


def env1() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"), n_mols=150)


def test_tiny_pretrain_end_to_end(data_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from naturelm.language.tokenizer import NatureTokenizer
    from naturelm.train.metrics import read_metrics

    out = tmp_path / "run"
    cfg = recipe(tmp_path / "r.yaml", data_dir, model={"overrides": {**MICRO, "hidden_size": 64}})
    summary = run_inprocess("pretrain", cfg, out, ["train.max_steps=12", "train.lr=1e-2"])
    rows = read_metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 13))
    assert all({"step", "loss", "lr", "tokens_per_s"} <= set(r) and r["tokens_per_s"] > 0 for r in rows)
    assert sum(r["loss"] for r in rows[-3:]) < sum(r["loss"] for r in rows[:3]) - 1.5  # it learns
    assert [r["step"] for r in rows if "val_loss" in r] == [4, 8, 12]
    assert (out / "loss.png").stat().st_size > 1000 and list((out / "tb").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_0000006", "step_0000009"]  # keep last 2
    assert summary["final"]["step"] == 12
    model = AutoModelForCausalLM.from_pretrained(out)  # plain HF directory, no trust_remote_code
    tok = NatureTokenizer.from_pretrained(out)
    ids = torch.tensor([tok.encode("The molecule <mol>CCO</mol>", add_bos=True)])
    assert model(input_ids=ids).logits.shape[-1] == len(tok)
    assert (out / "model.safetensors").is_file() and not list(out.glob(".final.tmp"))


def test_resume_after_sigkill_logs_the_same_losses(data_dir, tmp_path):
    """Uninterrupted run vs a run killed with SIGKILL after a checkpoint, then resumed: identical logs."""
    from naturelm.train.metrics import read_metrics

    cfg = recipe(tmp_path / "r.yaml", data_dir, train={"max_steps": 10})
    run_inprocess("pretrain", cfg, tmp_path / "ref")
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "naturelm.train.cli", "pretrain", "--config", str(cfg), "--out", str(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env1(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    try:
        while not (killed / "checkpoints" / "step_0000006").is_dir():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists()
    summary = run_inprocess("pretrain", cfg, killed)
    assert summary["resumed_from"] in (6, 9)

    def key(rows):
        return [(r["step"], r["loss"], r["lr"], r["grad_norm"], r["tokens"], r.get("val_loss")) for r in rows]

    assert key(read_metrics(killed)) == key(read_metrics(tmp_path / "ref"))
    assert len(read_metrics(killed)) == 10


def test_checkpoint_is_atomic_and_pruned(tmp_path):
    """A leftover temp dir (a save interrupted mid-write) is ignored by resume and cleaned by the next save."""
    from naturelm.train.checkpoint import STATE_FILE, list_checkpoints

    (tmp_path / ".tmp_step_0000009").mkdir()
    (tmp_path / ".tmp_step_0000009" / "model.safetensors").write_text("partial")
    (tmp_path / "step_0000003").mkdir()
    (tmp_path / "step_0000003" / STATE_FILE).write_text('{"step": 3}')
    (tmp_path / "step_0000006").mkdir()  # no state file: incomplete, never resumed from
    assert list_checkpoints(tmp_path) == [(3, tmp_path / "step_0000003")]


def test_config_overrides_and_typos(tmp_path):
    from naturelm.errors import ConfigError
    from naturelm.train.config import load_config, parse_set

    assert parse_set(["lora.r=8", "train.betas=[0.9, 0.99]", "data.tasks=null"]) == {
        "lora": {"r": 8}, "train": {"betas": [0.9, 0.99]}, "data": {"tasks": None}}
    cfg = load_config(REPO / "configs" / "tiny_sft.yaml", ["lora.r=8", "train.lr=1e-4"])
    assert cfg["lora"]["r"] == 8 and cfg["train"]["lr"] == 1e-4 and cfg["data"]["max_length"] == 384
    with pytest.raises(ConfigError, match="unknown config key 'train.lrr'"):
        load_config(None, ["train.lrr=1"])
    for name in ["tiny_pretrain", "tiny_sft", "tiny_dpo", "1b_pretrain", "8b_pretrain", "8x7b_pretrain",
                 "1b_sft", "8b_sft", "8x7b_sft", "8b_dpo"]:
        load_config(REPO / "configs" / f"{name}.yaml")


def test_accelerate_configs_parse_with_accelerate():
    from accelerate.commands.config.config_args import load_config_from_file

    kinds = {name: load_config_from_file(str(REPO / "configs" / "accelerate" / f"{name}.yaml")).distributed_type.name
             for name in ("ddp", "fsdp", "deepspeed_zero3")}
    assert kinds == {"ddp": "MULTI_GPU", "fsdp": "FSDP", "deepspeed_zero3": "DEEPSPEED"}


def test_labelled_logits_loss_equals_the_full_loss():
    """The LM head on labelled positions only: the same summed loss and gradients as on every position."""
    import torch

    from naturelm.language import NatureTokenizer
    from naturelm.model.configs import build_model
    from naturelm.train.data import pad_batch
    from naturelm.train.job import lm_loss

    tok = NatureTokenizer()
    model = build_model("tiny", tokenizer=tok, seed=0, num_hidden_layers=1)
    seqs = [[5, 6, 7, 8, 9, 10], [11, 12, 13]]
    labels = [[-100, -100, -100, 8, 9, 10], [-100, 12, 13]]
    batch = pad_batch(seqs, labels, tok.pad_token_id)
    grads = []
    for labelled in (True, False):
        model.zero_grad()
        loss, _ = lm_loss(model, batch, labelled_logits=labelled)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    (a, ga), (b, gb) = grads
    assert a == pytest.approx(b, rel=1e-5) and a > 0
    assert len(ga) == len(gb) and all(torch.allclose(x, y, atol=1e-6) for x, y in zip(ga, gb))
    # by hand: 5 labelled targets after the shift (8, 9, 10 and 12, 13) -> 5 x their mean loss
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    mean = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=-100)
    assert a == pytest.approx(5 * mean.item(), rel=1e-5)


class _RunsCodeWhenUnpickled:
    """Unpickling this creates the file `marker` (what a hostile pickle swapped into a checkpoint could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoints_are_never_unpickled(data_dir, tmp_path):
    """Resume reads safetensors and JSON only: pickles planted under accelerate's file names beside a checkpoint are
    never loaded (the run resumes and ends as an uninterrupted one), and an old-format checkpoint (pickled optimizer
    and RNG state, no format in trainer_state.json) is refused with ConfigError, its pickles untouched."""
    import json
    import pickle

    from naturelm.errors import ConfigError
    from naturelm.train.checkpoint import FORMAT, STATE_FILE
    from naturelm.train.metrics import read_metrics

    cfg = recipe(tmp_path / "r.yaml", data_dir, train={"max_steps": 5}, log={"eval_every": 0},
                 ckpt={"every": 2, "keep_last": 1})
    run_inprocess("pretrain", cfg, tmp_path / "ref")
    out = tmp_path / "run"
    run_inprocess("pretrain", cfg, out, ["train.max_steps=3"])  # leaves step_0000002
    ckpt = out / "checkpoints" / "step_0000002"
    state = json.loads((ckpt / STATE_FILE).read_text())
    assert state["format"] == FORMAT and state["step"] == 2
    assert sorted(p.suffix for p in ckpt.iterdir()) == [".json"] * 4 + [".safetensors"] * 3
    marker = tmp_path / "code-ran"
    hostile = pickle.dumps(_RunsCodeWhenUnpickled(marker))
    for name in ("optimizer.bin", "scheduler.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl",
                 "pytorch_model.bin", "scaler.pt"):
        (ckpt / name).write_bytes(hostile)
    (out / "run.json").unlink()
    summary = run_inprocess("pretrain", cfg, out)
    assert summary["resumed_from"] == 2 and not marker.exists()

    def key(rows):
        return [(r["step"], r["loss"], r["lr"], r["grad_norm"], r["tokens"]) for r in rows]

    assert key(read_metrics(out)[-3:]) == key(read_metrics(tmp_path / "ref")[-3:])

    old = tmp_path / "old" / "checkpoints" / "step_0000002"  # the layout accelerate's save_state wrote before
    old.mkdir(parents=True)
    for name in ("optimizer.bin", "scheduler.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl"):
        (old / name).write_bytes(hostile)
    (old / STATE_FILE).write_text('{"step": 2, "tokens": 0}')
    with pytest.raises(ConfigError, match="never unpickled"):
        run_inprocess("pretrain", cfg, tmp_path / "old")
    assert not marker.exists()
    with pytest.raises(FileNotFoundError):  # the payload does run when unpickled
        pickle.loads(pickle.dumps(_RunsCodeWhenUnpickled(tmp_path / "missing" / "x")))
