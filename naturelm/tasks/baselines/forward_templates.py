"""Forward prediction by analogy with training reactions: their rdchiral templates applied forward.

RetroSim's scheme turned around (Coley et al., ACS Cent. Sci. 2017): for a reactant set, find the training
reactions with the most similar reactant sets (Morgan r2 Tanimoto), apply each one's template extracted from its
atom-mapped reaction (`Reaction.template`, product>>reactants) in the forward direction with rdchiral, and score
every product by sim(reactants, neighbour reactants) x sim(product, neighbour product), the maximum over neighbours.
That score in [0, 1] is the template prior `NatureLM.forward(method="ranked")` adds to the model's log-probability.
"""
from __future__ import annotations

import json

from naturelm.data.retrieval import FingerprintIndex
from naturelm.errors import ConfigError
from naturelm.language.codecs import try_canonical
from naturelm.tasks.baselines.base import Candidate
from naturelm.tasks.baselines.template_analogy import propose_by_analogy

TASK = "forward"


def forward_template(retro_template: str) -> str:
    """`product>>reactants` (rdchiral's extraction) -> `(reactants)>>product`: one grouped reactant template, so
    rdchiral applies it to a dotted reactant set as one molecule."""
    product, reactants = retro_template.split(">>")
    return f"({reactants})>>{product}"


class ForwardTemplates:
    """Template-by-analogy forward prediction; `fit` on training reactions, then `predict` products."""

    name = "templates"

    def __init__(self, n_neighbours: int = 50, progress: bool = False):
        self.n_neighbours, self.progress = n_neighbours, progress
        self.templates: list[str] = []
        self.ids: list[str] = []
        self._rxn_cache: dict = {}

    def supports(self, task: str) -> bool:
        return task == TASK

    def fit(self, records) -> "ForwardTemplates":
        """Index training reactions (objects with id, product, reactants, template); those without one are skipped."""
        rows = [r for r in records if r.template]
        if not rows:
            raise ConfigError("ForwardTemplates.fit: no training reaction carries a template")
        self.templates = [forward_template(r.template) for r in rows]
        self.ids = [str(r.id) for r in rows]
        self.reactant_sets = [r.reactants for r in rows]
        self.reactants = FingerprintIndex().build(range(len(rows)), self.reactant_sets)
        self.products = FingerprintIndex().build(range(len(rows)), [r.product for r in rows])
        return self

    @classmethod
    def from_uspto50k(cls, path=None, folder=None, **kw) -> "ForwardTemplates":
        """Fitted on the USPTO-50k TRAIN split (never valid/test) on first use, then loaded from the template-index
        cache (`naturelm.tasks.baselines.index_cache`; `folder` its root), refitted when USPTO-50k, the settings
        or the cached files changed."""
        from naturelm.data.sources.uspto50k import load_uspto50k, resolve_path
        from naturelm.tasks.baselines.index_cache import cached_index

        root = resolve_path(path)
        model = cls(**kw)
        return cached_index("forward_templates", root, {"n_neighbours": model.n_neighbours},
                            lambda: model.fit(load_uspto50k(root, split="train")),
                            lambda m, d: m.save(d), lambda d: cls.load(d, progress=model.progress), folder)

    def save(self, directory) -> None:
        """Write reactants.{npz,json}, products.{npz,json} and forward_templates.json (templates, ids)."""
        from pathlib import Path

        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.reactants.save(d / "reactants")
        self.products.save(d / "products")
        (d / "forward_templates.json").write_text(json.dumps({"n_neighbours": self.n_neighbours,
                                                              "templates": self.templates, "ids": self.ids}))

    @classmethod
    def load(cls, directory, progress: bool = False) -> "ForwardTemplates":
        """Read a model written by `save`."""
        from pathlib import Path

        d = Path(directory)
        info = json.loads((d / "forward_templates.json").read_text())
        model = cls(info["n_neighbours"], progress)
        model.templates, model.ids = list(info["templates"]), list(info["ids"])
        model.reactants = FingerprintIndex.load(d / "reactants")
        model.products = FingerprintIndex.load(d / "products")
        model.reactant_sets = list(model.reactants.smiles)
        if not (len(model.templates) == len(model.ids) == len(model.reactants) == len(model.products)):
            raise ConfigError(f"{d}: templates, ids and indices differ in length")
        return model

    def __len__(self) -> int:
        return len(self.templates)

    def propose(self, reactants: str, k: int = 10) -> list[Candidate]:
        """Up to k distinct canonical products for one reactant set, best first; [] for an invalid set."""
        if not self.templates:
            raise ConfigError("ForwardTemplates has no training reactions: call fit(records) or from_uspto50k()")
        query = try_canonical(reactants, reactant_set=True) if reactants else None
        if query is None:
            return []
        same = [str(i) for i, s in enumerate(self.reactant_sets) if s == query]
        neighbours = [(int(key), sim) for key, sim in self.reactants.query(query, k=self.n_neighbours,
                                                                             exclude_keys=same)]
        return propose_by_analogy(query, neighbours, self.templates, self.products.fps, self.ids, self._rxn_cache,
                                  _single_product, self.name, k)

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        """Candidates for each reactant set in `inputs`."""
        from tqdm.auto import tqdm

        if not self.supports(task):
            raise ConfigError(f"{self.name} supports only {TASK!r}, not {task!r}")
        return [self.propose(r, k) for r in tqdm(inputs, desc=self.name, disable=not self.progress)]


def _single_product(smiles: str) -> str | None:
    """A forward outcome counts as one canonical product (multi-fragment outcomes are dropped)."""
    cand = try_canonical(smiles)
    return cand if cand is not None and "." not in cand else None
