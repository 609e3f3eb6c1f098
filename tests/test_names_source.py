"""Name <-> SMILES pairs from robocrys and chemicals: case restoration, OPSIN filter, cache, resume."""
import importlib.util

import pytest

from naturelm.data.sources import names
from naturelm.errors import DataSourceMissing
from naturelm.tools import opsin
from naturelm.tools.opsin import names_match


@pytest.mark.parametrize(
    "lower, fixed",
    [
        ("n,n-dimethyl-1h-indol-3-amine", "N,N-dimethyl-1H-indol-3-amine"),
        ("(2r,3s)-2-azanyl-3-oxidanyl-butanoic acid", "(2R,3S)-2-azanyl-3-oxidanyl-butanoic acid"),
        ("(e)-but-2-enal", "(E)-but-2-enal"),
        ("quinolin-2(1h)-one", "quinolin-2(1H)-one"),
        ("(4ar,8as)-4a,8a-dimethyl-4ah-naphthalene", "(4aR,8aS)-4a,8a-dimethyl-4aH-naphthalene"),
        ("o-ethyl s-methyl phosphorothioate", "O-ethyl S-methyl phosphorothioate"),
        ("n1,n3-dimethylbenzene-1,3-diamine", "N1,N3-dimethylbenzene-1,3-diamine"),
        ("bis(2-chloroethyl)amine", "bis(2-chloroethyl)amine"),
        ("pentan-2-one", "pentan-2-one"),
    ],
)
def test_restore_case(lower, fixed):
    assert names.restore_case(lower) == fixed


def test_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataSourceMissing, match="pip install --no-deps chemicals==1.5.2"):
        names.source_path("chemicals")


def _small(source, n):
    raw = names._RAW[source]()
    return lambda: raw[:n]


def test_verified_pairs_cache_and_resume(tmp_path, monkeypatch):
    for source in names.SOURCES:
        monkeypatch.setitem(names._RAW, source, _small(source, 150))
    got = names.load_names(cache_dir=tmp_path, progress=False)
    for source in names.SOURCES:
        rep = got.report[source]
        rejected = sum(v for k, v in rep.items() if k not in ("read", "kept"))
        assert rep["read"] == 150 and rep["kept"] + rejected == 150
        assert rep["kept"] > 50, rep  # most single-component records survive the round trip
    assert all("." not in p.smiles for p in got.pairs)
    assert len({(p.inchikey, p.name) for p in got.pairs}) == len(got.pairs)
    assert all(names_match([p.name for p in got.pairs], [p.smiles for p in got.pairs]))  # oracle

    def no_jvm(*args, **kwargs):
        raise AssertionError("OPSIN was called again")

    opsin._CACHE.clear()
    monkeypatch.setattr(opsin, "names_to_smiles", no_jvm)
    assert names.load_names(cache_dir=tmp_path, progress=False).pairs == got.pairs  # final cache
    drop = {got.pairs[0].inchikey}
    kept = names.load_names(cache_dir=tmp_path, progress=False, exclude_inchikeys=drop).pairs
    assert kept and drop.isdisjoint(p.inchikey for p in kept)
    assert names.load_names(cache_dir=tmp_path, limit=100, progress=False).report["robocrys"]["read"] == 100  # parse cache


def test_wrong_names_are_rejected(tmp_path, monkeypatch):
    raw = [("CCO", "ethanol"), ("CCO", "methanol"), ("CCO.O", "ethanol hydrate"), ("C(", "x"), ("CC", "")]
    monkeypatch.setitem(names._RAW, "robocrys", lambda: raw)
    got = names.load_names(("robocrys",), cache_dir=tmp_path, progress=False)
    assert [p.name for p in got.pairs] == ["ethanol"]
    rep = got.report["robocrys"]
    assert (rep["inchikey_mismatch"], rep["multi_component"], rep["invalid_smiles"], rep["no_name"]) == (1, 1, 1, 1)
