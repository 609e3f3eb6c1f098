"""Supervised fine-tuning on `Instruction: …\n\n\nResponse: …` pairs, loss on the response only, length-bucketed."""

from __future__ import annotations

from pathlib import Path

from naturelm.errors import ConfigError
from naturelm.train.data import SFTData
from naturelm.train.job import Job, lm_loss


def make_job(cfg: dict, tok, model, accelerator, out: Path) -> Job:
    """Tokenised pairs of `instructions/train.jsonl` (and valid.jsonl for evaluation)."""
    d, t = cfg["data"], cfg["train"]
    if not d["dir"]:
        raise ConfigError("sft needs data.dir (the output of `naturelm data build`)")
    max_length = min(d["max_length"], model.config.max_position_embeddings)
    global_batch = t["micro_batch_size"] * t["grad_accum"] * accelerator.num_processes
    main = accelerator.is_main_process
    train = SFTData(d["dir"], "train", tok, max_length, global_batch, cfg["seed"], d["tasks"], d["max_examples"],
                    d["bucket_factor"], task_repeats=d["task_repeats"], invalid_entities=d["invalid_entities"],
                    run_dir=out, progress=main)
    valid = None
    if cfg["log"]["eval_every"] and (Path(d["dir"]) / "instructions" / "valid.jsonl").is_file():
        valid = SFTData(d["dir"], "valid", tok, max_length, 1, cfg["seed"], d["tasks"],
                        invalid_entities=d["invalid_entities"], run_dir=out, progress=main)
    info = {"train_pairs": len(train), "skipped_too_long": train.skipped,
            "skipped_invalid": dict(train.invalid), "global_batch": global_batch,
            "max_length": max_length, "entity_check": train.entity_check}
    return Job(train=train, loss=lm_loss, valid=valid, info=info)
