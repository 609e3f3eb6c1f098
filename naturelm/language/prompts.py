"""The instruction format of NatureLM post-training (paper §3); a tokenizer's own format is in its text rules."""
from __future__ import annotations

from naturelm.language.rules import NATURELM_RULES, TextRules


def format_prompt(instruction: str, rules: TextRules | None = None) -> str:
    """`Instruction: {instruction}\\n\\n\\nResponse: ` (NatureLM's own checkpoints) or the prompt of `rules`
    (a tokenizer's `rules`; the released checkpoints end at `Response:`) — what the model continues."""
    return (rules or NATURELM_RULES).format_prompt(instruction)


def format_example(instruction: str, response: str) -> tuple[str, str]:
    """(prompt, response) of one training pair; the loss covers the response (and EOS) only."""
    return format_prompt(instruction), response.strip()
