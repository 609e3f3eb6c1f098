"""`naturelm data corpus` on real data the machine has: records/s per worker, 1 vs 2 workers in the same run,
peak RSS at 10% and 100% of the input, and the same sha256 across runs and worker counts.

Inputs (prepared once under $NATURELM_CACHE/corpus_bench, as the files a user would bring):
- molecules: MOSES test + test_scaffolds (`molsets==0.3.1`, CSV.gz, column SMILES; 352k rows)
- proteins: Swiss-Prot 2014 from Debian `metastudent-data` (BLAST v4 BPO/MFO/CCO databases -> 3 FASTA.gz files,
  1.34M records of ~0.5M distinct proteins: exact dedup at scale)
- RNA: SILVA 93 SSU + LSU rRNA from Debian `ncbi-rrna-data` (BLAST v4 2-bit -> FASTA.gz; sequences with IUPAC
  ambiguity codes are left out of the conversion and counted)
- materials: CrabNet formula CSVs (`crabnet==2.0.8`, the 13 matbench tables with a formula column, 408k rows)
The Debian packages need not be installed: `apt-get download metastudent-data ncbi-rrna-data` and
`dpkg-deb -x PKG.deb DIR` for each, then pass `--debian-root DIR` (default: / then $NATURELM_CACHE/debian).

Runs (each a `naturelm data corpus` subprocess, niced; peak RSS = the largest process's ru_maxrss):
  10% of every input with 1 worker, again with 2 workers (and another bucket count) -> same sha256,
  records/s per worker; 100% with 2 workers -> peak RSS against the 10% run with 2 workers.

  python bench/corpus_build.py --out bench/results/corpus_build.json
"""
from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STDAA = "-ABCDEFGHIKLMNPQRSTVWXYZU*OJ"
NA2 = "ACGT"


def cache_dir() -> Path:
    return Path(os.environ.get("NATURELM_CACHE", Path.home() / ".cache" / "naturelm")) / "corpus_bench"


def _index(path: Path):
    """(type, n, header offsets, sequence offsets, ambiguity offsets or None) of a BLAST v4 .pin/.nin file."""
    b = path.read_bytes()
    version, kind = struct.unpack(">ii", b[:8])
    if version != 4:
        raise SystemExit(f"{path}: BLAST db version {version}, expected 4")
    pos = 8
    for _ in range(2):  # title, date
        (n,) = struct.unpack(">i", b[pos : pos + 4])
        pos += 4 + n
    (n_seq,) = struct.unpack(">i", b[pos : pos + 4])
    pos += 4 + 8 + 4  # count, total residues (int64 LE), max length
    arrays = []
    for _ in range(2 if kind == 1 else 3):
        arrays.append(struct.unpack(f">{n_seq + 1}i", b[pos : pos + 4 * (n_seq + 1)]))
        pos += 4 * (n_seq + 1)
    return kind, n_seq, arrays


def blast_to_fasta(db: Path, out: Path) -> dict:
    """Convert a BLAST v4 protein or nucleotide database (`db` without extension) to FASTA.gz."""
    pin = db.with_name(db.name + ".pin")
    kind, n, arrays = _index(pin if pin.exists() else db.with_name(db.name + ".nin"))
    seq = (db.with_name(db.name + (".psq" if kind == 1 else ".nsq"))).read_bytes()
    import numpy as np

    aa = bytes.maketrans(bytes(range(len(STDAA))), STDAA.encode())
    lut = np.frombuffer(NA2.encode(), dtype=np.uint8)
    skipped = 0
    tmp = out.with_suffix(".tmp")
    with gzip.open(tmp, "wt", compresslevel=3) as f:
        for i in range(n):
            if kind == 1:
                s = seq[arrays[1][i] : arrays[1][i + 1] - 1].translate(aa).decode()  # NUL-terminated NCBIstdaa
            else:
                start, amb, end = arrays[1][i], arrays[2][i], arrays[1][i + 1]
                if end > amb:  # ambiguity codes stored apart from the 2-bit bases: leave the sequence out
                    skipped += 1
                    continue
                packed = np.frombuffer(seq[start:amb], dtype=np.uint8)
                codes = np.stack([(packed >> 6) & 3, (packed >> 4) & 3, (packed >> 2) & 3, packed & 3], axis=1).ravel()
                length = 4 * (len(packed) - 1) + int(packed[-1] & 3)  # the last byte holds 0-3 bases
                s = lut[codes[:length]].tobytes().decode()
            f.write(f">{db.name}:{i}\n{s}\n")
    tmp.rename(out)
    return {"database": str(db), "sequences": n, "written": n - skipped, "left_out_ambiguous": skipped}


