"""Vocabulary expansion of a base HF causal LM and the stage-1 row mask (paper §2).

Stage 1 trains only the embedding / LM-head rows of the new tokens: every other parameter has
`requires_grad=False`, and gradient hooks zero the old rows of the embedding and LM-head weights.
With weight decay off (the training loop forces it in stage 1) AdamW then leaves them bit-for-bit unchanged.
Stage 2 trains everything.
"""

from __future__ import annotations

from pathlib import Path


def expand_vocabulary(model, vocab_size: int, new_ids: list[int], seed: int = 0, std: float | None = None):
    """Resize the embeddings to `vocab_size` rows (never shrinks) and re-initialise `new_ids` rows ~ N(0, std)."""
    import torch

    rows = model.get_input_embeddings().weight.shape[0]
    model.resize_token_embeddings(max(vocab_size, rows), mean_resizing=False)
    std = std if std is not None else getattr(model.config, "initializer_range", 0.02)
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor(sorted(new_ids), dtype=torch.long)
    weights = {id(w): w for w in (model.get_input_embeddings().weight, model.get_output_embeddings().weight)}
    with torch.no_grad():
        for w in weights.values():
            fresh = torch.randn((len(ids), w.shape[1]), generator=gen) * std
            w[ids] = fresh.to(w.dtype)
    return model


def stage1_freeze(model, new_ids: list[int]) -> list:
    """Freeze everything except the `new_ids` rows of the embedding and LM head; returns the hook handles."""
    import torch

    for p in model.parameters():
        p.requires_grad_(False)
    handles = []
    seen = set()
    for w in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        if id(w) in seen:  # tied embeddings: one tensor, one hook
            continue
        seen.add(id(w))
        mask = torch.zeros((w.shape[0], 1), dtype=w.dtype, device=w.device)
        mask[torch.tensor(sorted(new_ids), dtype=torch.long)] = 1
        w.requires_grad_(True)
        handles.append(w.register_hook(lambda g, m=mask: g * m.to(g.dtype)))
    return handles


def expand_base(base_dir: str | Path, out_dir: str | Path | None = None, seed: int = 0):
    """Load an HF causal LM + its tokenizer dir, add the NatureLM tag/science tokens, and save an HF directory.

    Returns `(model, tokenizer)`; `tokenizer.new_token_ids` are the rows stage 1 trains.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from naturelm.language.tokenizer import NatureTokenizer

    tok = NatureTokenizer.expand(base_dir)
    model = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    expand_vocabulary(model, len(tok), tok.new_token_ids, seed=seed)
    model.config.bos_token_id, model.config.eos_token_id = tok.bos_token_id, tok.eos_token_id
    model.config.pad_token_id = tok.pad_token_id
    if out_dir is not None:
        model.save_pretrained(str(out_dir))
        tok.save_pretrained(out_dir)
    return model, tok
