"""LoRA adapters via peft, and merging an adapter back into a plain HF model directory."""

from __future__ import annotations

import json
from pathlib import Path

from naturelm.errors import ConfigError


def apply_lora(model, lora_cfg: dict):
    """Wrap `model` with LoRA adapters (`lora.r`, `alpha`, `dropout`, `target_modules`)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=int(lora_cfg["r"]), lora_alpha=lora_cfg["alpha"], lora_dropout=lora_cfg["dropout"],
                        target_modules=list(lora_cfg["target_modules"]), task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merge_lora(adapter_dir: str | Path, out_dir: str | Path, base: str | Path | None = None) -> Path:
    """Merge a LoRA adapter into its base model and write a standard HF directory (with our tokenizer files)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from naturelm.language.tokenizer import CONFIG_FILE, NatureTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    cfg_file = adapter_dir / "adapter_config.json"
    if not cfg_file.is_file():
        raise ConfigError(f"{adapter_dir} has no adapter_config.json; pass the output dir of a run with lora.r > 0")
    base = Path(base or json.loads(cfg_file.read_text())["base_model_name_or_path"])
    if not (base / "config.json").is_file():
        raise ConfigError(f"base model {base} not found; pass --base DIR")
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(str(out_dir))
    for src in (adapter_dir, base):
        if (src / CONFIG_FILE).is_file():
            NatureTokenizer.from_pretrained(src).save_pretrained(out_dir)
            break
    return out_dir
