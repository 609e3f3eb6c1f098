"""Oracle classifiers that judge generated entities, trained once on real data and cached to disk.

- `bbb`: B3DB classification (BBB+ / BBB-), RDKit Morgan fingerprints + descriptors -> random forest.
- `soluble`: aaanalysis SEQ_SOLUBLE (soluble / insoluble proteins), 1- and 2-mer composition + log length ->
  logistic regression.

Each oracle is trained on 80% of its data (seeded, stratified) and reports its AUROC on the held-out 20%. The
molecule oracle also reports the AUROC of a second fit under a Bemis-Murcko scaffold split (`scaffold_split`:
no scaffold on both sides), the harder and more honest estimate for molecules unlike its training set
(`info["heldout_auroc_scaffold"]`).

The cache never unpickles: a fitted model is stored with skops (`NAME-vN-DIGEST.skops`, loaded with an explicit
list of trusted types, `TRUSTED_TYPES`; any other type in the file refuses to load) and its card beside it as JSON.
Files of other versions (older caches were joblib pickles) are ignored, never read.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from naturelm.errors import ConfigError, DataSourceMissing

VERSION = 4  # 4: skops + JSON (3 and older were joblib pickles: never read)
# the types a cached model may contain beyond skops' default trusted set (scikit-learn estimators, numpy)
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
AMINO = "ACDEFGHIKLMNPQRSTVWY"
_DESCRIPTORS = ("MolWt", "MolLogP", "TPSA", "NumHDonors", "NumHAcceptors", "NumRotatableBonds", "RingCount",
                "NumAromaticRings", "FractionCSP3", "HeavyAtomCount")


@dataclass
class Oracle:
    """A fitted classifier with its held-out quality; `predict` gives P(positive) or None for invalid input."""

    name: str
    model: object
    heldout_auroc: float
    n_train: int
    n_test: int
    source: str
    info: dict = field(default_factory=dict)

    def predict(self, items: list[str | None]) -> list[float | None]:
        feats = [featurize(self.name, x) if x else None for x in items]
        rows = [f for f in feats if f is not None]
        probs = iter(self.model.predict_proba(rows)[:, 1].tolist() if rows else [])
        return [next(probs) if f is not None else None for f in feats]

    def card(self) -> dict:
        """What a report shows about this oracle."""
        return {"heldout_auroc": self.heldout_auroc, "n_train": self.n_train, "n_test": self.n_test,
                "source": self.source, **self.info}


def _package_file(package: str, rel: str, pip: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataSourceMissing(package, f"pip install {pip}")
    path = Path(list(spec.submodule_search_locations)[0]) / rel
    if not path.is_file():
        raise DataSourceMissing(str(path), f"reinstall: pip install --force-reinstall {pip}")
    return path


def _molecule_features(smiles: str):
    import numpy as np
    from rdkit import Chem, RDLogger
    from rdkit.Chem import Descriptors, rdFingerprintGenerator

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    fp = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048).GetFingerprintAsNumPy(mol)
    desc = [getattr(Descriptors, d)(mol) for d in _DESCRIPTORS]
    return np.concatenate([fp.astype(np.float32), np.asarray(desc, dtype=np.float32)])


def _protein_features(seq: str):
    import numpy as np

    seq = "".join(seq.split()).upper()
    index = {a: i for i, a in enumerate(AMINO)}
    ids = [index[c] for c in seq if c in index]
    if len(ids) < 2:
        return None
    mono = np.bincount(ids, minlength=20) / len(ids)
    pairs = np.bincount([a * 20 + b for a, b in zip(ids, ids[1:])], minlength=400) / (len(ids) - 1)
    return np.concatenate([mono, pairs, [np.log(len(ids))]]).astype(np.float32)


def featurize(name: str, item: str):
    """Feature vector of one molecule (`bbb`) or protein (`soluble`), None when invalid."""
    return {"bbb": _molecule_features, "soluble": _protein_features}[name](item)


def load_bbb() -> tuple[list[str], list[int], Path]:
    """B3DB classification set: (SMILES, label 1 = BBB+, path)."""
    import pandas as pd

    path = _package_file("B3DB", "B3DB_classification.tsv", "qc-b3db==1.1.1")
    df = pd.read_csv(path, sep="\t", usecols=["SMILES", "BBB+/BBB-"]).dropna()
    return df["SMILES"].tolist(), (df["BBB+/BBB-"] == "BBB+").astype(int).tolist(), path


def load_soluble() -> tuple[list[str], list[int], Path]:
    """aaanalysis SEQ_SOLUBLE: (sequence, label 1 = soluble, path)."""
    import pandas as pd

    path = _package_file("aaanalysis", "_data/benchmarks/SEQ_SOLUBLE.tsv", "aaanalysis==1.1.0")
    df = pd.read_csv(path, sep="\t", usecols=["sequence", "label"]).dropna()
    return df["sequence"].tolist(), df["label"].astype(int).tolist(), path


def scaffold_split(smiles: list[str], test_fraction: float = 0.2) -> tuple[list[int], list[int]]:
    """(train indices, test indices) with no Bemis-Murcko scaffold on both sides.

    Scaffold groups (RDKit MurckoScaffoldSmiles without chirality; acyclic molecules share the empty scaffold)
    are sorted largest first (ties by scaffold) and fill the training side while it stays within
    1 - `test_fraction` of the molecules; the remaining groups are the test side. Unparsable SMILES are skipped.
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem.Scaffolds import MurckoScaffold

    RDLogger.DisableLog("rdApp.*")
    groups: dict[str, list[int]] = {}
    for i, smi in enumerate(smiles):
        mol = Chem.MolFromSmiles(smi) if smi else None
        if mol is None:
            continue
        groups.setdefault(MurckoScaffold.MurckoScaffoldSmiles(mol=mol, includeChirality=False), []).append(i)
    n = sum(map(len, groups.values()))
    train_cap = (1.0 - test_fraction) * n
    train, test = [], []
    for _, idx in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        (train if len(train) + len(idx) <= train_cap else test).extend(idx)
    return sorted(train), sorted(test)


