"""Charge-balanced compositions of requested elements, enumerated with SMACT: the composition tool.

For a set of requested elements (a `composition_to_material` instruction, or `NatureLM.design_material(elements=)`)
every formula unit with each element at least once and at most `max_coefficient` times (8), at most `max_atoms`
atoms, whose counts are coprime (one formula per composition: `NaCl`, not `Na2Cl2`), and that is SMACT-valid as
`naturelm.tasks.requests.ElementsRequest` asks it: SMACT's ICSD-24 oxidation states and Pauling test
(`naturelm.language.codecs.material.smact_charge_states`), with the alloy shortcut only when every requested element
is a metal. Each candidate is written by the material codec (`formula_to_material`: atoms in the training data's
element order, then `<sgNone>`), e.g. `Li Fe P O O O O <sgNone>` for LiFePO4.

Tool score in (0, 1], a simple prior for small formula units of common oxidation states: (n_elements / atoms) x
the geometric mean over the elements of the share of ICSD-24 reports of that element in its assigned oxidation
state (`icsd24_state_shares`), for the best charge-neutral assignment (alloys and single elements: 1). NaCl
(Na+1 Cl-1): 1 x (1.0 x 0.94)^(1/2) ~ 0.97; LiFePO4 (Li+1 Fe+2 P+5 O-2): 4/7 x ~0.74 ~ 0.42, first of
Li/Fe/P/O; LiFePO (4 atoms, SMACT-valid only as Fe+1 Li+1 O-1 P-1 or with P-3) scores lower. Candidates come best first, ties in the codec's text order, so the
output is deterministic. `NatureLM.design_material(method="ranked")` orders them
by the model's mean log-probability + a weight x this score (`naturelm.tasks.ranking`), as forward templates and
RetroSim are ranked.
"""
from __future__ import annotations

import heapq
import math

from naturelm.errors import ConfigError
from naturelm.tasks.baselines.base import Candidate

TASK = "composition_to_material"
MAX_COEFFICIENT = 8  # most atoms of one element per formula unit
RANKED_CANDIDATES = 30  # compositions the model ranks per request (design_material(method="ranked"), eval --rank)
MAX_ENUMERATED = 200_000  # count vectors looked at per request at most (reached only for many elements)


def _counts(n: int, total: int, most: int):
    """Tuples of n integers in [1, most] summing to `total`, in lexicographic order."""
    if n == 1:
        if 1 <= total <= most:
            yield (total,)
        return
    for first in range(1, min(most, total - (n - 1)) + 1):
        for rest in _counts(n - 1, total - first, most):
            yield (first,) + rest


def _signed(state: int) -> str:
    return f"{'+' if state > 0 else ''}{state}"


class SmactCompositions:
    """The composition tool: `propose(elements, k)` for one request, `predict` on `composition_to_material`
    instructions (the Predictor protocol of `naturelm eval`)."""

    name = "smact"

    def __init__(self, max_atoms: int | None = None, max_coefficient: int = MAX_COEFFICIENT):
        from naturelm.language.codecs.material import MAX_ATOMS

        self.max_atoms = MAX_ATOMS if max_atoms is None else int(max_atoms)
        self.max_coefficient = int(max_coefficient)
        if self.max_atoms < 1 or self.max_coefficient < 1:
            raise ConfigError(f"SmactCompositions: max_atoms ({max_atoms}) and max_coefficient ({max_coefficient}) "
                              "must be at least 1")

    def supports(self, task: str) -> bool:
        return task == TASK

    def propose(self, elements, k: int = 10) -> list[Candidate]:
        """Up to k compositions of exactly `elements`, best tool score first (ties: the codec's text order); [] when
        none is SMACT-valid within the bounds. ConfigError for a symbol that is no element."""
        import numpy as np

        from naturelm.language.codecs.material import (formula_to_material, icsd24_state_shares, material_to_formula,
                                                       smact_charge_states)
        from naturelm.tasks.requests import all_metals, element_symbols

        els = element_symbols(elements)
        n = len(els)
        alloy = all_metals(els)
        states = smact_charge_states(els, alloy)
        if states == () or k < 1:
            return []
        if states is None:  # one element, or the alloy shortcut: every composition is valid, no states to weigh
            table, common = np.zeros((1, n), np.int64), np.ones(1)
        else:
            shares = icsd24_state_shares()
            table = np.array(states, np.int64).reshape(-1, n)
            common = np.array([math.prod(shares.get(e, {}).get(int(x), 0.0) for e, x in zip(els, o)) ** (1 / n)
                               for o in table])  # geometric mean of each assignment's state shares
        scored: list[tuple[float, str, int, int]] = []  # (-score, codec text, atoms, assignment)
        looked = 0
        for total in range(n, min(self.max_atoms, n * self.max_coefficient) + 1):
            if len(scored) >= k and n / total < -heapq.nsmallest(k, scored)[-1][0]:
                break  # the score is at most n / atoms: no larger composition can enter the top k
            level = [c for c in _counts(n, total, self.max_coefficient) if math.gcd(*c) == 1]
            looked += len(level)
            if level:
                neutral = (np.array(level, np.int64) @ table.T) == 0  # (compositions, assignments)
                best = np.where(neutral, common, -1.0)
                for c, row in zip(level, best):
                    j = int(row.argmax())
                    if row[j] >= 0:
                        formula = "".join(e + (str(x) if x > 1 else "") for e, x in zip(els, c))
                        scored.append((-(n / total) * float(row[j]), formula_to_material(formula), total, j))
            if looked >= MAX_ENUMERATED:
                break
        out = []
        for neg, text, total, j in heapq.nsmallest(k, scored):
            ox = ("alloy shortcut" if states is None and n > 1 else "one element" if states is None
                  else " ".join(f"{e}{_signed(int(x))}" for e, x in zip(els, table[j])))
            out.append(Candidate(text, -neg, self.name, True, {"formula": material_to_formula(text)[0], "atoms": total,
                                                                "oxidation_states": ox}))
        return out

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        """Candidates for each `composition_to_material` instruction (its elements as `request_for` reads them;
        [] for an instruction that names none)."""
        from naturelm.tasks.requests import prompt_elements

        if not self.supports(task):
            raise ConfigError(f"{self.name} supports only {TASK!r}, not {task!r}")
        out = []
        for prompt in inputs:
            els = prompt_elements(prompt)
            out.append(self.propose(els, k) if els else [])
        return out
