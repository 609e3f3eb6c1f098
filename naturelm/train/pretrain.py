"""Pre-training: next-token loss on packed blocks of the built corpus (`DIR/pretrain/{train,valid}.bin`)."""

from __future__ import annotations

from pathlib import Path

from naturelm.errors import ConfigError
from naturelm.train.data import PackedBlocks
from naturelm.train.loop import Job, lm_loss


def make_job(cfg: dict, tok, model, accelerator, out: Path) -> Job:
    """Packed train blocks (shuffled per epoch) and, when `log.eval_every` is set, the valid blocks."""
    d, t = cfg["data"], cfg["train"]
    if not d["dir"]:
        raise ConfigError("pretrain needs data.dir (the output of `naturelm data build`)")
    global_batch = t["micro_batch_size"] * t["grad_accum"] * accelerator.num_processes
    train = PackedBlocks(d["dir"], "train", d["block_size"], global_batch, cfg["seed"])
    limit = model.config.max_position_embeddings
    if train.block_size > limit:
        raise ConfigError(f"block_size {train.block_size} exceeds the model context {limit}")
    valid = None
    if cfg["log"]["eval_every"] and (Path(d["dir"]) / "pretrain" / "valid.bin").is_file():
        valid = PackedBlocks(d["dir"], "valid", train.block_size, 1, cfg["seed"])
    info = {"train_blocks": len(train), "block_size": train.block_size, "global_batch": global_batch}
    return Job(train=train, loss=lm_loss, valid=valid, info=info)