def _model(name: str, seed: int):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == "bbb":
        return RandomForestClassifier(n_estimators=200, class_weight="balanced", random_state=seed, n_jobs=1)
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))


def train_oracle(name: str, items: list[str], labels: list[int], source: str = "", seed: int = 0) -> Oracle:
    """Fit an oracle on 80% of (items, labels) and measure AUROC on the other 20%; for molecules also the AUROC of a
    fit under a scaffold split (`scaffold_split`), in `info`."""
    import numpy as np
    from sklearn.model_selection import train_test_split

    from naturelm.tasks.metrics import auroc

    pairs = [(x, f, y) for x, f, y in ((x, featurize(name, x), y) for x, y in zip(items, labels, strict=True))
             if f is not None]
    if len(pairs) < 20:
        raise ConfigError(f"oracle {name!r}: only {len(pairs)} valid training items")
    X = np.stack([f for _, f, _ in pairs])
    y = np.asarray([label for _, _, label in pairs])
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.2, random_state=seed, stratify=y)
    model = _model(name, seed)
    model.fit(Xtr, ytr)
    score = auroc(yte.tolist(), model.predict_proba(Xte)[:, 1].tolist())
    info = {}
    if name == "bbb":
        tr, te = scaffold_split([x for x, _, _ in pairs])
        scaffold_model = _model(name, seed).fit(X[tr], y[tr])
        info = {"heldout_auroc_scaffold": auroc(y[te].tolist(), scaffold_model.predict_proba(X[te])[:, 1].tolist()),
                "n_test_scaffold": len(te), "split_scaffold": "Bemis-Murcko scaffold split, largest scaffolds to train"}
    return Oracle(name, model, score, len(ytr), len(yte), source, info)


def cache_dir() -> Path:
    """`$NATURELM_CACHE/oracles`, else `~/.cache/naturelm/oracles`."""
    root = os.environ.get("NATURELM_CACHE") or Path.home() / ".cache" / "naturelm"
    return Path(root) / "oracles"


def save_oracle(oracle: Oracle, target: Path) -> None:
    """Write `oracle` as `target` (skops model) + `target`.json (its card), each atomically; the card last, so a
    card on disk means its model is complete."""
    import skops.io as sio

    target.parent.mkdir(parents=True, exist_ok=True)
    card = {"name": oracle.name, "heldout_auroc": oracle.heldout_auroc, "n_train": oracle.n_train,
            "n_test": oracle.n_test, "source": oracle.source, "info": oracle.info}
    for path, write in ((target, lambda p: sio.dump(oracle.model, p)),
                        (_card_path(target), lambda p: p.write_text(json.dumps(card, indent=1)))):
        tmp = path.with_name(path.name + ".tmp")
        write(tmp)
        tmp.replace(path)


def load_oracle(target: Path) -> Oracle:
    """Read an oracle written by `save_oracle`; a file holding a type outside skops' defaults and `TRUSTED_TYPES`
    raises ConfigError (nothing in it is executed)."""
    import skops.io as sio

    try:
        untrusted = sorted(set(sio.get_untrusted_types(file=target)) - set(TRUSTED_TYPES))
        card = json.loads(_card_path(target).read_text())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:  # not a skops zip (e.g. a planted pickle), bad JSON card
        raise ConfigError(f"oracle cache {target} is unreadable ({e}); delete it to retrain") from None
    if untrusted:
        raise ConfigError(f"oracle cache {target} holds untrusted types {untrusted}; delete it to retrain")
    model = sio.load(target, trusted=TRUSTED_TYPES)
    return Oracle(card["name"], model, card["heldout_auroc"], card["n_train"], card["n_test"], card["source"],
                  card["info"])


def _card_path(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def get_oracle(name: str, progress: bool = True, cache: Path | None = None) -> Oracle:
    """The `bbb` or `soluble` oracle: loaded from the cache, else trained on its real data set and cached."""
    loaders = {"bbb": load_bbb, "soluble": load_soluble}
    if name not in loaders:
        raise ConfigError(f"unknown oracle {name!r}; known: {sorted(loaders)}")
    items, labels, path = loaders[name]()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    target = (cache or cache_dir()) / f"{name}-v{VERSION}-{digest}.skops"
    if target.is_file() and _card_path(target).is_file():
        return load_oracle(target)
    if progress:
        print(f"training the {name} oracle on {len(items)} items from {path.name} (cached at {target})")
    oracle = train_oracle(name, items, labels, source=f"{path.name} sha256:{digest}")
    save_oracle(oracle, target)
    return oracle
