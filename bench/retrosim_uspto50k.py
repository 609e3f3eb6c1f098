"""RetroSim on the full USPTO-50k test set (class unknown), against a nearest-neighbour-copy baseline.

Top-k exact match of canonical sorted reactant sets; an invalid or missing candidate counts as wrong.
Predictions are appended to a resume file as they finish, so an interrupted run picks up where it stopped.

The standard split's training reactions include some whose product is a test product (the same molecule by
connectivity, often the identical reaction): `--index leak-free` fits the index without them
(`naturelm.data.splits.leak_free_index`); the result records how many test products the index holds either way.
`--only-leaked` scores only the test reactions whose product the standard index holds (where the two differ).

    nice -n 10 .venv/bin/python bench/retrosim_uspto50k.py [--limit N] [--data PATH] [--index leak-free]
"""
from __future__ import annotations

import sys

import argparse
import hashlib
import json
import os
import platform
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

KS = (1, 3, 5, 10)
LITERATURE = {"source": "Coley et al. 2017 (RetroSim, class unknown), as reported in later USPTO-50k papers",
              "top1": [37.3, 39.0], "top3": [54.7, 59.0], "top5": [63.3, 68.0], "top10": [74.1, 75.0]}


def _canonical_set(smiles: str) -> str | None:
    from naturelm.language.codecs import try_canonical

    return try_canonical(smiles, reactant_set=True) if smiles else None


def _topk_accuracy(predictions: list[list[str]], golds: list[str], ks=KS) -> dict[str, float]:
    """Percentage of inputs whose gold reactant set is among the first k candidates (canonical set match).

    Strict: an invalid or duplicate candidate still takes its slot; an empty candidate list is wrong."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} golds")
    if not golds:
        return {f"top{k}": 0.0 for k in ks}
    ranks = []
    for cands, gold in zip(predictions, golds):
        gold = _canonical_set(gold)
        hits = [i for i, c in enumerate(cands) if gold is not None and _canonical_set(c) == gold]
        ranks.append(hits[0] + 1 if hits else None)
    return {f"top{k}": 100.0 * sum(r is not None and r <= k for r in ranks) / len(golds) for k in ks}


def _nn_copy(model, products: list[str], k: int) -> list[list[str]]:
    """Baseline: the reactant sets of the most similar training products, copied in similarity order."""
    from naturelm.language.codecs import try_canonical

    out = []
    for p in products:
        prod = try_canonical(p)
        cands: list[str] = []
        if prod is not None:
            for key, _ in model.products.query(prod, k=5 * k):
                r = model.reactants.smiles[int(key)]
                if r not in cands:
                    cands.append(r)
                if len(cands) == k:
                    break
        out.append(cands)
    return out


def _resume_file(data_path: Path, n_train: int, n_neighbours: int, scope: tuple) -> Path:
    tag = json.dumps([str(data_path.resolve()), n_train, n_neighbours, list(scope)])
    base = Path(os.environ.get("NATURELM_CACHE", Path.home() / ".cache" / "naturelm"))
    return base / "bench" / f"retrosim_uspto50k-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="USPTO-50k file or folder (default: $NATURELM_USPTO50K or ../shared)")
    ap.add_argument("--limit", type=int, default=None, help="evaluate only the first N test reactions")
    ap.add_argument("--neighbours", type=int, default=100, help="training neighbours whose templates are applied")
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--index", choices=("standard", "leak-free"), default="standard",
                    help="leak-free: no training reaction whose product is a test product (by connectivity)")
    ap.add_argument("--only-leaked", action="store_true",
                    help="score only test reactions whose product the standard index holds")
    add_output_args(ap)  # NAME: retrosim_uspto50k[_leak-free][_only-leaked].json
    ap.add_argument("--no-resume", action="store_true", help="ignore and overwrite saved partial predictions")
    args = ap.parse_args()

    import rdkit
    from tqdm.auto import tqdm

    from naturelm.data.sources.uspto50k import load_uspto50k
    from naturelm.data.splits import index_leaks, leak_free_index, mol_key
    from naturelm.tasks.baselines.retrosim import RetroSim

    t0 = time.perf_counter()
    data = load_uspto50k(args.data, progress=True)
    train, test = data.split("train"), data.split("test")
    standard_leaks = index_leaks(train, test)
    if args.only_leaked:
        held = {mol_key(r.product) for r in train}
        test = [r for r in test if mol_key(r.product) in held]
    if args.index == "leak-free":
        train = leak_free_index(train, data.split("test"))
    index_overlap = index_leaks(train, data.split("test"))
    if args.limit:
        test = test[: args.limit]
    t_load = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = RetroSim(n_neighbours=args.neighbours, processes=args.processes).fit(train)
    t_fit = time.perf_counter() - t0

    products, golds = [r.product for r in test], [r.reactants for r in test]
    resume = _resume_file(data.path, len(train), args.neighbours, (args.limit, args.only_leaked))
    done: list[list[str]] = []
    if resume.exists() and not args.no_resume:
        done = [json.loads(line) for line in resume.read_text().splitlines() if line.strip()]
        done = done[: len(products)]
    resume.parent.mkdir(parents=True, exist_ok=True)
    n_resumed = len(done)
    t0 = time.perf_counter()
    with open(resume, "w" if args.no_resume or not done else "a") as f:
        bar = tqdm(total=len(products), initial=len(done), desc="retrosim")
        for cands in model.iter_predict(products[len(done):], k=max(KS)):
            texts = [c.text for c in cands]
            f.write(json.dumps(texts) + "\n")
            f.flush()
            done.append(texts)
            bar.update()
        bar.close()
    t_retrosim = time.perf_counter() - t0

    t0 = time.perf_counter()
    nn = _nn_copy(model, products, max(KS))
    t_nn = time.perf_counter() - t0

    rs_acc, nn_acc = _topk_accuracy(done, golds), _topk_accuracy(nn, golds)
    result = {
        "dataset": "USPTO-50k (MHN split), reaction class unknown",
        "n_train_reactions": len(train), "n_train_with_template": len(model), "n_test": len(test),
        "limit": args.limit, "neighbours": args.neighbours, "processes": args.processes,
        "index": args.index, "only_leaked": args.only_leaked,
        "index_overlap_with_test": index_overlap, "standard_index_overlap_with_test": standard_leaks,
        "retrosim": {**rs_acc, "empty": sum(not c for c in done), "wall_s": round(t_retrosim, 1),
                     "s_per_product_this_run": round(t_retrosim / max(1, len(products) - n_resumed), 4),
                     "resumed_from": n_resumed},
        "nn_copy_baseline": {**nn_acc, "empty": sum(not c for c in nn), "wall_s": round(t_nn, 1)},
        "ratio_retrosim_over_nn_copy": {k: (round(rs_acc[k] / nn_acc[k], 3) if nn_acc[k] else None) for k in rs_acc},
        "wall_s": {"load": round(t_load, 1), "fit": round(t_fit, 1), "retrosim": round(t_retrosim, 1),
                   "nn_copy": round(t_nn, 1)},
        "literature_retrosim": LITERATURE,
        "env": {"rdkit": rdkit.__version__, "python": platform.python_version(), "cpus": os.cpu_count()},
    }
    suffix = ("_leak-free" if args.index == "leak-free" else "") + ("_only-leaked" if args.only_leaked else "")
    out = output_path(args, f"retrosim_uspto50k{suffix}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("retrosim", "nn_copy_baseline", "ratio_retrosim_over_nn_copy")}, indent=2))
    resume.unlink()


if __name__ == "__main__":
    main()
