"""Rule-based naming tools as Predictors, so `naturelm eval` scores them beside a checkpoint.

- `nispo`, `openclatura`: smiles_to_iupac, one name per molecule (top-k = top-1).
- `rules`: both namers, OPSIN-verified names first (what `method="rules"` of the API returns).
- `opsin`: iupac_to_smiles, OPSIN's exact parse (no answer when it cannot parse).

Inputs are bare entity strings; a single wrapping tag (`<mol>CCO</mol>`) is stripped. Each candidate's
`verified` says whether OPSIN maps the name back to the *input* molecule (no gold is used).
"""
from __future__ import annotations

import re

from naturelm.tasks.baselines.base import Candidate
from naturelm.tools.namers import NAMERS

_WRAPPED = re.compile(r"^\s*<([A-Za-z_]\w*)>(.*)</\1>\s*$", re.S)


def _bare(text: str) -> str:
    m = _WRAPPED.match(text)
    return (m.group(2) if m else text).strip()


def _name_all(namer: str, smiles: list[str]) -> list[str | None]:
    from naturelm.tools.namers import name_with

    if len(smiles) <= 50:
        return name_with(namer, smiles)
    from tqdm import tqdm

    return [name_with(namer, [s])[0] for s in tqdm(smiles, desc=namer, unit="mol")]


class NamerPredictor:
    """SMILES -> IUPAC with one or more rule-based namers, verified names first."""

    def __init__(self, namers: tuple[str, ...], name: str | None = None):
        self.namers = tuple(namers)
        self.name = name or "+".join(self.namers)

    def supports(self, task: str) -> bool:
        return task == "smiles_to_iupac"

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        from naturelm.tools.opsin import names_match

        if not self.supports(task):
            raise ValueError(f"{self.name} does not support task {task!r}")
        smiles = [_bare(s) for s in inputs]
        named = {n: _name_all(n, smiles) for n in self.namers}
        flat = [(i, n, named[n][i]) for i in range(len(smiles)) for n in self.namers if named[n][i]]
        ok = names_match([name for _, _, name in flat], [smiles[i] for i, _, _ in flat])  # one JVM start
        out: list[list[Candidate]] = [[] for _ in smiles]
        for (i, namer, name), verified in zip(flat, ok):
            if all(c.text != name for c in out[i]):
                out[i].append(Candidate(name, score=float(verified), source=namer, verified=verified))
        return [sorted(c, key=lambda c: not c.verified)[:k] for c in out]


class OpsinPredictor:
    """IUPAC -> SMILES with OPSIN; the answer is canonical RDKit SMILES."""

    name = "opsin"

    def supports(self, task: str) -> bool:
        return task == "iupac_to_smiles"

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        from naturelm.tools.opsin import names_to_smiles

        if not self.supports(task):
            raise ValueError(f"opsin does not support task {task!r}")
        parsed = names_to_smiles([_bare(s) for s in inputs], progress=True)
        return [[Candidate(s, score=1.0, source="opsin", verified=True)][:k] if s else [] for s in parsed]


PREDICTORS = {
    "nispo": lambda: NamerPredictor(("nispo",), "nispo"),
    "openclatura": lambda: NamerPredictor(("openclatura",), "openclatura"),
    "rules": lambda: NamerPredictor(NAMERS, "rules"),
    "opsin": OpsinPredictor,
}


def get_predictor(name: str):
    """A naming baseline by name: nispo, openclatura, rules or opsin."""
    if name not in PREDICTORS:
        raise ValueError(f"unknown naming baseline {name!r}; choose from {sorted(PREDICTORS)}")
    return PREDICTORS[name]()
