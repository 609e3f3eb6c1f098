"""Naming data engine: SMILES -> (IUPAC name, namer) pairs that OPSIN verifies.

Molecules are named by both rule-based namers (nispo, openclatura) in worker processes; every
name is parsed back by OPSIN (batched) and kept only when it gives the molecule's InChIKey.

Files in `out_dir`:
- `named.jsonl`   one line per (molecule, namer) tried: smiles, inchikey, namer, name, ok, reason.
                  Appended batch by batch; a rerun skips molecules already there (resume).
- `pairs.jsonl`   the verified, deduplicated pairs for the requested molecules:
                  {"smiles", "inchikey", "name", "namer", "namers"} (namer = first namer that gave the name).
- `stats.json`    NamingStats (counts, rejection reasons, molecules/s).
"""
from __future__ import annotations

import json
import multiprocessing as mp
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from naturelm.data.sources.common import read_jsonl, read_jsonl_records
from naturelm.tools.namers import NAMERS, TIMEOUT_S

BATCH = 1000  # molecules per OPSIN verification (one JVM start) and per resume checkpoint
WARMUP = "Cn1c(=O)c2c(ncn2C)n(C)c1=O"


@dataclass
class NamingStats:
    """What a build did: inputs, exclusions, naming and verification counts, throughput."""

    n_input: int = 0
    n_invalid_smiles: int = 0
    n_excluded: int = 0
    n_molecules: int = 0  # unique valid molecules requested (after exclusion and limit)
    n_resumed: int = 0  # of those, already named by an earlier run
    n_named_now: int = 0
    n_pairs: int = 0
    n_molecules_with_pair: int = 0
    per_namer: dict = field(default_factory=dict)  # namer -> {"named", "verified"}
    rejections: dict = field(default_factory=dict)  # "namer:reason" -> count
    naming_seconds: float = 0.0
    molecules_per_s: float = 0.0
    workers: int = 0
    out_dir: str = ""


def _prepare(smiles: list[str], exclude: set[str]) -> tuple[list[tuple[str, str]], Counter]:
    """Canonical, unique (smiles, inchikey) in input order, minus invalid and excluded molecules."""
    from naturelm.language.codecs import mol_from_smiles
    from naturelm.tools.opsin import rdkit_chem

    Chem = rdkit_chem()
    prefixes = {k for k in exclude if len(k) == 14}  # connectivity-block keys exclude all stereoisomers
    counts, seen, out = Counter(), set(), []
    for smi in smiles:
        mol = mol_from_smiles(smi) if smi else None
        if mol is None or not mol.GetNumAtoms():
            counts["invalid"] += 1
            continue
        key = Chem.MolToInchiKey(mol)
        if not key:
            counts["invalid"] += 1
            continue
        if key in exclude or key[:14] in prefixes:
            counts["excluded"] += 1
            continue
        if key not in seen:
            seen.add(key)
            out.append((Chem.MolToSmiles(mol), key))
    return out, counts


def _init_worker():
    from rdkit import RDLogger

    RDLogger.DisableLog("rdApp.*")


def _name_molecule(item: tuple[str, str, tuple[str, ...], float]) -> list[dict]:
    """Worker: name one molecule with every namer."""
    from naturelm.tools.namers import name_one

    smi, key, namers, timeout = item
    out = []
    for namer in namers:
        name, reason = name_one(namer, smi, timeout)
        out.append({"smiles": smi, "inchikey": key, "namer": namer, "name": name, "reason": reason})
    return out


def _verify(records: list[dict]) -> None:
    """OPSIN round trip for a batch of records, in place: sets ok and the rejection reason."""
    from naturelm.tools.opsin import inchikey, names_to_smiles

    named = [r for r in records if r["name"]]
    parsed = names_to_smiles([r["name"] for r in named])
    for r, got in zip(named, parsed):
        if got is None:
            r["reason"] = "opsin_unparsable"
        elif inchikey(got) != r["inchikey"]:
            r["reason"] = "inchikey_mismatch"
    for r in records:
        r["ok"] = bool(r["name"]) and r["reason"] is None


def _read_done(path: Path) -> dict[str, list[dict]]:
    done: dict[str, list[dict]] = {}
    for rec in read_jsonl(path):
        done.setdefault(rec["inchikey"], []).append(rec)
    return done


