"""DPO (Rafailov et al. 2023) on RDKit-oracle preference pairs; the reference policy is the SFT model.

The loss is implemented here, in our loop, rather than through TRL's `DPOTrainer`: that trainer is an HF
`Trainer` with its own loop, checkpoints and an HF tokenizer as `processing_class`, which would bypass our
exact-resume checkpoints, bucketed batches and NatureTokenizer. Reference log-probabilities are computed
once before training (TRL's `precompute_ref_log_probs`), so only the policy sits in memory while training.
"""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

from naturelm.errors import ConfigError
from naturelm.train.data import PreferenceData, read_jsonl
from naturelm.train.job import Job


def sequence_logps(model, batch):
    """Summed log-probability of the labelled tokens of each row."""
    import torch.nn.functional as F

    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"]
    nll = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="none")
    return -nll.view(labels.shape).sum(-1)


def dpo_loss(model, batch, ref, beta: float):
    """Summed DPO loss of the pairs in `batch` (chosen rows, then rejected rows), plus reward accuracy / margin."""
    import torch.nn.functional as F

    logps = sequence_logps(model, batch)
    n = len(batch["index"])
    r = ref[batch["index"]].to(logps.device)
    margin = beta * ((logps[:n] - r[:, 0]) - (logps[n:] - r[:, 1]))
    loss = -F.logsigmoid(margin).sum()
    return loss, {"reward_acc": (margin > 0).float().sum(), "reward_margin": margin.detach().sum()}


def load_pairs(cfg: dict, accelerator, out: Path) -> list[dict]:
    """`dpo.pairs` (JSONL) if given, else pairs built from the instruction set (cached in OUT/dpo_pairs.jsonl)."""
    from naturelm.train.prefs import build_pairs

    d, p = cfg["data"], cfg["dpo"]
    if p.get("pairs"):
        return read_jsonl(Path(p["pairs"]), required=("prompt", "chosen", "rejected"))
    cache = out / "dpo_pairs.jsonl"
    if accelerator.is_main_process and not cache.is_file():
        if not d["dir"]:
            raise ConfigError("dpo needs data.dir (the built data) or dpo.pairs (a JSONL of prompt/chosen/rejected)")
        from naturelm.train.data import _require

        records = read_jsonl(_require(Path(d["dir"]) / "instructions" / "train.jsonl", "instruction set"),
                             d["max_examples"], required=("instruction", "response"))
        pairs = build_pairs(records, list(p["properties"]), p["neighbours"], p["min_similarity"], p["max_pairs"],
                            p["pool_size"], cfg["seed"])
        tmp = cache.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(x) + "\n" for x in pairs))
        os.replace(tmp, cache)
    accelerator.wait_for_everyone()
    return read_jsonl(cache)


def reference_logps(cfg: dict, data: PreferenceData, policy, accelerator, out: Path):
    """(n_pairs, 2) reference log-probs of (chosen, rejected), computed once and cached in OUT/ref_logps.safetensors
    (never a pickle: a cache of the wrong shape or an unreadable file is recomputed)."""
    import torch
    from accelerate.utils import gather_object
    from safetensors import SafetensorError
    from safetensors.torch import load_file, save_file

    cache = out / "ref_logps.safetensors"
    if cache.is_file():
        try:
            ref = load_file(str(cache)).get("ref_logps")
        except (SafetensorError, OSError):
            ref = None
        if ref is not None and tuple(ref.shape) == (len(data.chosen), 2) and ref.dtype == torch.float64:
            return ref
    model = policy
    if cfg["dpo"]["reference"]:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(str(cfg["dpo"]["reference"]), dtype=torch.float32)
    model.to(accelerator.device).eval()
    micro, world = cfg["train"]["micro_batch_size"], accelerator.num_processes
    mine = list(range(len(data.chosen)))[accelerator.process_index :: world]
    rows = []
    with torch.no_grad(), accelerator.autocast():
        for k in range(0, len(mine), micro):
            chunk = mine[k : k + micro]
            batch = {key: (v.to(accelerator.device) if hasattr(v, "to") else v)
                     for key, v in data.collate(chunk).items()}
            lp = sequence_logps(model, batch).double().cpu()
            rows += [(i, lp[j].item(), lp[j + len(chunk)].item()) for j, i in enumerate(chunk)]
    model.train()
    rows = sorted(gather_object(rows))
    ref = torch.tensor([[c, r] for _, c, r in rows], dtype=torch.float64)
    if accelerator.is_main_process:
        tmp = cache.with_suffix(".tmp")
        save_file({"ref_logps": ref}, str(tmp))
        os.replace(tmp, cache)
    return ref


def make_job(cfg: dict, tok, model, accelerator, out: Path) -> Job:
    """Preference pairs, reference log-probs from the SFT model, and the DPO loss."""
    if not cfg["model"]["init"]:
        raise ConfigError("dpo starts from the SFT model: set model.init to its output directory")
    t = cfg["train"]
    global_batch = t["micro_batch_size"] * t["grad_accum"] * accelerator.num_processes
    pairs = load_pairs(cfg, accelerator, out)
    max_length = min(cfg["data"]["max_length"], model.config.max_position_embeddings)
    data = PreferenceData(pairs, tok, max_length, global_batch, cfg["seed"], cfg["data"]["bucket_factor"],
                          path=cfg["dpo"].get("pairs"), invalid_entities=cfg["data"]["invalid_entities"])
    ref = reference_logps(cfg, data, model, accelerator, out)
    by_property: dict[str, int] = {}
    for pair in data.kept:
        key = pair.get("meta", {}).get("property", "given")
        by_property[key] = by_property.get(key, 0) + 1
    info = {"pairs": len(data.chosen), "pairs_by_property": by_property, "skipped_too_long": data.skipped,
            "skipped_invalid": dict(data.invalid), "beta": cfg["dpo"]["beta"], "global_batch": global_batch}
    return Job(train=data, loss=partial(dpo_loss, ref=ref.float(), beta=cfg["dpo"]["beta"]), info=info)
