"""The data card: what a build holds (domains, tasks, sources, leakage) and the sha256 of every built file."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

HASHED = ("pretrain", "instructions", "tokenizer")


def file_sha256(path: Path, progress: bool = False) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (built files, shards, cached indices). `progress`: a bar on
    stderr once hashing has taken more than a second (a large file on a slow disk)."""
    from tqdm.auto import tqdm

    h = hashlib.sha256()
    with open(path, "rb") as f, tqdm(total=os.fstat(f.fileno()).st_size, desc=f"sha256 {Path(path).name}", unit="B",
                                     unit_scale=True, delay=1.0, disable=not progress, leave=False) as bar:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            bar.update(len(chunk))
    return h.hexdigest()


def data_sha256(out: Path) -> dict:
    """sha256 per built file (relative path) plus `all`, the hash of that listing: equal builds give equal hashes."""
    files = sorted(p for d in HASHED if (out / d).is_dir() for p in (out / d).rglob("*") if p.is_file())
    per_file = {str(p.relative_to(out)): file_sha256(p) for p in files}
    listing = "\n".join(f"{k} {v}" for k, v in per_file.items())
    return {"all": hashlib.sha256(listing.encode()).hexdigest(), "files": per_file}


def write_card(out: Path, card: dict) -> Path:
    path = out / "card.json"
    path.write_text(json.dumps(card, indent=1, sort_keys=False, ensure_ascii=False) + "\n")
    return path


def summary(card: dict) -> str:
    """A few lines for the terminal: tasks, domains, leakage, hash."""
    lines = [f"recipe {card['recipe']['name']}: {card['build']['seconds']:.0f} s, sha256 {card['sha256']['all'][:16]}…"]
    lines.append("tasks (train/valid/test):")
    for t, c in card["tasks"].items():
        lines.append(f"  {t:26s} {c['train']:>7d} {c['valid']:>6d} {c['test']:>6d}")
    lines.append("domains (documents selected / tokens):")
    for d, c in card["domains"].items():
        lines.append(f"  {d:14s} {c['selected']:>8d} {c['tokens']:>10d}")
    missing = [s["name"] for s in card["sources"] if s.get("status") == "missing"]
    if missing:
        lines.append(f"missing optional sources: {', '.join(missing)}")
    leak = card["leakage"]
    lines.append(f"leakage: removed {leak['removed_train_records_total']} train records, "
                 f"{leak['removed_pretrain_documents']} documents; overlap after = {leak['overlap_after']}")
    return "\n".join(lines)


def compare_builds(shipped: dict, built: dict) -> dict:
    """Whether a build reproduces a shipped data card: both `sha256.all` values, equal or not, and the files whose
    hashes differ (or exist in only one of them)."""
    a, b = shipped.get("sha256", {}), built.get("sha256", {})
    fa, fb = a.get("files", {}), b.get("files", {})
    differing = sorted(f for f in set(fa) | set(fb) if fa.get(f) != fb.get(f))
    return {"shipped_sha256": a.get("all"), "built_sha256": b.get("all"),
            "reproduced": a.get("all") is not None and a.get("all") == b.get("all"), "differing_files": differing}


def record_reproduction(shipped_card: str | Path, built_card: str | Path) -> dict:
    """Compare a fresh build with the shipped card and write the result into the built card as `reproduction`
    (`make naturelm-tiny` does this before the new card replaces the shipped one); prints the verdict."""
    shipped, built_path = json.loads(Path(shipped_card).read_text()), Path(built_card)
    built = json.loads(built_path.read_text())
    result = {"compared_with": str(shipped_card), **compare_builds(shipped, built)}
    built["reproduction"] = result
    built_path.write_text(json.dumps(built, indent=1, ensure_ascii=False) + "\n")
    verdict = "reproduces" if result["reproduced"] else f"differs from ({len(result['differing_files'])} files)"
    print(f"data build {built_path.parent}: {verdict} the shipped card {shipped_card} (sha256 "
          f"{str(result['built_sha256'])[:16]} vs {str(result['shipped_sha256'])[:16]})")
    return result