def build_naming_pairs(
    smiles: list[str],
    out_dir: str | Path,
    exclude_inchikeys: set[str] | frozenset[str] | list[str] = frozenset(),
    workers: int = 2,
    limit: int | None = None,
    namers: tuple[str, ...] = NAMERS,
    timeout: float = TIMEOUT_S,
    progress: bool = True,
) -> NamingStats:
    """Name `smiles` with the rule-based namers, keep OPSIN-verified pairs, write out_dir/pairs.jsonl.

    Molecules whose InChIKey is in `exclude_inchikeys` (full keys, or 14-character connectivity
    blocks) are never named. `limit` caps the number of unique molecules. Reruns resume.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shard = out / "named.jsonl"
    mols, counts = _prepare(list(smiles), set(exclude_inchikeys))
    if limit is not None:
        mols = mols[:limit]
    done = _read_done(shard)
    todo = [(s, k) for s, k in mols if not all(n in {r["namer"] for r in done.get(k, [])} for n in namers)]
    stats = NamingStats(
        n_input=len(smiles), n_invalid_smiles=counts["invalid"], n_excluded=counts["excluded"],
        n_molecules=len(mols), n_resumed=len(mols) - len(todo), workers=workers, out_dir=str(out),
    )

    t0 = time.perf_counter()
    if todo:
        items = [(s, k, namers, timeout) for s, k in todo]
        _name_molecule((WARMUP, "", namers, None))  # load the namers' lazy tables once, before forking
        pool = mp.get_context("fork").Pool(workers, initializer=_init_worker) if workers > 1 else None
        results = pool.imap(_name_molecule, items, chunksize=8) if pool else map(_name_molecule, items)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=len(items), desc="naming", unit="mol")
        try:
            with open(shard, "a") as f:
                batch: list[dict] = []
                for i, recs in enumerate(results, 1):
                    batch += recs
                    if bar:
                        bar.update(1)
                    if i % BATCH == 0 or i == len(items):
                        _verify(batch)
                        for r in batch:
                            f.write(json.dumps(r) + "\n")
                            done.setdefault(r["inchikey"], []).append(r)
                        f.flush()
                        batch = []
        finally:
            if bar:
                bar.close()
            if pool:
                pool.terminate()
    stats.n_named_now = len(todo)
    stats.naming_seconds = round(time.perf_counter() - t0, 2)
    stats.molecules_per_s = round(len(todo) / stats.naming_seconds, 2) if todo and stats.naming_seconds else 0.0
    _write_pairs(mols, done, namers, out, stats)
    (out / "stats.json").write_text(json.dumps(asdict(stats), indent=1))
    return stats


def _write_pairs(mols, done, namers, out: Path, stats: NamingStats) -> None:
    """Deduplicated verified pairs for the requested molecules, and the counts behind them."""
    per_namer = {n: Counter() for n in namers}
    rejections: Counter = Counter()
    n_pairs = n_with = 0
    with open(out / "pairs.jsonl", "w") as f:
        for smi, key in mols:
            by_name: dict[str, list[str]] = {}
            latest = {r["namer"]: r for r in done.get(key, [])}  # the newest record per namer
            for r in (latest[n] for n in namers if n in latest):
                per_namer[r["namer"]]["named"] += bool(r["name"])
                if r["ok"]:
                    per_namer[r["namer"]]["verified"] += 1
                    by_name.setdefault(r["name"], [])
                    if r["namer"] not in by_name[r["name"]]:
                        by_name[r["name"]].append(r["namer"])
                else:
                    rejections[f"{r['namer']}:{r['reason']}"] += 1
            for name, who in by_name.items():
                f.write(json.dumps({"smiles": smi, "inchikey": key, "name": name, "namer": who[0], "namers": who}) + "\n")
            n_pairs += len(by_name)
            n_with += bool(by_name)
    stats.per_namer = {n: dict(c) for n, c in per_namer.items()}
    stats.rejections = dict(rejections.most_common())
    stats.n_pairs, stats.n_molecules_with_pair = n_pairs, n_with


def read_pairs(out_dir: str | Path, one_per_molecule: bool = False, prefer: tuple[str, ...] = ("openclatura", "nispo")) -> list[dict]:
    """The verified pairs a build wrote (`out_dir/pairs.jsonl`); `one_per_molecule` keeps one name
    per molecule, from the first namer in `prefer` that gave a verified name."""
    pairs = [rec for _, rec in read_jsonl_records(Path(out_dir) / "pairs.jsonl")]
    if not one_per_molecule:
        return pairs
    rank = lambda p: min((prefer.index(n) for n in p["namers"] if n in prefer), default=len(prefer))
    best: dict[str, dict] = {}
    for p in pairs:
        if p["inchikey"] not in best or rank(p) < rank(best[p["inchikey"]]):
            best[p["inchikey"]] = p
    return list(best.values())
