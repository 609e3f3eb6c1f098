"""The small interface every answer source implements: our model, template baselines, rule-based namers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass
class Candidate:
    """One answer: the entity text (e.g. canonical SMILES, a name), its score and where it came from."""

    text: str
    score: float = 0.0
    source: str = ""
    verified: bool | None = None
    meta: dict = field(default_factory=dict)


@runtime_checkable
class Predictor(Protocol):
    """Anything `naturelm eval` can score: returns up to k candidates per input, best first."""

    name: str

    def supports(self, task: str) -> bool: ...

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]: ...