def prepare(debian_roots: list[Path]) -> dict[str, list[str]]:
    """The benchmark's input files (converted once), per domain."""
    c = cache_dir()
    c.mkdir(parents=True, exist_ok=True)

    def find(rel: str) -> Path:
        for root in debian_roots:
            if (root / rel).parent.is_dir():
                return root / rel
        raise SystemExit(f"{rel} not found under {debian_roots}: apt-get download metastudent-data ncbi-rrna-data "
                         "&& dpkg-deb -x metastudent-data_*.deb DIR && dpkg-deb -x ncbi-rrna-data_*.deb DIR, "
                         "then --debian-root DIR")

    conversions = {}
    prot = []
    for onto in ("BPO", "MFO", "CCO"):
        out = c / f"swissprot_{onto}.fasta.gz"
        if not out.exists():
            conversions[out.name] = blast_to_fasta(find(f"usr/share/metastudent-data/dataset_201401/{onto}/goasp.fasta"), out)
        prot.append(str(out))
    rna = []
    for name in ("SSURef_93.fasta", "LSURef_93.fasta"):
        out = c / f"silva_{name.split('.')[0]}.fasta.gz"
        if not out.exists():
            conversions[out.name] = blast_to_fasta(find(f"usr/share/ncbi/data/{name}"), out)
        rna.append(str(out))
    if conversions:
        (c / "conversions.json").write_text(json.dumps(conversions, indent=1))
    moses = Path(importlib.util.find_spec("moses").submodule_search_locations[0]) / "dataset" / "data"
    crab = Path(importlib.util.find_spec("crabnet").submodule_search_locations[0]) / "data"
    mats = sorted(str(p) for p in (crab / "matbench").glob("*.csv")
                  if p.read_text().split("\n", 1)[0].lower().startswith("formula"))
    # 2.28M records within what a shared 2-core machine can build in an hour: MOSES test + test_scaffolds
    # (352k; RDKit canonicalisation is the costliest step per record, the 1.58M train rows would triple the time),
    # the three Swiss-Prot files (1.34M records, 0.52M distinct: dedup at scale), SILVA, CrabNet matbench
    return {"molecule": [str(moses / f"{s}.csv.gz") for s in ("test", "test_scaffolds")], "protein": prot,
            "rna": rna, "material": mats}


