"""Pre-training: next-token loss on blocks of the built corpus (`DIR/pretrain/{train,valid}.bin` of `naturelm data build`,
or the sharded `DIR/pretrain/index.json` of `naturelm data corpus`)."""

from __future__ import annotations

from pathlib import Path

from naturelm.errors import ConfigError
from naturelm.train.data import pretrain_blocks
from naturelm.train.job import Job, lm_loss


def make_job(cfg: dict, tok, model, accelerator, out: Path) -> Job:
    """Packed train blocks (shuffled per epoch) and, when `log.eval_every` is set, the valid blocks."""
    d, t = cfg["data"], cfg["train"]
    if not d["dir"]:
        raise ConfigError("pretrain needs data.dir (the output of `naturelm data build` or `naturelm data corpus`)")
    global_batch = t["micro_batch_size"] * t["grad_accum"] * accelerator.num_processes
    train = pretrain_blocks(d["dir"], "train", d["block_size"], global_batch, cfg["seed"])
    vocab = min(len(tok), model.get_input_embeddings().weight.shape[0])
    train.check_vocab(vocab)  # before step 1: an id beyond the vocabulary names its file and position
    limit = model.config.max_position_embeddings
    if train.block_size > limit:
        raise ConfigError(f"block_size {train.block_size} exceeds the model context {limit}")
    valid = None
    pre = Path(d["dir"]) / "pretrain"
    if cfg["log"]["eval_every"] and ((pre / "valid.bin").is_file() or _has_valid_shards(pre, train.block_size)):
        valid = pretrain_blocks(d["dir"], "valid", train.block_size, 1, cfg["seed"])
        valid.check_vocab(vocab)
    info = {"train_blocks": len(train), "block_size": train.block_size, "global_batch": global_batch}
    return Job(train=train, loss=lm_loss, valid=valid, info=info)


def _has_valid_shards(pre: Path, block_size: int) -> bool:
    from naturelm.data.shards import is_sharded, shard_paths

    return is_sharded(pre) and any((n - 1) // block_size > 0 for _, n in shard_paths(pre, "valid"))
