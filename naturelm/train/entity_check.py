"""The training-data entity check (SMILES in molecule tags that RDKit cannot read) and its verdicts, cached by the
content of the data file they were reached on.

Checking the v2 build's 229,584 instruction pairs parses ~190k distinct SMILES with RDKit: minutes at the start of
every stage and every resume. `CachedVerdicts` keeps, per data file, which records were checked and the problem of
each invalid one, so that a later start on the same file checks only the records it has not seen.

A verdict is used only when its key matches: the file's sha256 (read in 1 MiB blocks, with a progress bar when that
is slow) and size, the record fields checked, `CHECKER_VERSION` (bumped whenever what the check accepts changes),
the RDKit version, the molecule tags and the SMILES length limit. The tokenizer plays no part: the check reads tags,
not tokens (text the tokenizer cannot encode is found by encoding it, which every start does). A verdict file also
holds the sha256 of its own content; one that does not parse, lacks a field or fails that digest is ignored (said so
on stderr), checked again and rewritten, never trusted. Invalid records are cached with their problem, so a start on
a file with invalid records refuses it with the same DataFileError, or skips the same records, without RDKit.

Where: `DIR/check_cache/<path of the file inside DIR>.json` beside the data build (outside the directories the data
card hashes); where DIR cannot be written, the run directory's `OUT/check_cache/...`. Each is written to a
temporary file in the same folder and renamed over the old one (atomic; concurrent writers leave one whole file).
Delete `check_cache/` to force a full check.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHECKER_VERSION = 1
FORMAT = "naturelm-entity-check"
CACHE_DIR = "check_cache"


class EntityCheck:
    """Training text whose tagged entities encode but are not valid in their domain: a SMILES in a molecule tag
    (`<mol>`, `<product>`, `<reactants>`, ...) that RDKit cannot read. Sequences and materials are checked by the
    tokenizer itself. Each distinct entity is checked once (memoised)."""

    def __init__(self):
        from naturelm.language.tags import TAGS

        self._seen: dict[str, str | None] = {}
        self._opening = tuple(t.open for t in TAGS.values() if t.domain == "molecule")
        self._bare = frozenset(t.open for t in TAGS.values())  # prompts that are only an opening tag

    def problem(self, text: str) -> str | None:
        """Why the first invalid entity of `text` is invalid, None when all are valid."""
        from naturelm.language.codecs import mol_from_smiles
        from naturelm.language.tags import find_entities

        if not any(tag in text for tag in self._opening):  # most texts hold no molecule: no tag parsing
            return None
        for span in find_entities(text):
            if span.tag.domain != "molecule" or not span.text:
                continue
            if span.text not in self._seen:  # one RDKit parse (no canonical writing) per distinct SMILES
                valid = mol_from_smiles(span.text) is not None
                self._seen[span.text] = None if valid else f"<{span.tag.name}>{span.text[:60]}: RDKit cannot read it"
            if self._seen[span.text] is not None:
                return self._seen[span.text]
        return None

    def record_problem(self, rec: dict, fields: tuple[str, ...]) -> str | None:
        """The first invalid entity of a record's texts, None when all are valid: the prompt (`fields[0]`) unless
        it is a bare opening tag (an unconditional generation record), then every answer."""
        prompt, *answers = (rec[f] for f in fields)
        texts = ([] if prompt.strip() in self._bare else [prompt]) + answers
        return next(filter(None, map(self.problem, texts)), None)


def checker_key() -> dict:
    """What a verdict depends on besides the file: the check's version, RDKit's, the tags and the SMILES limit."""
    import rdkit

    from naturelm.language.codecs.molecule import MAX_SMILES_CHARS
    from naturelm.language.tags import TAGS

    return {"checker": CHECKER_VERSION, "rdkit": rdkit.__version__, "max_smiles_chars": MAX_SMILES_CHARS,
            "tags": sorted(f"{t.open}{t.close}:{t.domain}" for t in TAGS.values())}


def cache_places(source: Path, root: Path, run_dir: Path | None = None) -> list[Path]:
    """Where the verdict of `source` (a file inside the build `root`) is kept: beside the data, then the run dir."""
    rel = Path(source).resolve().relative_to(Path(root).resolve())
    places = [Path(root) / CACHE_DIR / f"{rel}.json"]
    if run_dir is not None:
        places.append(Path(run_dir) / CACHE_DIR / f"{rel}.json")
    return places


def _digest(payload: dict) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


class CachedVerdicts:
    """The entity check of one data file's records with verdicts cached by the file's content (module docstring).

    `problem(line, rec)` answers from the cache for a record checked before and checks it (`EntityCheck`) otherwise;
    `save()` writes the verdicts back when anything new was checked. `report`: say on stderr what was cached, checked
    and written (the main process of a run)."""

    def __init__(self, source: Path, fields: tuple[str, ...], places: list[Path], report: bool = True):
        from naturelm.data.card import file_sha256

        self.source, self.fields, self.places, self.report = Path(source), tuple(fields), list(places), report
        self.check = EntityCheck()
        self.key = {"sha256": file_sha256(self.source, progress=report), "bytes": self.source.stat().st_size,
                    "fields": list(self.fields), **checker_key()}
        self.checked = np.zeros(0, dtype=bool)  # checked[line]: the record on that line has a verdict
        self.problems: dict[int, str] = {}
        self.loaded_from: Path | None = None
        self.written_to: Path | None = None
        self.n_cached = self.n_checked = 0
        self.seconds = 0.0
        self.why_not_cached = "no cached verdict"
        for place in self.places:
            why = self._load(place)
            if why is None:
                self.loaded_from = place
                break
            if why != "absent":
                self._say(f"ignoring the cached verdict {place}: {why}")
                self.why_not_cached = why

    def _load(self, place: Path) -> str | None:
        """Take the verdicts in `place`; why they cannot be used (None: taken)."""
        if not place.is_file():
            return "absent"
        try:
            data = json.loads(place.read_text(encoding="utf-8"))
            digest = data.pop("digest")
            if data.get("format") != FORMAT or _digest(data) != digest:
                return "corrupt (its digest does not match its content)"
            if data["key"] != self.key:
                changed = sorted(k for k in self.key if data["key"].get(k) != self.key[k])
                return f"made for another {' and '.join(changed) or 'key'}"
            bits = np.frombuffer(base64.b64decode(data["checked"]["bits"], validate=True), dtype=np.uint8)
            checked = np.unpackbits(bits)[: int(data["checked"]["lines"])].astype(bool)
            problems = {int(k): str(v) for k, v in data["problems"].items()}
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            return f"unreadable ({type(exc).__name__}: {exc})"
        if any(line >= len(checked) or not checked[line] for line in problems):
            return "corrupt (problems on lines it did not check)"
        self.checked, self.problems = checked, problems
        return None

    def problem(self, line: int, rec: dict) -> str | None:
        """Why record `rec` (on `line` of the file) holds an invalid entity, None when it holds none."""
        if line < len(self.checked) and self.checked[line]:
            self.n_cached += 1
            return self.problems.get(line)
        t0 = time.perf_counter()
        found = self.check.record_problem(rec, self.fields)  # TagError / EntityError propagate: nothing recorded
        self.seconds += time.perf_counter() - t0
        if line >= len(self.checked):
            self.checked = np.concatenate([self.checked, np.zeros(max(line + 1, 2 * len(self.checked)) -
                                                                  len(self.checked), dtype=bool)])
        self.checked[line] = True
        if found is not None:
            self.problems[line] = found
        self.n_checked += 1
        return found

    def save(self) -> None:
        """Write the verdicts (atomically) to the first place that can be written, when anything new was checked;
        then say what this start did."""
        name = self.source.name
        if not self.n_checked:
            if self.loaded_from is not None:
                self._say(f"entity check of {name} skipped: verdict cached for sha256 {self.key['sha256'][:12]} in "
                          f"{self.loaded_from} ({self.n_cached:,} records, "
                          f"{len(self.problems):,} invalid in the cache)")
            return
        last = np.flatnonzero(self.checked)
        lines = int(last[-1]) + 1 if len(last) else 0
        payload = {"format": FORMAT, "key": self.key, "source": str(self.source),
                   "checked": {"lines": lines, "bits": base64.b64encode(np.packbits(self.checked[:lines])).decode()},
                   "problems": {str(k): v for k, v in sorted(self.problems.items())}}
        text = json.dumps({**payload, "digest": _digest(payload)}, ensure_ascii=True)
        failures = []
        for place in self.places:
            try:
                _write_atomic(place, text)
                self.written_to = place
                break
            except OSError as exc:
                failures.append(f"{place}: {type(exc).__name__}: {exc}")
        where = (f"verdict cached in {self.written_to}" if self.written_to
                 else f"verdict not cached ({'; '.join(failures)})")
        cached = (f"; {self.n_cached:,} answered from {self.loaded_from}" if self.n_cached
                  else f" ({self.why_not_cached})")
        self._say(f"entity check of {name}: {self.n_checked:,} records checked with RDKit in {self.seconds:.1f} s"
                  f"{cached}; {where}")

    def summary(self) -> dict:
        """What this start did, for the run summary: where the verdict is, records answered from it and checked."""
        cache = self.written_to or self.loaded_from
        return {"cache": str(cache) if cache else None, "sha256": self.key["sha256"],
                "records_from_cache": self.n_cached, "records_checked": self.n_checked,
                "check_seconds": round(self.seconds, 2)}

    def _say(self, message: str) -> None:
        if self.report:
            print(f"naturelm train: {message}", file=sys.stderr, flush=True)


def _write_atomic(place: Path, text: str) -> None:
    """`text` into `place` through a temporary file in the same folder, renamed over it."""
    place.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{place.name}.", suffix=".tmp", dir=place.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared build's verdict from other users
        os.replace(tmp, place)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
