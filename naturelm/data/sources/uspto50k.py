"""USPTO-50k single-step reactions (standard split), read from a local copy.

Two on-disk formats are accepted:
- MHNreact's `USPTO_50k_MHN_prepro.csv.gz` (columns `id, class, prod_smiles, reactants_can, split, reaction_smarts`);
- the common `raw_{train,val,test}.csv` files with an atom-mapped `reactants>reagents>production` column
  (maps are stripped; the retro template is extracted with rdchiral's template extractor).

Every SMILES is re-canonicalised (atom maps stripped) with naturelm.language.codecs, so products and reactant
sets compare exactly with model outputs canonicalised the same way. Malformed rows are counted per reason in `report`.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
from collections import Counter
from dataclasses import astuple, dataclass, field
from pathlib import Path

from naturelm.data.sources.common import integer, read_rows
from naturelm.errors import DataFileError, DataSourceMissing
from naturelm.language.codecs import try_canonical

ENV_VAR = "NATURELM_USPTO50K"
MHN_FILE = "USPTO_50k_MHN_prepro.csv.gz"
RAW_FILES = {"train": "raw_train.csv", "valid": "raw_val.csv", "test": "raw_test.csv"}
RAW_RXN_COLUMN = "reactants>reagents>production"
SPLITS = ("train", "valid", "test")
_SPLIT_ALIASES = {"train": "train", "valid": "valid", "val": "valid", "test": "test"}
_HINT = (f"pass --uspto50k PATH (or path=...) or set {ENV_VAR} to the folder holding {MHN_FILE} "
         "or raw_{train,val,test}.csv (with a 'reactants>reagents>production' column)")


@dataclass(frozen=True)
class Reaction:
    """One reaction: canonical product, canonical sorted reactant set, class (1-10 or None), retro template."""

    id: str
    rxn_class: int | None
    product: str
    reactants: str
    split: str
    template: str | None = None


@dataclass
class Uspto50k:
    """The loaded records plus a per-reason count of rows that were dropped (or kept without a template)."""

    records: list[Reaction]
    report: Counter = field(default_factory=Counter)
    path: Path | None = None

    def split(self, name: str) -> list[Reaction]:
        """Records of one split ('train', 'valid' or 'test'; 'val' is accepted)."""
        if name not in _SPLIT_ALIASES:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        name = _SPLIT_ALIASES[name]
        return [r for r in self.records if r.split == name]

    def counts(self) -> dict[str, int]:
        """Number of records per split."""
        c = Counter(r.split for r in self.records)
        return {s: c.get(s, 0) for s in SPLITS}

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self):
        return iter(self.records)


# --- path resolution ------------------------------------------------------------------------------------------

def resolve_path(path: str | os.PathLike | None = None) -> Path:
    """Argument, then $NATURELM_USPTO50K, then ../shared/data/uspto50k/ next to the repo root or the cwd."""
    if path is not None or os.environ.get(ENV_VAR):
        p = Path(path if path is not None else os.environ[ENV_VAR]).expanduser()
        if not p.exists():
            raise DataSourceMissing(f"USPTO-50k at {p}", _HINT)
        return p
    repo_root = Path(__file__).resolve().parents[3]
    for base in (repo_root, Path.cwd()):
        p = (base / ".." / "shared" / "data" / "uspto50k").resolve()
        if p.exists():
            return p
    raise DataSourceMissing("USPTO-50k", _HINT)


# --- readers --------------------------------------------------------------------------------------------------

def _parse_class(value: str | None, report: Counter) -> tuple[bool, int | None]:
    """(ok, class): an empty class is None; text, fractions, NaN, inf and `1e400` are counted as `bad_class`."""
    if value is None or value.strip() == "":
        return True, None
    rxn_class = integer(value)
    if rxn_class is None:
        report["bad_class"] += 1
        return False, None
    return True, rxn_class


def _read_mhn(path: Path, report: Counter, splits: set[str], progress: bool) -> list[Reaction]:
    from tqdm.auto import tqdm

    records = []
    rows = read_rows(path, require=("prod_smiles", "reactants_can", "split"))
    for i, row in enumerate(tqdm(rows, desc="USPTO-50k", disable=not progress)):
        split = _SPLIT_ALIASES.get((row.get("split") or "").strip())
        if split is None:
            report["bad_split"] += 1
            continue
        if split not in splits:
            continue
        ok, rxn_class = _parse_class(row.get("class"), report)
        if not ok:
            continue
        rec = _make_record(row.get("id") or str(i), rxn_class, row.get("prod_smiles") or "",
                           row.get("reactants_can") or "", split, row.get("reaction_smarts") or None, report)
        if rec is not None:
            records.append(rec)
    return records


def _make_record(rid, rxn_class, product, reactants, split, template, report):
    if not product.strip():
        report["missing_product"] += 1
        return None
    if not reactants.strip():
        report["missing_reactants"] += 1
        return None
    prod = try_canonical(product.strip())
    if prod is None:
        report["unparsable_product"] += 1
        return None
    rcts = try_canonical(reactants.strip(), reactant_set=True)
    if rcts is None:
        report["unparsable_reactants"] += 1
        return None
    return Reaction(str(rid), rxn_class, prod, rcts, split, template)


def _extract_template(reactants: str, product: str, rid: str) -> str | None:
    """Retro template (product>>reactants) from an atom-mapped reaction, via rdchiral; None on failure."""
    from rdchiral.template_extractor import extract_from_reaction

    try:
        with contextlib.redirect_stdout(io.StringIO()):
            out = extract_from_reaction({"reactants": reactants, "products": product, "_id": rid})
    except Exception:  # rdchiral raises assorted errors on odd mappings; the record is kept without a template
        return None
    return (out or {}).get("reaction_smarts")


def _read_raw(path: Path, split: str, report: Counter, templates: bool, progress: bool) -> list[Reaction]:
    from tqdm.auto import tqdm

    records = []
    rows = read_rows(path, require=(RAW_RXN_COLUMN,))
    for i, row in enumerate(tqdm(rows, desc=f"USPTO-50k {split}", disable=not progress)):
        rxn = (row.get(RAW_RXN_COLUMN) or "").strip()
        parts = rxn.split(">")
        if len(parts) != 3:
            report["bad_reaction_smiles"] += 1
            continue
        reactants, _, product = parts
        ok, rxn_class = _parse_class(row.get("class"), report)
        if not ok:
            continue
        rid = row.get("id") or f"{split}-{i}"
        rec = _make_record(rid, rxn_class, product, reactants, split, None, report)
        if rec is None:
            continue
        if templates:
            template = _extract_template(reactants, product, rid)
            if template is None:
                report["template_extraction_failed (kept)"] += 1
            rec = Reaction(rec.id, rec.rxn_class, rec.product, rec.reactants, rec.split, template)
        records.append(rec)
    return records


def load_uspto50k(path: str | os.PathLike | None = None, split: str | None = None, templates: bool = True,
                  progress: bool = False, cache: bool = True) -> Uspto50k:
    """Load USPTO-50k from the MHN csv.gz or raw_{train,val,test}.csv (a file or the folder holding them).

    `split` limits loading to one split. `templates=False` skips rdchiral template extraction for raw files;
    `progress=True` shows a tqdm bar. Canonicalising ~150k molecules takes about a minute, so the result is
    cached under $NATURELM_CACHE (default ~/.cache/naturelm), keyed by the files, their size/mtime and RDKit.
    """
    root = resolve_path(path)
    if split is not None and split not in _SPLIT_ALIASES:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    wanted = {_SPLIT_ALIASES[split]} if split else set(SPLITS)
    files = _files(root, wanted)
    key = _cache_key(files, wanted, templates)
    if cache:
        for k in dict.fromkeys([key, _cache_key(files, set(SPLITS), templates)]):  # a full load serves any split
            if (hit := _read_cache(k)) is not None:
                records = [r for r in hit[0] if r.split in wanted]
                return Uspto50k(records, hit[1], root)
    report: Counter = Counter()
    records = []
    for file_split, p in files:
        if file_split is None:
            records.extend(_read_mhn(p, report, wanted, progress))
        else:
            records.extend(_read_raw(p, file_split, report, templates, progress))
    if cache:
        _write_cache(key, records, report)
    return Uspto50k(records, report, root)


def _files(root: Path, wanted: set[str]) -> list[tuple[str | None, Path]]:
    """(split, file) pairs to read; split None marks the MHN file, which holds every split."""
    if root.is_dir() and (root / MHN_FILE).exists():
        return [(None, root / MHN_FILE)]
    if root.is_file():
        if RAW_RXN_COLUMN not in _header(root):
            return [(None, root)]
        name = root.name.removesuffix(".gz")
        file_split = next((s for s, n in RAW_FILES.items() if n == name), None)
        if file_split is None:
            raise DataFileError(root, "a raw USPTO-50k file gives its split by its name: raw_train.csv, raw_val.csv "
                                      "or raw_test.csv (optionally .gz)")
        return [(file_split, root)] if file_split in wanted else []
    raw = [(s, root / n) for s, n in RAW_FILES.items() if s in wanted]
    raw = [(s, p if p.exists() else p.with_suffix(".csv.gz")) for s, p in raw]
    if not all(p.exists() for _, p in raw):
        raise DataSourceMissing(f"{MHN_FILE} or {[p.name for _, p in raw]} in {root}", _HINT)
    return raw


def _header(path: Path) -> list[str]:
    return next(read_rows(path, header=False), [])


# --- cache ----------------------------------------------------------------------------------------------------

_CACHE_VERSION = 1


def _cache_key(files, wanted, templates) -> str:
    import rdkit

    stats = [(s, str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for s, p in files]
    blob = json.dumps([_CACHE_VERSION, rdkit.__version__, stats, sorted(wanted), templates])
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def _cache_path(key: str) -> Path:
    base = Path(os.environ.get("NATURELM_CACHE", Path.home() / ".cache" / "naturelm"))
    return base / "uspto50k" / f"{key}.json.gz"


def _read_cache(key: str):
    p = _cache_path(key)
    if not p.exists():
        return None
    try:
        with gzip.open(p, "rt") as f:
            blob = json.load(f)
        return [Reaction(*r) for r in blob["records"]], Counter(blob["report"])
    except (OSError, ValueError, KeyError, TypeError):  # a corrupt cache is rebuilt
        return None


def _write_cache(key: str, records: list[Reaction], report: Counter) -> None:
    p = _cache_path(key)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_suffix(f".tmp{os.getpid()}")
        with gzip.open(tmp, "wt") as f:
            json.dump({"records": [astuple(r) for r in records], "report": dict(report)}, f)
        os.replace(tmp, p)
    except OSError:  # a read-only home only costs speed
        pass
