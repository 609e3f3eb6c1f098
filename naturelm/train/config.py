"""Training recipes: YAML files merged over defaults, with `--set a.b=value` overrides."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from naturelm.errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "seed": 1337,
    "data": {
        "dir": None,          # built data directory (naturelm data build --out DIR)
        "tokenizer": None,    # tokenizer dir; default DIR/tokenizer, else the shipped NatureTokenizer
        "block_size": None,   # pretrain block length; default DIR/pretrain/meta.json block_size
        "max_length": 512,    # sft/dpo: longer pairs are skipped (and counted)
        "tasks": None,        # sft: restrict to these task names
        "task_repeats": {},   # sft: oversampling, e.g. {molecule_generation: 4} repeats those records 4 times
        "max_examples": None,  # sft/dpo: cap on training records (the first N)
        "bucket_factor": 64,  # sft: length-sorting window, in global batches
        "invalid_entities": "refuse",  # sft/dpo: records with invalid entities (e.g. SMILES RDKit cannot read)
                                       # refuse the run (error with their lines) or are skipped and counted: skip
    },
    "model": {
        "config": "tiny",     # named config (naturelm.model.configs) for a model trained from scratch
        "init": None,         # HF directory to start from instead (pretrained / expanded / SFT model)
        "stage": 2,           # 1: only the new-token embedding / LM-head rows train; 2: everything
        "overrides": {},      # any HF config field, e.g. {num_hidden_layers: 2}
        "gradient_checkpointing": False,
    },
    "train": {
        "max_steps": 100,
        "micro_batch_size": 8,
        "grad_accum": 1,
        "lr": 3e-4,
        "min_lr": 3e-5,
        "warmup_steps": 10,
        "weight_decay": 0.1,
        "betas": [0.9, 0.95],
        "grad_clip": 1.0,
        "mixed_precision": None,  # no | bf16 | fp16; None: what `accelerate launch` says
        "threads": None,      # torch intra-op threads (None: torch's default, i.e. OMP_NUM_THREADS or all cores)
    },
    "log": {"every": 1, "eval_every": 0, "eval_batches": 4, "tensorboard": True, "plot": True},
    "ckpt": {"every": 50, "keep_last": 2},
    "lora": {"r": 0, "alpha": 16, "dropout": 0.0,
             "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]},
    "dpo": {
        "beta": 0.1,
        "reference": None,     # reference policy; default model.init (the SFT model)
        "properties": ["qed", "logp", "donors"],
        "neighbours": 8,        # candidate molecules per source molecule (by Tanimoto similarity)
        "min_similarity": 0.4,
        "max_pairs": 2000,
        "pool_size": 20000,     # molecules read from the instruction set to build pairs from
    },
}


def _merge(base: dict, update: dict, where: str = "") -> dict:
    for key, value in update.items():
        path = f"{where}{key}"
        if key not in base:
            raise ConfigError(f"unknown config key {path!r}; known here: {sorted(base)}")
        if isinstance(base[key], dict) and key not in ("overrides", "task_repeats"):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {path!r} is a section; got {value!r}")
            _merge(base[key], value, path + ".")
        else:
            base[key] = value
    return base


PATH_SUFFIXES = ("dir", "path", "file", "checkpoint", "output")  # --set keys whose values are paths, not YAML


def parse_set(items: list[str] | None) -> dict:
    """`["train.lr=1e-3", "lora.r=8"]` -> nested dict; values are parsed as YAML scalars/lists."""
    out: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if parts[-1].endswith(PATH_SUFFIXES):  # a path stays the text given (`data.dir=2024`, `out=null`)
            node[parts[-1]] = raw
            continue
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {key}: cannot parse {raw!r} as a YAML value ({exc.problem})") from None
    return out


def load_config(path: str | Path | None = None, sets: list[str] | None = None) -> dict:
    """Defaults, then the YAML recipe at `path`, then `--set` overrides."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found (recipes live in configs/)")
        _merge(cfg, yaml.safe_load(path.read_text()) or {})
    _merge(cfg, parse_set(sets))
    for key in ("lr", "min_lr", "weight_decay", "grad_clip"):
        cfg["train"][key] = float(cfg["train"][key])
    if cfg["model"]["stage"] not in (1, 2):
        raise ConfigError(f"model.stage must be 1 or 2, got {cfg['model']['stage']!r}")
    return cfg
