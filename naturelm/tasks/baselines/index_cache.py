"""Template indices fitted on USPTO-50k, kept on disk so that only the first use pays for the fit (minutes).

An index is cached in `$NATURELM_CACHE/template_indices/NAME/` (JSON and npz files only, no pickle) with a
`manifest.json` that records what it was fitted from: `VERSION` (bumped whenever what an index holds changes), the
sha256 of the source files' contents, the fit settings, the RDKit version, and the sha256 of every file the index
wrote. A cache is used only when all of these match and every file reads back; otherwise (stale, corrupt, partly
written) it is fitted again and replaced, never trusted.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Callable, TypeVar

from naturelm.data.card import file_sha256

VERSION = 1
MANIFEST = "manifest.json"
CACHE_SUBDIR = "template_indices"

T = TypeVar("T")


def source_sha256(root: str | os.PathLike) -> str:
    """sha256 over the names and contents of a source: a file, or the files directly in a folder (sorted)."""
    root = Path(root)
    files = sorted(f for f in root.iterdir() if f.is_file()) if root.is_dir() else [root]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + file_sha256(f).encode() + b"\0")
    return h.hexdigest()


def expected_manifest(source: str | os.PathLike, settings: dict) -> dict:
    """What a cache of an index fitted from `source` with `settings` must record (files aside)."""
    import rdkit

    return {"version": VERSION, "source_sha256": source_sha256(source), "settings": settings,
            "rdkit": rdkit.__version__}


def cached_index(name: str, source: str | os.PathLike, settings: dict, fit: Callable[[], T],
                 save: Callable[[T, Path], None], load: Callable[[Path], T], folder: Path | None = None) -> T:
    """The index NAME fitted from `source`: loaded from the cache when its manifest matches (see the module
    docstring), else `fit()`, written with `save(index, dir)` and cached. `folder`: the cache root (default
    `$NATURELM_CACHE/template_indices`)."""
    from naturelm.data.sources.common import cache_dir

    target = (folder or cache_dir(CACHE_SUBDIR)) / name
    want = expected_manifest(source, settings)
    problem = _cache_problem(target, want)
    if problem is None:
        try:
            return load(target)
        except Exception as exc:  # a file that hashes right but does not read back: rebuild
            problem = f"it does not load ({type(exc).__name__}: {exc})"
    if target.exists():
        warnings.warn(f"refitting the cached {name} index in {target}: {problem}", stacklevel=2)
    index = fit()
    _write(target, index, save, want)
    return index


def _cache_problem(target: Path, want: dict) -> str | None:
    """Why the cache in `target` cannot be used (None: it can)."""
    path = target / MANIFEST
    if not path.is_file():
        return "no manifest"
    try:
        have = json.loads(path.read_text())
        files = dict(have["files"])
    except (ValueError, KeyError, TypeError):
        return "unreadable manifest"
    for key, value in want.items():
        if have.get(key) != value:
            return f"{key} changed"
    for rel, digest in files.items():
        f = target / rel
        if not f.is_file() or file_sha256(f) != digest:
            return f"{rel} is missing or changed"
    present = {str(p.relative_to(target)) for p in target.rglob("*") if p.is_file()} - {MANIFEST}
    if present != set(files):
        return "files other than the manifest lists"
    return None


def _write(target: Path, index, save, want: dict) -> None:
    """Save into a temporary folder, record every file's sha256, then swap it in for `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    save(index, tmp)
    files = {str(p.relative_to(tmp)): file_sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
    (tmp / MANIFEST).write_text(json.dumps({**want, "files": files}, indent=1))
    old = target.with_name(f"{target.name}.old{os.getpid()}")
    if target.exists():
        target.rename(old)
    try:
        tmp.rename(target)
    except OSError:  # another process cached it first
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
