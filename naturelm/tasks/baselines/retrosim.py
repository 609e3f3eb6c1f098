"""RetroSim (Coley et al., ACS Cent. Sci. 2017), reaction class unknown: retrosynthesis by analogy.

For a target product: find the most similar training products (Morgan r2 Tanimoto), apply each neighbour's
retro template with rdchiral, and score every precursor set by
sim(product, neighbour product) x sim(precursors, neighbour reactants), keeping the maximum over neighbours.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import os
from pathlib import Path

from naturelm.data.retrieval import FingerprintIndex
from naturelm.errors import ConfigError, DataSourceMissing
from naturelm.language.codecs import try_canonical
from naturelm.tasks.baselines.base import Candidate
from naturelm.tasks.baselines.template_analogy import propose_by_analogy

TASK = "retrosynthesis"
# the indexes RetroSim can hold -> their name (cache folder, `naturelm eval --model` baseline name)
INDEXES = {"standard": "retrosim", "leak-free": "retrosim-leakfree"}
SAVED_DIR = "retrosim"  # where a saved index sits: next to a checkpoint, or in a data build (DIR/retrosim)
FIND_HINT = ("pass retrosim= a fitted naturelm.tasks.baselines.retrosim.RetroSim or a directory written by "
             "RetroSim.save, save one as CHECKPOINT/retrosim, or make USPTO-50k available (../shared/data/uspto50k "
             "or $NATURELM_USPTO50K) so one is fitted on its training split and cached")


class RetroSim:
    """Template-by-analogy retrosynthesis baseline; `fit` on training reactions, then `predict` reactant sets."""

    name = "retrosim"

    def __init__(self, n_neighbours: int = 100, processes: int = 2, progress: bool = True, index: str = "standard"):
        self.n_neighbours, self.processes, self.progress = n_neighbours, processes, progress
        self.index = index  # which training reactions it holds: "standard" (the split's) or "leak-free" (INDEXES)
        self.products = FingerprintIndex()
        self.reactants = FingerprintIndex()
        self.templates: list[str] = []
        self.ids: list[str] = []
        self.skipped = 0
        self._rxn_cache: dict = {}

    def supports(self, task: str) -> bool:
        return task == TASK

    # --- fitting --------------------------------------------------------------------------------------------

    def fit(self, records) -> "RetroSim":
        """Index training reactions (objects with id, product, reactants, template); those without a template are skipped."""
        records = list(records)
        rows = [r for r in records if r.template]
        self.skipped = len(records) - len(rows)
        keys = [str(i) for i in range(len(rows))]
        self.products.build(keys, [r.product for r in rows])
        self.reactants.build(keys, [r.reactants for r in rows])
        self.templates = [r.template for r in rows]
        self.ids = [str(r.id) for r in rows]
        self._rxn_cache = {}
        return self

    def __len__(self) -> int:
        return len(self.templates)

    # --- prediction -----------------------------------------------------------------------------------------

    def propose(self, product: str, k: int = 10) -> list[Candidate]:
        """Up to k distinct canonical reactant sets for one product, best first; [] for an invalid product."""
        if not self.templates:
            raise ConfigError("RetroSim has no training reactions: call fit(records) or RetroSim.load(dir)")
        prod = try_canonical(product) if product else None
        if prod is None:
            return []
        neighbours = [(int(key), sim) for key, sim in self.products.query(prod, k=self.n_neighbours)]
        return propose_by_analogy(prod, neighbours, self.templates, self.reactants.fps, self.ids, self._rxn_cache,
                                  _reactant_set, self.name, k)

    def predict(self, task: str, inputs: list[str], k: int) -> list[list[Candidate]]:
        """Candidates for each product in `inputs`, over `processes` worker processes with a progress bar."""
        from tqdm.auto import tqdm

        if not self.supports(task):
            raise ConfigError(f"{self.name} supports only {TASK!r}, not {task!r}")
        return list(tqdm(self.iter_predict(inputs, k), total=len(inputs), desc=self.name, disable=not self.progress))

    def iter_predict(self, inputs, k: int):
        """Yield each input's candidates in input order as they finish (what resumable callers consume)."""
        inputs = list(inputs)
        if self.processes <= 1 or len(inputs) < 2 * self.processes:
            yield from (self.propose(p, k) for p in inputs)
            return
        with mp.get_context().Pool(self.processes, initializer=_init_worker, initargs=(self,)) as pool:
            yield from pool.imap(_worker_propose, [(p, k) for p in inputs], chunksize=4)

    # --- persistence ----------------------------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write products.{npz,json}, reactants.{npz,json} and retrosim.json (templates, ids, settings)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.products.save(d / "products")
        self.reactants.save(d / "reactants")
        (d / "retrosim.json").write_text(json.dumps({"n_neighbours": self.n_neighbours, "templates": self.templates,
                                                     "ids": self.ids, "skipped": self.skipped, "index": self.index}))

    @classmethod
    def load(cls, directory: str | Path, processes: int = 2, progress: bool = True) -> "RetroSim":
        """Read a model written by `save`."""
        d = Path(directory)
        info = json.loads((d / "retrosim.json").read_text())
        model = cls(info["n_neighbours"], processes, progress, index=info.get("index", "standard"))
        model.products = FingerprintIndex.load(d / "products")
        model.reactants = FingerprintIndex.load(d / "reactants")
        model.templates, model.ids, model.skipped = info["templates"], info["ids"], info["skipped"]
        return model

    @classmethod
    def from_saved(cls, directory: str | os.PathLike, **kw) -> "RetroSim":
        """`load`, with DataSourceMissing (saying what to pass) when `directory` holds no saved model."""
        if not is_saved(directory):
            raise DataSourceMissing(f"a saved RetroSim (retrosim.json) in {directory}", FIND_HINT)
        return cls.load(directory, **kw)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_rxn_cache"] = {}  # prepared rdchiral templates stay per process
        return state


