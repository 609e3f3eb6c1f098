"""Curated name <-> SMILES pairs shipped inside two PyPI packages, kept only when OPSIN agrees.

- robocrys==0.2.13: `robocrys/condense/molecule_db.json.gz`, `{smiles: {name_iupac, name_traditional}}`.
- chemicals==1.5.2: `chemicals/Identifiers/chemical identifiers pubchem large.tsv`
  (CID, CAS, formula, MW, SMILES, InChI, InChIKey, lower-cased IUPAC name, synonyms...);
  the lower-casing is undone where it matters to OPSIN (`n-`->`N-`, `1h`->`1H`, `(2r)`->`(2R)`, ...).

A pair is kept when the structure is a single component and OPSIN parses the name to the
structure's InChIKey. Every dropped record is counted by reason. OPSIN parses are appended to
`<cache>/opsin_parses.jsonl` chunk by chunk (an interrupted run resumes), and the finished
pair list is written to `<cache>/names_<source>.jsonl` so a second call only reads a file.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from naturelm.data.sources.common import cache_dir as _cache_dir
from naturelm.data.sources.common import package_file, read_json, read_jsonl, read_jsonl_records, read_rows
from naturelm.errors import DataFileError

SOURCES = ("robocrys", "chemicals")
CACHE_VERSION = 1
_PIP = {
    "robocrys": "pip install --no-deps robocrys==0.2.13",
    "chemicals": "pip install --no-deps chemicals==1.5.2",
}
_FILES = {
    "robocrys": ("robocrys", "condense/molecule_db.json.gz"),
    "chemicals": ("chemicals", "Identifiers/chemical identifiers pubchem large.tsv"),
}


@dataclass(frozen=True)
class NamePair:
    """One verified pair: canonical SMILES, its IUPAC name, the InChIKey both map to, and the source."""

    smiles: str
    name: str
    inchikey: str
    source: str


@dataclass
class NameSet:
    """Verified pairs plus per-source counts of what was read, kept and rejected (by reason)."""

    pairs: list[NamePair]
    report: dict[str, Counter] = field(default_factory=dict)

    def by_source(self, source: str) -> list[NamePair]:
        return [p for p in self.pairs if p.source == source]


def default_cache_dir() -> Path:
    """`$NATURELM_CACHE/names`, else `~/.cache/naturelm/names`."""
    return _cache_dir("names")


def source_path(source: str) -> Path:
    """Path of the data file inside its installed package (DataSourceMissing with the pip command if absent)."""
    if source not in _FILES:
        raise ValueError(f"unknown name source {source!r}; choose from {SOURCES}")
    return package_file(*_FILES[source], _PIP[source])


# --- capitals for PubChem's lower-cased names -------------------------------------------------

_HETERO_LOCANT = re.compile(r"(?<![a-zA-Z])([nosp])(?=(\d+)?'*[-,])")
_INDICATED_H = re.compile(r"(?<![a-zA-Z])(\d+[a-z]?'*)h(?![a-z])")
_STEREO_ITEM = re.compile(r"(\d+[a-z]?'*)?(rs|sr|r|s|e|z)(\*?)")
_PARENS = re.compile(r"\(([^()]*)\)")


def _stereo(match: re.Match) -> str:
    items = match.group(1).split(",")
    if not all(_STEREO_ITEM.fullmatch(item) for item in items):
        return match.group(0)
    fixed = []
    for item in items:
        m = _STEREO_ITEM.fullmatch(item)
        fixed.append((m.group(1) or "") + m.group(2).upper() + m.group(3))
    return "(" + ",".join(fixed) + ")"


def restore_case(name: str) -> str:
    """Undo PubChem-style lower-casing where OPSIN needs capitals: N-/O-/S-/P- locants, indicated
    hydrogen (1H, 4aH) and CIP/double-bond descriptors ((2R,3S), (E), (Z))."""
    name = _HETERO_LOCANT.sub(lambda m: m.group(1).upper(), name)
    name = _INDICATED_H.sub(lambda m: m.group(1) + "H", name)
    return _PARENS.sub(_stereo, name)


# --- raw records ------------------------------------------------------------------------------


def _raw_robocrys() -> list[tuple[str, str]]:
    """(SMILES, IUPAC name) of the robocrys molecule table; an entry that is not {SMILES: {"name_iupac": text}}
    gives an empty name (counted as `no_name`)."""
    path = source_path("robocrys")
    db = read_json(path)
    if not isinstance(db, dict):
        raise DataFileError(path, f"expected a JSON object of SMILES, got {type(db).__name__}")
    return [(smi, name.strip() if isinstance(rec, dict) and isinstance(name := rec.get("name_iupac"), str) else "")
            for smi, rec in db.items()]


def _raw_chemicals() -> list[tuple[str, str]]:
    rows = []
    for cols in read_rows(source_path("chemicals"), "\t", header=False, quoting=csv.QUOTE_NONE):
        if len(cols) >= 8:
            rows.append((cols[4].strip(), restore_case(cols[7].strip())))
    return rows


_RAW = {"robocrys": _raw_robocrys, "chemicals": _raw_chemicals}


# --- OPSIN parses, cached with resume ---------------------------------------------------------


def _read_parses(path: Path) -> dict[str, str | None]:
    return {rec["name"]: rec.get("smiles") for rec in read_jsonl(path) if isinstance(rec.get("name"), str)}


def opsin_parses(names: list[str], cache_dir: Path, chunk: int = 10_000, progress: bool = True) -> dict[str, str | None]:
    """OPSIN SMILES for each name, appended chunk by chunk to `cache_dir/opsin_parses.jsonl`."""
    from naturelm.tools.opsin import names_to_smiles

    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / "opsin_parses.jsonl"
    parses = _read_parses(path)
    todo = sorted({n for n in names if n not in parses})
    steps = range(0, len(todo), chunk)
    if progress and todo:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"OPSIN check ({len(todo)} names)", unit="chunk")
    with open(path, "a") as f:
        for i in steps:
            part = todo[i : i + chunk]
            for name, smi in zip(part, names_to_smiles(part, chunk=chunk)):
                parses[name] = smi
                f.write(json.dumps({"name": name, "smiles": smi}) + "\n")
            f.flush()
    return parses


# --- verified pairs ---------------------------------------------------------------------------


def records(source: str, limit: int | None = None) -> list[tuple[str, str]]:
    """Raw (SMILES, name) records of a source, names case-restored, before any filtering."""
    if source not in _RAW:
        raise ValueError(f"unknown name source {source!r}; choose from {SOURCES}")
    raw = _RAW[source]()
    return raw[:limit] if limit else raw


def single_component(raw: list[tuple[str, str]], report: Counter | None = None) -> list[tuple[str, str, str]]:
    """(canonical SMILES, name, InChIKey) of the single-component, RDKit-valid, named records."""
    from naturelm.language.codecs import mol_from_smiles
    from naturelm.tools.opsin import inchikey, rdkit_chem

    Chem = rdkit_chem()
    report = Counter() if report is None else report
    candidates = []
    for smi, name in raw:
        if not name:
            report["no_name"] += 1
        elif "." in smi or ";" in name:
            report["multi_component"] += 1
        elif (mol := mol_from_smiles(smi)) is None or not mol.GetNumAtoms():
            report["invalid_smiles"] += 1
        elif (key := inchikey(smi)) is None:
            report["no_inchikey"] += 1
        else:
            candidates.append((Chem.MolToSmiles(mol), name, key))
    return candidates


def _verify(source: str, raw: list[tuple[str, str]], cache_dir: Path, progress: bool) -> tuple[list[NamePair], Counter]:
    from naturelm.tools.opsin import inchikey

    report: Counter = Counter(read=len(raw))
    candidates = single_component(raw, report)
    parses = opsin_parses([c[1] for c in candidates], cache_dir, progress=progress)
    pairs, seen = [], set()
    for smi, name, key in candidates:
        got = parses.get(name)
        if got is None:
            report["opsin_unparsable"] += 1
        elif inchikey(got) != key:
            report["inchikey_mismatch"] += 1
        elif (key, name) in seen:
            report["duplicate"] += 1
        else:
            seen.add((key, name))
            pairs.append(NamePair(smi, name, key, source))
    report["kept"] = len(pairs)
    return pairs, report


def load_names(
    sources: tuple[str, ...] = SOURCES,
    cache_dir: str | Path | None = None,
    limit: int | None = None,
    progress: bool = True,
    exclude_inchikeys: set[str] | frozenset[str] = frozenset(),
) -> NameSet:
    """Verified name pairs from the given sources. `limit` takes the first N raw records per source
    (a quick look; not written to the final cache). The full run caches under `cache_dir`.
    Pairs whose InChIKey is in `exclude_inchikeys` (e.g. test molecules) are left out of the result."""
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    all_pairs, reports = [], {}
    for source in sources:
        if source not in _RAW:
            raise ValueError(f"unknown name source {source!r}; choose from {SOURCES}")
        final = cache / f"names_{source}.jsonl"
        meta = cache / f"names_{source}.report.json"
        if limit is None and (cached := _read_final(final, meta)) is not None:
            all_pairs += cached[0]
            reports[source] = cached[1]
            continue
        pairs, report = _verify(source, records(source, limit), cache, progress)
        if limit is None:
            tmp = final.with_suffix(".tmp")
            with open(tmp, "w") as f:
                for p in pairs:
                    f.write(json.dumps(asdict(p)) + "\n")
            tmp.replace(final)
            meta.write_text(json.dumps({"version": CACHE_VERSION, "report": dict(report)}, indent=1))
        all_pairs += pairs
        reports[source] = report
    if exclude_inchikeys:
        all_pairs = [p for p in all_pairs if p.inchikey not in exclude_inchikeys]
    return NameSet(all_pairs, reports)


def _read_final(final: Path, meta: Path) -> tuple[list[NamePair], Counter] | None:
    """The pairs and report of a finished run's cache, None when absent, of another version or unreadable (a
    corrupt cache is rebuilt from the OPSIN parses)."""
    from naturelm.errors import DataFileError

    if not (final.exists() and meta.exists()):
        return None
    try:
        info = read_json(meta)
        if not isinstance(info, dict) or info.get("version") != CACHE_VERSION:
            return None
        pairs = [NamePair(**rec) for _, rec in read_jsonl_records(final)]
        return pairs, Counter(info["report"])
    except (DataFileError, TypeError, KeyError, ValueError):
        return None


# --- registry lookup of trivial names ---------------------------------------------------------


# The PubChem-format tables of the chemicals package (CID, CAS, formula, MW, SMILES, InChI, InChIKey, lower-cased
# IUPAC name, synonyms...): common compounds first (the small table, then the example user table, which holds
# aspirin), then the large one.
REGISTRY_TABLES = ("Identifiers/chemical identifiers pubchem small.tsv",
                   "Identifiers/chemical identifiers example user db.tsv",
                   "Identifiers/chemical identifiers pubchem large.tsv")


@dataclass(frozen=True)
class RegistryHit:
    """A structure the registry (PubChem names and synonyms in the chemicals package) gives for a name."""

    smiles: str
    cid: str
    matched: str  # the registry's (lower-cased) name or synonym that matched


def registry_lookup(name: str, limit: int = 5) -> list[RegistryHit]:
    """Structures whose PubChem IUPAC name or synonym is `name` (case-insensitive, exact), in REGISTRY_TABLES order,
    one per canonical SMILES. The tables (46 MB) are memory-mapped, not loaded; DataSourceMissing with the pip
    command when the chemicals package is absent."""
    key = " ".join(name.split()).lower().encode()
    if not key or b"\t" in key:
        return []
    out: list[RegistryHit] = []
    for rel in REGISTRY_TABLES:
        _scan_table(package_file("chemicals", rel, _PIP["chemicals"]), key, out, limit)
    return out


def _scan_table(path: Path, key: bytes, out: list[RegistryHit], limit: int) -> None:
    import mmap

    from naturelm.language.codecs import try_canonical

    seen = {h.smiles for h in out}
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        at = mm.find(b"\t" + key)
        while at != -1 and len(out) < limit:
            end = at + 1 + len(key)
            if mm[end:end + 1] in (b"\t", b"\n", b"\r", b""):
                start = mm.rfind(b"\n", 0, at) + 1
                column = mm[start:at].count(b"\t") + 1  # 7: IUPAC name, 8 on: synonyms
                line_end = mm.find(b"\n", end)
                cols = mm[start:line_end if line_end != -1 else len(mm)].decode("utf-8", "replace").split("\t")
                smiles = try_canonical(cols[4].strip()) if column >= 7 and len(cols) > 7 else None
                if smiles is not None and smiles not in seen:
                    seen.add(smiles)
                    out.append(RegistryHit(smiles, cols[0], key.decode()))
            at = mm.find(b"\t" + key, at + 1)
