"""A Task = name + prompt templates + test data + metric, and the registry `naturelm eval` reads.

Adding a task touches one file: a module in `naturelm/tasks/` with a `@register`-ed Task subclass
(every module of this package is imported on first registry use).

What a Predictor receives per task (`Task.query`): the bare input entity for the entity tasks
(retrosynthesis: product SMILES; forward: reactant SMILES; smiles_to_iupac: SMILES; iupac_to_smiles: name;
bbb_classification / bbb_optimization: SMILES), the test record's instruction for the other conditional
tasks, and the bare opening tag (`<mol>`) for unconditional generation, one input per wanted sample.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path

from naturelm.errors import ConfigError, DataSourceMissing, TagError
from naturelm.tasks.baselines.base import Candidate

_NOT_TASK_MODULES = {"base", "metrics", "oracles", "baselines", "requests"}
# Display order of `all` (the architecture's task table); tasks not listed follow in registration order.
ORDER = ("retrosynthesis", "retrosynthesis_rag", "forward", "smiles_to_iupac", "iupac_to_smiles", "molecule_generation",
         "property_to_molecule", "property_optimization", "bbb_classification", "bbb_optimization", "protein_generation",
         "text_to_protein", "rna_generation", "material_generation", "composition_to_material", "property_to_material",
         "guide_rna")


@dataclass
class Example:
    """One test case: what the predictor gets (`query`), the instruction, and the gold facts (`meta`)."""

    query: str
    instruction: str = ""
    meta: dict = field(default_factory=dict)
    response: str = ""


def entity_of(text: str | None) -> str | None:
    """The answer inside a candidate: the first tagged entity when tags are present, else the stripped text.

    Broken tags give None (an invalid answer); whitespace is removed except for materials.
    """
    if not text or not text.strip():
        return None
    if "<" not in text:
        return text.strip()
    from naturelm.language import find_entities

    try:
        spans = find_entities(text)
    except TagError:
        return None
    if not spans:
        return text.strip() or None
    return spans[0].text or None


def texts(preds: list[list[Candidate]]) -> list[list[str | None]]:
    """Candidate lists -> entity strings (None where a candidate carries no answer)."""
    return [[entity_of(c.text) for c in cands] for cands in preds]


def first_entities(preds: list[list[Candidate]]) -> list[str | None]:
    """The entity of each input's first candidate (None where there is no candidate or no answer)."""
    return [entity_of(cands[0].text) if cands else None for cands in preds]


class Context:
    """What metrics need besides predictions: the built data dir (training references) and the oracles."""

    def __init__(self, data_dir: str | Path | None = None, progress: bool = True):
        self.data_dir = Path(data_dir) if data_dir else None
        self.progress = progress
        self._train: dict[tuple[str, ...], list[str]] = {}
        self._oracles: dict = {}
        self._card: dict | None = None
        self._card_read = False
        self._train_mols: set[str] | None = None

    def train_responses(self, tasks: tuple[str, ...]) -> list[str] | None:
        """Responses of the training records of these tasks (None when no built data dir is known); read once."""
        if self.data_dir is None:
            return None
        path = self.data_dir / "instructions" / "train.jsonl"
        if not path.is_file():
            return None
        if tasks not in self._train:
            wanted = set(tasks)
            with path.open() as f:
                self._train[tasks] = [rec.get("response", "") for rec in map(json.loads, f) if rec.get("task") in wanted]
        return self._train[tasks]

    def training_molecules(self) -> set[str] | None:
        """Canonical SMILES of every molecule the model trained on (None when no data dir); read once.

        The build's `train_molecules.txt` (training instruction records and pre-training documents); for builds
        without it, every molecule of every record of instructions/train.jsonl (instruction, response, meta).
        """
        if self.data_dir is None:
            return None
        if self._train_mols is None:
            listed = self.data_dir / "train_molecules.txt"
            path = self.data_dir / "instructions" / "train.jsonl"
            if listed.is_file():
                self._train_mols = {line.strip() for line in listed.open() if line.strip()}
            elif path.is_file():
                from naturelm.data.splits import record_molecules

                with path.open() as f:
                    self._train_mols = set().union(*(record_molecules(json.loads(line)) for line in f))
            else:
                return None
        return self._train_mols

    def data_card(self) -> dict | None:
        """The built data dir's card.json (None when no data dir or no card); read once."""
        if self.data_dir is None:
            return None
        if not self._card_read:
            path = self.data_dir / "card.json"
            self._card = json.loads(path.read_text()) if path.is_file() else None
            self._card_read = True
        return self._card

    def oracle(self, name: str):
        """A trained (cached) oracle classifier by name: `bbb` or `soluble`."""
        if name not in self._oracles:
            from naturelm.tasks.oracles import get_oracle

            self._oracles[name] = get_oracle(name, progress=self.progress)
        return self._oracles[name]

    def cached(self, name: str, make):
        """An oracle built by `make()` once per run under `name` (listed by `oracles_used`)."""
        if name not in self._oracles:
            self._oracles[name] = make()
        return self._oracles[name]

    def oracles_used(self) -> dict:
        """The oracles loaded so far, by name."""
        return dict(self._oracles)


