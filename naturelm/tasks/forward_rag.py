"""Retrieval-augmented forward prediction (issue 8): the test reactions and metric of `forward`."""
from __future__ import annotations

from naturelm.tasks.base import register
from naturelm.tasks.forward import Forward


@register
class ForwardRAG(Forward):
    """Top-k exact match of the canonical product; the model builds the retrieval prompt itself from the reactant set
    (`NatureLM.forward_rag`: the nearest training reactions by reactant-set fingerprint)."""

    name = "forward_rag"
    fallback_templates = ("{neighbours}\nWhat can be produced when these reactants combine? {reactants}",)
