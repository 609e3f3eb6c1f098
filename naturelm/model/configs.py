"""Named NatureLM model configs on HF Llama / Mixtral, a builder, and meta-device parameter counts.

| name | hidden / FFN / layers | heads / KV | context | base |
|------|-----------------------|-----------|---------|------|
| tiny | 256 / 704 / 4         | 4 / 2     | 512     | Llama |
| 1b   | 2048 / 5504 / 16      | 32 / 8    | 8192    | Llama-3 style, from scratch |
| 8b   | 4096 / 14336 / 32     | 32 / 8    | 8192    | Llama 3 8B |
| 8x7b | 4096 / 14336 / 32, 8 experts top-2 | 32 / 8 | 8192 | Mixtral 8x7B |
"""

from __future__ import annotations

from typing import Any

from naturelm.errors import ConfigError

# Released vocabulary sizes (naturelm.md §1): used when no tokenizer is given.
LLAMA3_VOCAB = 130_239
MIXTRAL_VOCAB = 38_078

SPECS: dict[str, dict[str, Any]] = {
    "tiny": dict(arch="llama", hidden_size=256, intermediate_size=704, num_hidden_layers=4,
                 num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                 rope_theta=10_000.0, rms_norm_eps=1e-5, tie_word_embeddings=True, vocab_size=None),
    "1b": dict(arch="llama", hidden_size=2048, intermediate_size=5504, num_hidden_layers=16,
               num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
               rope_theta=500_000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, vocab_size=LLAMA3_VOCAB),
    "8b": dict(arch="llama", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
               num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
               rope_theta=500_000.0, rms_norm_eps=1e-5, tie_word_embeddings=False, vocab_size=LLAMA3_VOCAB),
    "8x7b": dict(arch="mixtral", hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                 rope_theta=1_000_000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                 num_local_experts=8, num_experts_per_tok=2, vocab_size=MIXTRAL_VOCAB),
}
TINY_DEFAULT_VOCAB = 8192  # only when neither a tokenizer nor a vocab size is given


def names() -> list[str]:
    """The named configs."""
    return list(SPECS)


def get_config(name: str, vocab_size: int | None = None, tokenizer=None, **overrides):
    """HF `LlamaConfig` / `MixtralConfig` for a named size.

    Vocabulary: `vocab_size` if given, else `len(tokenizer)`, else the paper's size for that family.
    Special-token ids come from the tokenizer when one is given. `overrides` set any config field.
    """
    from transformers import LlamaConfig, MixtralConfig

    if name not in SPECS:
        raise ConfigError(f"unknown model config {name!r}; choose one of {names()}")
    spec = dict(SPECS[name])
    arch = spec.pop("arch")
    theta = spec.pop("rope_theta")
    if vocab_size is None:
        vocab_size = len(tokenizer) if tokenizer is not None else (spec["vocab_size"] or TINY_DEFAULT_VOCAB)
    spec["vocab_size"] = int(vocab_size)
    if tokenizer is not None:
        spec.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id)
    spec["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    spec.update(overrides)
    cls = MixtralConfig if arch == "mixtral" else LlamaConfig
    return cls(**spec)


def build_model(name_or_config, vocab_size: int | None = None, tokenizer=None, seed: int | None = None,
                device: str | None = None, dtype=None, **overrides):
    """A freshly initialised `LlamaForCausalLM` / `MixtralForCausalLM` (seeded if `seed` is given)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = (get_config(name_or_config, vocab_size, tokenizer, **overrides)
              if isinstance(name_or_config, str) else name_or_config)
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device or "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype or torch.float32)
    return model


def param_count(name_or_config, vocab_size: int | None = None) -> dict[str, Any]:
    """Parameter counts on the meta device (no memory): total, embedding, per-token active (MoE)."""
    model = build_model(name_or_config, vocab_size, device="meta")
    cfg = model.config
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    if not cfg.tie_word_embeddings:
        embedding += model.get_output_embeddings().weight.numel()
    active = total
    n_experts = getattr(cfg, "num_local_experts", None)
    if n_experts:
        expert = sum(p.numel() for n, p in model.named_parameters() if ".experts." in n)
        active = total - expert + expert * cfg.num_experts_per_tok // n_experts
    return {
        "name": name_or_config if isinstance(name_or_config, str) else cfg.model_type,
        "architecture": type(model).__name__,
        "total_params": total,
        "active_params": active,
        "embedding_params": embedding,
        "non_embedding_params": total - embedding,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "max_position_embeddings": cfg.max_position_embeddings,
        "num_local_experts": n_experts,
        "num_experts_per_tok": getattr(cfg, "num_experts_per_tok", None),
    }