class Task:
    """Base task. Subclasses set the class attributes and implement `score`."""

    name: str = ""
    domain: str = "molecule"  # domain of the answers
    kind: str = "ranked"  # ranked (top-k) | sample (several samples per input) | classify | unconditional
    ks: tuple[int, ...] = (1,)  # top-k cut-offs of ranked tasks
    samples: int = 1  # candidates asked per input for `sample` tasks
    default_n: int = 1000  # samples of an unconditional task when no limit is given
    open_tag: str = ""  # prompt of an unconditional task
    fallback_templates: tuple[str, ...] = ()  # used until naturelm.data.instructions.TEMPLATES exists
    headline: tuple[str, ...] = ()  # metrics plotted side by side

    @property
    def templates(self) -> list[str]:
        """The instruction phrasings of this task (shared with the data builder)."""
        try:
            from naturelm.data.instructions import TEMPLATES
        except ImportError:
            return list(self.fallback_templates)
        return list(TEMPLATES.get(self.name, self.fallback_templates))

    def n_candidates(self, k: int) -> int:
        """How many candidates to ask per input, given the run's --k."""
        if self.kind == "ranked":
            return min(k, max(self.ks))
        if self.kind == "sample":
            return self.samples
        return 1

    def query(self, record: dict) -> str:
        """What a Predictor receives for one test record (default: the instruction)."""
        return record["instruction"]

    def examples(self, data_dir: str | Path | None, limit: int | None = None) -> list[Example]:
        """Test examples: the first `limit` test records of this task (unconditional: `limit` bare prompts)."""
        if self.kind == "unconditional":
            n = limit or self.default_n
            return [Example(query=self.open_tag, instruction=self.open_tag) for _ in range(n)]
        if data_dir is None:
            raise ConfigError(f"task {self.name!r} needs test records: pass --data DIR (a `naturelm data build` output)")
        path = Path(data_dir) / "instructions" / "test.jsonl"
        if not path.is_file():
            raise DataSourceMissing(str(path), "build the data first: `naturelm data build --out DIR`, then pass --data DIR")
        out = []
        with path.open() as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("task") != self.name:
                    continue
                out.append(Example(self.query(rec), rec.get("instruction", ""), rec.get("meta", {}), rec.get("response", "")))
                if limit and len(out) >= limit:
                    break
        return out

    def score(self, examples: list[Example], preds: list[list[Candidate]], ctx: Context) -> dict:
        raise NotImplementedError


REGISTRY: dict[str, Task] = {}
_loaded = False


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: make a task available to `naturelm eval` under `cls.name`."""
    if not cls.name:
        raise ConfigError(f"{cls.__name__} has no name")
    if cls.name in REGISTRY and type(REGISTRY[cls.name]) is not cls:
        raise ConfigError(f"task {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls()
    return cls


def _load_all() -> None:
    global _loaded
    if _loaded:
        return
    import naturelm.tasks as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name not in _NOT_TASK_MODULES:
            importlib.import_module(f"naturelm.tasks.{mod.name}")
    _loaded = True


def get_task(name: str) -> Task:
    """A registered task by name."""
    _load_all()
    if name not in REGISTRY:
        raise ConfigError(f"unknown task {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def task_names() -> list[str]:
    """Every registered task, in display order."""
    _load_all()
    return sorted(REGISTRY, key=lambda n: ORDER.index(n) if n in ORDER else len(ORDER))