def is_saved(directory: str | os.PathLike) -> bool:
    """Whether `directory` holds a model written by `RetroSim.save`."""
    return (Path(directory) / "retrosim.json").is_file()


def saved_near(checkpoint: str | os.PathLike | None) -> Path | None:
    """A saved RetroSim for a checkpoint: CHECKPOINT/retrosim, else DIR/retrosim of the data build it was trained on
    (a data_build/* folder, under the repository or the working directory, whose card.json equals the
    checkpoint's data_card.json); None when there is neither."""
    if checkpoint is None:
        return None
    ckpt = Path(checkpoint)
    if is_saved(ckpt / SAVED_DIR):
        return ckpt / SAVED_DIR
    card = ckpt / "data_card.json"
    if not card.is_file():
        return None
    text = card.read_bytes()
    for root in dict.fromkeys((Path(__file__).resolve().parents[3] / "data_build", Path.cwd() / "data_build")):
        for build in sorted(root.glob("*/")) if root.is_dir() else []:
            build_card = build / "card.json"
            if is_saved(build / SAVED_DIR) and build_card.is_file() and build_card.read_bytes() == text:
                return build / SAVED_DIR
    return None


def find_retrosim(checkpoint: str | os.PathLike | None = None, progress: bool = False,
                  index: str = "standard") -> RetroSim:
    """A fitted RetroSim (one process): for the standard index, one saved near the checkpoint (`saved_near`);
    else `cached_retrosim(index)` (fitted on USPTO-50k once, then loaded from the cache).
    Raises DataSourceMissing saying what to pass when there is no saved model and no USPTO-50k."""
    from naturelm.data.sources.uspto50k import resolve_path

    saved = saved_near(checkpoint) if index == "standard" else None
    if saved is not None:
        return RetroSim.load(saved, processes=1, progress=False)
    try:
        root = resolve_path()
    except DataSourceMissing:
        raise DataSourceMissing("a RetroSim model (none saved, no USPTO-50k to fit one)", FIND_HINT) from None
    return cached_retrosim(index, root, processes=1, progress=progress)


def cached_retrosim(index: str = "standard", path: str | os.PathLike | None = None, processes: int = 2,
                    progress: bool = False, folder: Path | None = None) -> RetroSim:
    """RetroSim on USPTO-50k (`path`, default `resolve_path()`): `index` "standard" holds the training split,
    "leak-free" the training reactions whose product is no test product by connectivity
    (`naturelm.data.splits.leak_free_index`). Fitted on first use, then loaded from the template-index cache
    (`naturelm.tasks.baselines.index_cache`, `folder` its root), which is refitted when USPTO-50k, the settings
    or the cache's files changed."""
    from naturelm.data.sources.uspto50k import load_uspto50k, resolve_path
    from naturelm.tasks.baselines.index_cache import cached_index

    if index not in INDEXES:
        raise ConfigError(f"RetroSim index {index!r} is not one of {', '.join(INDEXES)}")
    root = resolve_path(path)
    n_neighbours = RetroSim().n_neighbours

    def fit() -> RetroSim:
        if index == "standard":
            train = load_uspto50k(root, split="train", progress=progress).records
        else:
            from naturelm.data.splits import leak_free_index

            data = load_uspto50k(root, progress=progress)
            train = leak_free_index(data.split("train"), data.split("test"))
        return RetroSim(n_neighbours, processes, progress, index=index).fit(train)

    return cached_index(INDEXES[index], root, {"n_neighbours": n_neighbours, "index": index}, fit,
                        lambda model, d: model.save(d), lambda d: RetroSim.load(d, processes, progress), folder)


_WORKER: RetroSim | None = None


def _init_worker(model: RetroSim) -> None:
    global _WORKER
    _WORKER = model


def _worker_propose(args: tuple[str, int]) -> list[Candidate]:
    product, k = args
    return _WORKER.propose(product, k)


def _reactant_set(smiles: str) -> str | None:
    """A retro outcome counts as one canonical reactant set."""
    return try_canonical(smiles, reactant_set=True)
