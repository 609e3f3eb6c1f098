"""Oracle classifiers: trained on real data, held-out AUROC measured, cached to disk."""
from __future__ import annotations

import os
import random

import pytest

from naturelm.errors import ConfigError
from naturelm.tasks import oracles


def _subset(loader, n, seed=0):
    def load():
        items, labels, path = loader()
        idx = random.Random(seed).sample(range(len(items)), n)
        return [items[i] for i in idx], [labels[i] for i in idx], path

    return load


def _small_forest(monkeypatch):
    """The bbb oracle with 20 trees instead of 200 (fitting and caching 200 trees dominates these tests' time)."""
    model = oracles._model
    monkeypatch.setattr(oracles, "_model", lambda name, seed: model(name, seed).set_params(
        **({"n_estimators": 20} if name == "bbb" else {})))


def test_oracle_trains_caches_and_reloads(tmp_path, monkeypatch):
    monkeypatch.setattr(oracles, "load_bbb", _subset(oracles.load_bbb, 400))
    _small_forest(monkeypatch)
    first = oracles.get_oracle("bbb", progress=False, cache=tmp_path)
    assert 0.6 < first.heldout_auroc <= 1.0 and first.n_train == 320 and first.n_test == 80
    cached = list(tmp_path.glob("bbb-v*.skops"))
    assert len(cached) == 1 and cached[0].with_name(cached[0].name + ".json").is_file()
    monkeypatch.setattr(oracles, "train_oracle", lambda *a, **k: pytest.fail("retrained instead of using the cache"))
    again = oracles.get_oracle("bbb", progress=False, cache=tmp_path)
    assert again.heldout_auroc == first.heldout_auroc
    probs = again.predict(["CCO", "not a smiles", None])
    assert 0.0 <= probs[0] <= 1.0 and probs[1] is None and probs[2] is None


class _RunsCodeWhenUnpickled:
    """Unpickling this writes the file `marker` (what a hostile pickle in a cache directory could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_oracle_cache_never_unpickles(tmp_path, monkeypatch):
    """A pickle planted in the cache (old joblib name, or under the current name) and a skops file holding an
    untrusted type: none is executed; the old name is ignored, the others refuse to load with ConfigError."""
    import hashlib
    import pickle

    import skops.io as sio

    monkeypatch.setattr(oracles, "load_bbb", _subset(oracles.load_bbb, 200))
    _small_forest(monkeypatch)
    digest = hashlib.sha256(oracles.load_bbb()[2].read_bytes()).hexdigest()[:16]
    marker = tmp_path / "code-ran"
    hostile = pickle.dumps(_RunsCodeWhenUnpickled(marker))
    with pytest.raises(FileNotFoundError):  # the payload does run when unpickled
        pickle.loads(pickle.dumps(_RunsCodeWhenUnpickled(tmp_path / "missing" / "x")))
    for old in range(1, oracles.VERSION):
        (tmp_path / f"bbb-v{old}-{digest}.joblib").write_bytes(hostile)
    oracle = oracles.get_oracle("bbb", progress=False, cache=tmp_path)  # old caches ignored: trains anew
    assert oracle.n_train == 160 and not marker.exists()
    target = tmp_path / f"bbb-v{oracles.VERSION}-{digest}.skops"
    assert target.is_file()
    target.write_bytes(hostile)
    with pytest.raises(ConfigError, match="oracle cache"):
        oracles.get_oracle("bbb", progress=False, cache=tmp_path)
    sio.dump({"call": os.system, "model": oracle.model}, target)
    with pytest.raises(ConfigError, match="untrusted types .*system"):
        oracles.get_oracle("bbb", progress=False, cache=tmp_path)
    assert not marker.exists()


def test_soluble_oracle_learns_from_a_subset():
    seqs, labels, _ = _subset(oracles.load_soluble, 2000)()
    oracle = oracles.train_oracle("soluble", seqs, labels)
    assert 0.55 < oracle.heldout_auroc <= 1.0
    assert oracle.predict(["", "MKV"])[0] is None


def test_features_and_errors():
    f = oracles.featurize("soluble", "ACDA")
    assert f.shape == (421,) and f[:20].sum() == pytest.approx(1.0) and f[20:420].sum() == pytest.approx(1.0)
    assert oracles.featurize("soluble", "") is None and oracles.featurize("bbb", "C1C") is None
    with pytest.raises(ConfigError, match="unknown oracle"):
        oracles.get_oracle("toxicity")


@pytest.mark.slow
def test_full_oracles_report_heldout_auroc(tmp_path):
    bbb = oracles.get_oracle("bbb", progress=False, cache=tmp_path)
    sol = oracles.get_oracle("soluble", progress=False, cache=tmp_path)
    print("oracle AUROC", bbb.card(), sol.card())
    assert bbb.heldout_auroc > 0.85 and sol.heldout_auroc > 0.6


def test_scaffold_split_keeps_each_scaffold_on_one_side():
    smiles = ["c1ccccc1C", "c1ccccc1CC", "c1ccccc1O", "c1ccccc1N",  # benzene scaffold (4)
              "C1CCCCC1C", "C1CCCCC1O",  # cyclohexane (2)
              "c1ccncc1C", "CCO", "CCN", "not a smiles"]  # pyridine (1), acyclic "" (2), unparsable (skipped)
    train, test = oracles.scaffold_split(smiles, test_fraction=0.2)
    # 9 parsable, train cap 7.2; largest first, ties by scaffold ("" < "C1CCCCC1"): benzene (4) -> 4, acyclic (2)
    # -> 6, cyclohexane (2) would make 8 > 7.2: test, pyridine (1) -> 7
    assert train == [0, 1, 2, 3, 6, 7, 8] and test == [4, 5]


def test_bbb_oracle_reports_a_scaffold_split_auroc():
    smiles, labels, _ = _subset(oracles.load_bbb, 400)()
    oracle = oracles.train_oracle("bbb", smiles, labels)
    card = oracle.card()
    assert 0.5 < card["heldout_auroc_scaffold"] <= 1.0 and card["n_test_scaffold"] >= 60
