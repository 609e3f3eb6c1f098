"""The instruction format of NatureLM post-training (paper §3)."""
from __future__ import annotations

RESPONSE_MARKER = "\n\n\nResponse: "


def format_prompt(instruction: str) -> str:
    """`Instruction: {instruction}\\n\\n\\nResponse: ` — what the model continues."""
    return f"Instruction: {instruction.strip()}{RESPONSE_MARKER}"


def format_example(instruction: str, response: str) -> tuple[str, str]:
    """(prompt, response) of one training pair; the loss covers the response (and EOS) only."""
    return format_prompt(instruction), response.strip()
