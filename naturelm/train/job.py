"""What a task contributes to the training loop (`Job`), and the language-model loss the loop and the tasks share.

The job makers (`pretrain`, `sft`, `dpo`) import from here, and `loop` imports them: imports flow one way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Job:
    """What a task contributes: datasets and a loss returning (summed loss, summed stats) of a batch."""

    train: Any
    loss: Callable
    valid: Any = None
    info: dict = field(default_factory=dict)


def lm_loss(model, batch, labelled_logits: bool = True):
    """Summed next-token cross-entropy over the labelled (non -100) positions.

    `labelled_logits`: the LM head and softmax run on the labelled positions only (an SFT prompt's positions need
    no logits), when the model is an unwrapped HF decoder with a `.model` body (a DDP/FSDP-wrapped model must be
    called as a whole, so it computes every position). Same loss and gradients either way, up to float rounding.
    """
    import torch.nn.functional as F
    from transformers import PreTrainedModel

    labels = batch["labels"]
    body = getattr(model, "model", None)
    if labelled_logits and isinstance(model, PreTrainedModel) and isinstance(body, PreTrainedModel):
        hidden = body(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).last_hidden_state
        keep = labels != -100
        logits = model.get_output_embeddings()(hidden[keep])
        return F.cross_entropy(logits.float(), labels[keep], reduction="sum"), {}
    logits = model(input_ids=batch["input_ids"], attention_mask=batch.get("attention_mask")).logits
    loss = F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100, reduction="sum")
    return loss, {}
