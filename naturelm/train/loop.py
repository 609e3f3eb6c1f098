"""The one training loop (pretrain / sft / dpo), nanoGPT style, on accelerate (DDP / FSDP / DeepSpeed).

Each step takes the global batch the dataset assigns to that step, splits it into
`grad_accum` x `num_processes` micro-batches, and backpropagates each micro-batch's *summed* loss
scaled by world x accum / (units in the global batch). The gradient is therefore the gradient of the
global token-mean (pair-mean for DPO) loss however the batch is split over processes and micro-batches.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from naturelm.errors import ConfigError
from naturelm.train import dpo, pretrain, sft
from naturelm.train.checkpoint import load_latest, save_checkpoint
from naturelm.train.metrics import RunLog, plot_losses


def lr_at(step: int, t: dict) -> float:
    """Linear warm-up, then cosine decay to `min_lr` at `max_steps`."""
    if step < t["warmup_steps"]:
        return t["lr"] * (step + 1) / t["warmup_steps"]
    span = max(1, t["max_steps"] - t["warmup_steps"])
    progress = min(1.0, (step - t["warmup_steps"]) / span)
    return t["min_lr"] + 0.5 * (1 + math.cos(math.pi * progress)) * (t["lr"] - t["min_lr"])


def load_model(cfg: dict, tok):
    """The model to train: `model.init` (an HF directory) or a fresh named config sized to the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from naturelm.model.configs import build_model

    m = cfg["model"]
    if m["init"]:
        if not (Path(m["init"]) / "config.json").is_file():
            raise ConfigError(f"model.init={m['init']} is not an HF model directory (no config.json)")
        model = AutoModelForCausalLM.from_pretrained(str(m["init"]), dtype=torch.float32)
    else:
        model = build_model(m["config"], tokenizer=tok, seed=cfg["seed"], **(m["overrides"] or {}))
    rows = model.get_input_embeddings().weight.shape[0]
    if rows < len(tok):
        raise ConfigError(f"model has {rows} embedding rows but the tokenizer has {len(tok)} tokens; "
                          "expand the base model first (`naturelm model expand`)")
    if m["gradient_checkpointing"]:
        model.gradient_checkpointing_enable()
        model.config.use_cache = False
    return model


def make_optimizer(model, t: dict, stage: int):
    """AdamW; decay on matrices only, and no decay at all in stage 1 (frozen rows must stay bit-exact)."""
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    wd = 0.0 if stage == 1 else t["weight_decay"]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": wd},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=t["lr"], betas=tuple(t["betas"]))


def micro_batches(indices: list[int], rank: int, world: int, micro: int) -> list[list[int]]:
    """This process's micro-batches of a global batch: micro-batch m of rank r is slot m * world + r."""
    slots = [indices[k : k + micro] for k in range(0, len(indices), micro)]
    return slots[rank::world]


def _to(batch: dict, device) -> dict:
    return {k: (v.to(device) if hasattr(v, "to") else v) for k, v in batch.items()}


def evaluate(model, data, loss_fn, accelerator, n_batches: int, micro: int) -> float | None:
    """Mean loss over the first examples of `data`, the same number of micro-batches on every process."""
    import torch

    world = accelerator.num_processes
    n = min(len(data), n_batches * micro * world) // world * world
    if n == 0:
        return None
    mine = list(range(accelerator.process_index, n, world))
    total = torch.zeros(2, dtype=torch.float64, device=accelerator.device)
    model.eval()
    with torch.no_grad():
        for k in range(0, len(mine), micro):
            chunk = mine[k : k + micro]
            loss, _ = loss_fn(model, _to(data.collate(chunk), accelerator.device))
            total[0] += loss.double()
            total[1] += data.units(chunk)
    model.train()
    total = accelerator.reduce(total, "sum")
    return (total[0] / total[1]).item()


def save_final(accelerator, model, tok, out: Path) -> None:
    """Write a standard HF directory (safetensors, config, tokenizer files) into `out`, atomically per file."""
    accelerator.wait_for_everyone()
    state = accelerator.get_state_dict(model)
    if accelerator.is_main_process:
        tmp = out / ".final.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        accelerator.unwrap_model(model).save_pretrained(str(tmp), state_dict=state)
        tok.save_pretrained(tmp)
        for f in tmp.iterdir():
            os.replace(f, out / f.name)
        tmp.rmdir()
    accelerator.wait_for_everyone()


