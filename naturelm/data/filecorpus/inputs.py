"""Inputs of a file corpus: `DOMAIN=PATH[::key=value,...]` specs, glob expansion and one streaming reader per format.

Formats (from the file name, compression suffix `.gz/.bz2/.xz/.zst` stripped, or `format=` in the spec):
`fasta` (.fa .fasta .faa .fna .ffn .frn .fas), `smiles` (.smi .smiles .rsmi .txt of molecules/reactions: the first
whitespace field of each line), `csv` / `tsv` (a column: `column=NAME`, else a usual name for the domain),
`jsonl` (a field, default `text`), `text` (one document per line), `cif` (one crystal per file).
Every reader yields `(record_index, fields)` with `fields = {"value": str, "spacegroup": str | None}` and never
holds more than one record; a row it cannot split into fields is yielded with `value=None` and an `error`.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass
from typing import Iterator

from naturelm.errors import ConfigError

DOMAINS = ("protein", "dna", "rna", "molecule", "reaction", "material", "text")
FORMATS = ("fasta", "smiles", "csv", "tsv", "jsonl", "text", "cif")
_COMPRESSION = (".gz", ".bz2", ".xz", ".zst")
_EXT = {".fa": "fasta", ".fasta": "fasta", ".faa": "fasta", ".fna": "fasta", ".ffn": "fasta", ".frn": "fasta",
        ".fas": "fasta", ".smi": "smiles", ".smiles": "smiles", ".rsmi": "smiles", ".csv": "csv", ".tsv": "tsv",
        ".tab": "tsv", ".jsonl": "jsonl", ".json": "jsonl", ".txt": "text", ".cif": "cif"}
# columns tried (case-insensitively) when the spec names none
_COLUMNS = {
    "molecule": ("smiles", "canonical_smiles", "isomeric_smiles", "mol", "molecule"),
    "reaction": ("reactions", "rxn_smiles", "reaction_smiles", "rxn", "reaction", "reactants>reagents>production"),
    "material": ("formula", "composition", "pretty_formula", "reduced_formula", "material"),
    "protein": ("sequence", "seq", "protein"), "dna": ("sequence", "seq", "dna"), "rna": ("sequence", "seq", "rna"),
    "text": ("text", "sentence", "content"),
}
_SG_COLUMNS = ("spacegroup", "space_group", "spacegroup_number", "space_group_number", "spg", "sg")


@dataclass(frozen=True)
class Input:
    """One input: a domain and a file, folder (every file inside) or glob, with reader options."""

    domain: str
    path: str
    format: str | None = None
    column: str | None = None
    spacegroup_column: str | None = None
    name: str | None = None  # the source's name in the card (default DOMAIN:PATH)

    def __post_init__(self):
        if self.domain not in DOMAINS:
            raise ConfigError(f"input {self.path!r}: unknown domain {self.domain!r}; use one of {DOMAINS}")
        if self.format is not None and self.format not in FORMATS:
            raise ConfigError(f"input {self.path!r}: unknown format {self.format!r}; use one of {FORMATS}")

    @property
    def source(self) -> str:
        return self.name or f"{self.domain}:{self.path}"

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_input(spec: str) -> Input:
    """`molecule=data/*.csv.gz::column=SMILES,format=csv` -> Input."""
    domain, eq, rest = spec.partition("=")
    if not eq or not rest:
        raise ConfigError(f"--input {spec!r}: expected DOMAIN=PATH (domains: {', '.join(DOMAINS)})")
    path, _, opts = rest.partition("::")
    kw = {}
    for item in filter(None, opts.split(",")):
        k, eq, v = item.partition("=")
        if not eq or k not in ("format", "column", "spacegroup_column", "name"):
            raise ConfigError(f"--input {spec!r}: option {item!r} is not one of format=, column=, spacegroup_column=, name=")
        kw[k] = v
    return Input(domain.strip(), path.strip(), **kw)


def file_format(inp: Input, path: str) -> str:
    if inp.format:
        return inp.format
    name = path.lower()
    for c in _COMPRESSION:
        if name.endswith(c):
            name = name[: -len(c)]
    ext = "." + name.rsplit(".", 1)[-1] if "." in name.rsplit("/", 1)[-1] else ""
    if ext not in _EXT:
        raise ConfigError(f"{path}: cannot tell the format from the name; add ::format=one of {FORMATS}")
    return _EXT[ext]


def expand(inp: Input) -> list[tuple[str, int]]:
    """(path, bytes) of every file an input names (a file, a folder's files, or a glob), sorted by path."""
    from fsspec.core import url_to_fs

    fs, root = url_to_fs(inp.path)
    if any(ch in inp.path for ch in "*?["):
        paths = fs.glob(root)
    elif fs.isdir(root):
        paths = [p for p in fs.find(root)]
    elif fs.exists(root):
        paths = [root]
    else:
        paths = []
    paths = sorted(p for p in paths if fs.isfile(p))
    if not paths:
        raise ConfigError(f"input {inp.domain}={inp.path}: no such file (or the glob matches nothing)")
    proto = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    full = [p if proto in ("file", "local") else f"{proto}://{p}" for p in paths]
    return [(f, int(fs.size(p) or 0)) for f, p in zip(full, paths)]


def _open_text(path: str):
    import fsspec

    return fsspec.open(path, "rt", compression="infer", encoding="utf-8", errors="replace", newline="").open()


def read_records(inp: Input, path: str) -> Iterator[tuple[int, dict]]:
    """Stream the records of one file. Bytes that are not UTF-8 are replaced (the record is then rejected by its
    codec and counted); a file that cannot be read on (a truncated or corrupt compressed stream, a CSV field over
    `MAX_FIELD_CHARS`) is a DataFileError naming the file and line."""
    from naturelm.data.sources.common import guarded_reads

    fmt = file_format(inp, path)
    if fmt == "cif":
        yield 0, _read_cif(path)
        return
    line = 0

    def numbered(f):
        nonlocal line
        for line, text in enumerate(f, 1):
            yield text

    yield from guarded_reads(_read_format(inp, path, fmt, numbered), path, lambda: line)


def _read_format(inp: Input, path: str, fmt: str, numbered) -> Iterator[tuple[int, dict]]:
    with _open_text(path) as raw:
        f = numbered(raw)
        if fmt == "fasta":
            yield from _read_fasta(f)
        elif fmt in ("csv", "tsv"):
            yield from _read_table(f, inp, path, "\t" if fmt == "tsv" else ",")
        elif fmt == "jsonl":
            yield from _read_jsonl(f, inp)
        elif fmt == "smiles":
            i = 0
            for line in f:
                if not line.strip() or line.startswith("#"):
                    continue
                yield i, {"value": line.split()[0], "spacegroup": None}
                i += 1
        else:  # text
            i = 0
            for line in f:
                if line.strip():
                    yield i, {"value": line.strip(), "spacegroup": None}
                    i += 1


def _read_fasta(f: io.TextIOBase) -> Iterator[tuple[int, dict]]:
    i, parts, header = 0, [], None
    for line in f:
        if line.startswith(">"):
            if header is not None:
                yield i, {"value": "".join(parts), "spacegroup": None}
                i += 1
            header, parts = line, []
        elif header is not None:
            parts.append(line.strip())
    if header is not None:
        yield i, {"value": "".join(parts), "spacegroup": None}


def _pick(header: list[str], wanted: str | None, choices: tuple[str, ...], path: str, what: str) -> int | None:
    lower = [h.strip().lower() for h in header]
    if wanted is not None:
        if wanted.lower() not in lower:
            raise ConfigError(f"{path}: no column {wanted!r} (columns: {header})")
        return lower.index(wanted.lower())
    for c in choices:
        if c in lower:
            return lower.index(c)
    if what == "spacegroup":
        return None
    raise ConfigError(f"{path}: none of the columns {header} is a {what} column; name one with ::column=NAME")


def _read_table(f, inp: Input, path: str, delimiter: str) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(f, delimiter=delimiter)
    header = next(reader, None)
    if header is None:
        return
    col = _pick(header, inp.column, _COLUMNS[inp.domain], path, inp.domain)
    sg = _pick(header, inp.spacegroup_column, _SG_COLUMNS, path, "spacegroup") if inp.domain == "material" else None
    for i, row in enumerate(reader):
        if len(row) <= col:
            yield i, {"value": None, "spacegroup": None, "error": "row has too few columns"}
            continue
        yield i, {"value": row[col], "spacegroup": row[sg] if sg is not None and sg < len(row) else None}


def _read_jsonl(f, inp: Input) -> Iterator[tuple[int, dict]]:
    field = inp.column or "text"
    for i, line in enumerate(f):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested too deeply
            yield i, {"value": None, "spacegroup": None, "error": "not JSON"}
            continue
        value = obj.get(field) if isinstance(obj, dict) else None
        if not isinstance(value, str):
            yield i, {"value": None, "spacegroup": None, "error": f"no string field {field!r}"}
            continue
        sg = obj.get(inp.spacegroup_column or "spacegroup") if inp.domain == "material" else None
        yield i, {"value": value, "spacegroup": None if sg is None else str(sg)}


def _read_cif(path: str) -> dict:
    """A CIF file's formula (the cell's integer composition) and its space group (spglib via pymatgen, symprec 0.1)."""
    import warnings

    try:
        from pymatgen.core import Structure
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with _open_text(path) as f:
                structure = Structure.from_str(f.read(), fmt="cif")
            sg = SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number()
    except Exception as exc:  # pymatgen raises many types on malformed CIFs
        return {"value": None, "spacegroup": None, "error": f"unreadable CIF ({type(exc).__name__})"}
    return {"value": structure.composition.formula.replace(" ", ""), "spacegroup": str(sg)}