def subset(files: dict[str, list[str]], fraction: float, folder: Path) -> dict[str, list[str]]:
    """The first `fraction` of the records of every file (CSV rows after the header, FASTA records)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for domain, paths in files.items():
        out[domain] = []
        for i, p in enumerate(paths):
            dst = folder / f"{domain}_{i}_{Path(p).name}"
            out[domain].append(str(dst))
            if dst.exists():
                continue
            opener = gzip.open if p.endswith(".gz") else open
            with opener(p, "rt") as f:
                lines = f.read().splitlines()
            if p.endswith((".fasta.gz", ".fa")):
                starts = [k for k, line in enumerate(lines) if line.startswith(">")]
                cut = starts[int(len(starts) * fraction)] if int(len(starts) * fraction) < len(starts) else len(lines)
                keep = lines[:cut]
            else:
                keep = lines[: 1 + int((len(lines) - 1) * fraction)]
            with (gzip.open if p.endswith(".gz") else open)(dst, "wt") as f:
                f.write("\n".join(keep) + "\n")
    return out


def run_build(files: dict[str, list[str]], out: Path, workers: int, buckets: int | None, exclude: list[str]) -> dict:
    args = [sys.executable, "-m", "naturelm.cli", "data", "corpus", "--out", str(out), "--workers", str(workers),
            "--valid-fraction", "0.01"]
    for domain, paths in files.items():
        for p in paths:
            args += ["--input", f"{domain}={p}" + ("::column=SMILES" if domain == "molecule" else "")]
    if buckets:
        args += ["--buckets", str(buckets)]
    for e in exclude:
        args += ["--exclude", e]
    t0 = time.time()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    # a wrapper process reports the peak RSS of the largest process of the build (ru_maxrss of its descendants)
    wrapper = ("import resource, subprocess, sys; rc = subprocess.run(sys.argv[1:]).returncode; "
               "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(rc)")
    proc = subprocess.run(["nice", "-n", "19", sys.executable, "-c", wrapper, *args], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wall = time.time() - t0
    if proc.returncode:
        raise SystemExit(f"build failed:\n{proc.stderr[-3000:]}")
    peak = int(proc.stdout.strip().splitlines()[-1])
    card = json.loads((out / "card.json").read_text())
    read = card["totals"]["read"]
    return {"workers": workers, "buckets": card["engine"]["buckets"], "wall_s": round(wall, 1),
            "stages_s": card["build"]["stages"], "records_read": read, "totals": card["totals"],
            "records_per_s": round(read / wall, 1), "records_per_s_per_worker": round(read / wall / workers, 1),
            "peak_rss_mb": round(peak / 1024, 1),
            "train_tokens": card["pretrain"]["train"]["tokens"], "shards": card["pretrain"]["train"]["shards"],
            "sha256": card["sha256"], "domains": {d: {"unique_documents": v["unique_documents"]["train"],
                                                      "train_tokens": v["tokens"]["train"]}
                                                  for d, v in card["domains"].items()},
            "rejected": {s: v["rejected"] for s, v in card["sources"].items() if v["rejected"]}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--debian-root", action="append", default=[])
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--exclude", action="append", default=[], help="test entities to drop (a built data dir)")
    ap.add_argument("--skip-full", action="store_true", help="only the 10%% runs")
    ap.add_argument("--runs", default=None, help="comma-separated subset of small_w1,small_w2,small_w2_b7,full_w2 "
                    "(default all; '' only assembles the results already in --work)")
    ap.add_argument("--work", default=None, help="build folder (default: $NATURELM_CACHE/corpus_bench/runs)")
    ap.add_argument("--out", default=None, help="JSON result (default: print)")
    a = ap.parse_args()
    roots = [Path(r) for r in a.debian_root] + [Path("/"), cache_dir().parent / "debian"]
    files = prepare(roots)
    work = Path(a.work) if a.work else cache_dir() / "runs"
    small = subset(files, a.fraction, cache_dir() / f"subset_{a.fraction}")
    result = {"machine": f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f} "
                         "(shared by several agents: all builds niced, numbers are under contention)",
              "inputs": {d: len(p) for d, p in files.items()}, "fraction": a.fraction, "exclude": a.exclude}
    conv = cache_dir() / "conversions.json"
    if conv.exists():
        result["blast_conversions"] = json.loads(conv.read_text())
    import shutil

    plan = {"small_w1": (small, 1, None), "small_w2": (small, 2, None), "small_w2_b7": (small, 2, 7),
            "full_w2": (files, 2, None)}
    todo = [r for r in a.runs.split(",") if r] if a.runs is not None else list(plan)
    if a.skip_full:
        todo = [r for r in todo if r != "full_w2"]
    for name in todo:
        fl, w, b = plan[name]
        shutil.rmtree(work / name, ignore_errors=True)
        res = run_build(fl, work / name, w, b, a.exclude)
        (work / f"{name}.json").write_text(json.dumps(res, indent=1))  # separate invocations can fill in runs
        print(name, json.dumps({k: res[k] for k in ("wall_s", "records_read", "records_per_s_per_worker",
                                                    "peak_rss_mb")}), flush=True)
    runs = {name: json.loads((work / f"{name}.json").read_text()) for name in plan if (work / f"{name}.json").exists()}
    result["runs"] = runs
    if {"small_w1", "small_w2"} <= set(runs):
        s = runs["small_w1"]
        same = {runs[r]["sha256"]["train"] for r in ("small_w1", "small_w2", "small_w2_b7") if r in runs}
        result["same_sha256_across_worker_and_bucket_counts"] = len(same) == 1
        result["compared_runs"] = [r for r in ("small_w1", "small_w2", "small_w2_b7") if r in runs]
        result["speedup_2_vs_1_workers"] = round(s["wall_s"] / runs["small_w2"]["wall_s"], 2)
    if "full_w2" in runs:
        f = runs["full_w2"]
        result["records_full"] = f["records_read"]
        if "small_w2" in runs:
            result["peak_rss_ratio_full_vs_10pct"] = round(f["peak_rss_mb"] / runs["small_w2"]["peak_rss_mb"], 2)
    text = json.dumps(result, indent=1)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