def run(task: str, cfg: dict, out: str | Path) -> dict:
    """Train `task` ("pretrain" | "sft" | "dpo") with recipe `cfg`; returns the run summary."""
    import torch
    import yaml
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from naturelm.model.expand import stage1_freeze
    from naturelm.train.data import load_tokenizer
    from naturelm.train.lora import apply_lora

    out = Path(out)
    t, m = cfg["train"], cfg["model"]
    # cpu=True lets accelerate run multi-process CPU jobs (gloo) under torchrun when no GPU is present
    accelerator = Accelerator(mixed_precision=t["mixed_precision"], gradient_accumulation_steps=t["grad_accum"],
                              cpu=not torch.cuda.is_available())
    world, rank = accelerator.num_processes, accelerator.process_index
    ds = accelerator.state.deepspeed_plugin
    if ds is not None:  # ZeRO takes micro-batch and clipping from its config; we prepare no dataloader
        ds.deepspeed_config["train_micro_batch_size_per_gpu"] = t["micro_batch_size"]
        ds.deepspeed_config["gradient_clipping"] = t["grad_clip"]
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.yaml").write_text(yaml.safe_dump({"task": task, **cfg}, sort_keys=False))
    set_seed(cfg["seed"])
    if t["threads"]:
        torch.set_num_threads(int(t["threads"]))
    tok = load_tokenizer(cfg)
    model = load_model(cfg, tok)
    job = {"pretrain": pretrain.make_job, "sft": sft.make_job, "dpo": dpo.make_job}[task](cfg, tok, model, accelerator, out)
    if m["stage"] == 1:
        if not tok.new_token_ids:
            raise ConfigError("model.stage=1 needs an expanded tokenizer with new_token_ids (`naturelm model expand`)")
        if accelerator.distributed_type.name in ("FSDP", "DEEPSPEED"):
            raise ConfigError("model.stage=1 masks rows of the full embedding weights; run it with DDP "
                              "(configs/accelerate/ddp.yaml): only those rows carry gradients and optimizer state")
        stage1_freeze(model, tok.new_token_ids)
    if cfg["lora"]["r"]:
        if not m["init"]:
            raise ConfigError("LoRA needs a base model: set model.init to an HF directory")
        model = apply_lora(model, cfg["lora"])
    optimizer = make_optimizer(model, t, m["stage"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, t) / t["lr"])
    model, optimizer = accelerator.prepare(model, optimizer)

    state = load_latest(accelerator, out / "checkpoints", model, optimizer, scheduler)
    start = state["step"] if state else 0
    tokens_seen = state["tokens"] if state else 0
    log = RunLog(out, accelerator.is_main_process, t["max_steps"], start, cfg["log"]["tensorboard"], desc=task)
    micro, accum = t["micro_batch_size"], t["grad_accum"]
    model.train()
    row: dict = {}
    t_start = time.time()
    for step in range(start, t["max_steps"]):
        t0 = time.time()
        indices = job.train.global_batch_indices(step)
        units = job.train.units(indices)
        scale = world * accum / max(1, units)
        total = torch.zeros((), dtype=torch.float64, device=accelerator.device)
        stats: dict[str, Any] = {}
        grad_norm = None
        for chunk in micro_batches(indices, rank, world, micro):
            with accelerator.accumulate(model):
                loss, extra = job.loss(model, _to(job.train.collate(chunk), accelerator.device))
                accelerator.backward(loss * scale)
                if accelerator.sync_gradients and t["grad_clip"] > 0:
                    grad_norm = accelerator.clip_grad_norm_(model.parameters(), t["grad_clip"])
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
            total += loss.detach().double()
            for k, v in extra.items():
                stats[k] = stats.get(k, 0.0) + v.detach().double()
        scheduler.step()
        total = accelerator.reduce(total, "sum")
        step_tokens = job.train.n_tokens(indices)
        tokens_seen += step_tokens
        dt = time.time() - t0
        row = {"step": step + 1, "loss": total.item() / max(1, units), "lr": lr_at(step, t),
               "tokens_per_s": step_tokens / max(dt, 1e-9), "tokens": tokens_seen}
        if grad_norm is not None:
            row["grad_norm"] = float(grad_norm)
        for k, v in stats.items():
            row[k] = accelerator.reduce(v, "sum").item() / max(1, units)
        every = cfg["log"]["eval_every"]
        if job.valid is not None and every and ((step + 1) % every == 0 or step + 1 == t["max_steps"]):
            val = evaluate(model, job.valid, job.loss, accelerator, cfg["log"]["eval_batches"], micro)
            if val is not None:
                row["val_loss"] = val
        if (step + 1) % cfg["log"]["every"] == 0 or step + 1 == t["max_steps"] or "val_loss" in row:
            log.log(row)
        log.advance()
        if cfg["ckpt"]["every"] and (step + 1) % cfg["ckpt"]["every"] == 0 and step + 1 < t["max_steps"]:
            save_checkpoint(accelerator, out / "checkpoints", step + 1, {"tokens": tokens_seen}, cfg["ckpt"]["keep_last"],
                            model, optimizer, scheduler)
    log.close()
    save_final(accelerator, model, tok, out)
    summary = {"task": task, "steps": t["max_steps"], "resumed_from": start, "final": row,
               "train_seconds_this_run": round(time.time() - t_start, 2), "processes": world, **job.info}
    if accelerator.is_main_process:
        (out / "run.json").write_text(json.dumps(summary, indent=1))
        if cfg["log"]["plot"]:
            plot_losses(out)
    accelerator.end_training()
    return summary
