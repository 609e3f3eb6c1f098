"""Generation throughput: our engine vs HF `model.generate` on the same tiny model and prompts, same run.

Modes: greedy, sampling n=10, beam 10. Reports tokens/s, candidates/s, peak memory (RSS on CPU, allocated on
CUDA) and their ratios to HF; asserts that greedy outputs are identical. Also measures what constrained decoding
does to validity (unconditional `<mol>` samples and retrosynthesis beams, constrained vs not). With --retro N
(needs --model and USPTO-50k): seconds per reaction of `NatureLM.retrosynthesis(k=10)` on the first N test products
and per product of `NatureLM.rank` on ~10 candidates, against the original implementations kept in
tests/generate_reference.py, in the same run, with the answers compared. Writes bench/results/generate_throughput.json.

    python bench/generate_throughput.py [--config tiny | --model CKPT] [--prompts 8] [--max-new-tokens 64]
    python bench/generate_throughput.py --model checkpoints/naturelm-tiny --retro 20 --skip-modes
"""
from __future__ import annotations

import sys

import argparse
import json
import platform
import statistics
import threading
import time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/results_path.py, also when imported
from results_path import add_output_args, output_path  # noqa: E402

PRODUCTS = ["CC(=O)Nc1ccc(O)cc1", "CC(C)Cc1ccc(C(C)C(=O)O)cc1", "O=C(O)c1ccccc1OC(C)=O", "CN1CCC[C@H]1c1cccnc1",
            "Cn1c(=O)c2c(ncn2C)n(C)c1=O", "COc1ccc2[nH]cc(CCNC(C)=O)c2c1", "CC(=O)OCC(=O)[C@@]1(O)CC[C@H]2[C@@H]3CCC4=CC(=O)C=C[C@]4(C)[C@H]3[C@@H](O)C[C@@]21C",
            "NC(=O)c1cnccn1", "OC[C@H]1O[C@@H](O)[C@H](O)[C@@H](O)[C@@H]1O", "Clc1ccc(cc1)C(c1ccccc1)N1CCNCC1"]


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 2 ms)."""

    def __enter__(self):
        import psutil

        self._proc, self._stop, self.peak = psutil.Process(), threading.Event(), 0
        self.start = self._proc.memory_info().rss

        def watch():
            while not self._stop.is_set():
                self.peak = max(self.peak, self._proc.memory_info().rss)
                time.sleep(0.002)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def timed(fn, reps: int, device: str):
    """(median seconds, result of the last run, peak memory bytes) of `fn()`."""
    import torch

    times, out = [], None
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    with PeakRSS() as mem:
        for _ in range(reps):
            t = time.perf_counter()
            out = fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
    peak = torch.cuda.max_memory_allocated() if device.startswith("cuda") else mem.peak
    return statistics.median(times), out, peak


def hf_tokens(seqs, width: int, stop_ids: set[int], pad: int) -> list[list[int]]:
    """HF output rows -> generated ids up to and including the first stop token."""
    rows = []
    for row in seqs[:, width:].tolist():
        out = []
        for t in row:
            out.append(t)
            if t in stop_ids:
                break
        while out and out[-1] == pad and pad not in stop_ids:
            out.pop()
        rows.append(out)
    return rows


def validity(lm, prompts: list[str], samples: int, max_new_tokens: int) -> dict:
    """Share of valid answers with and without constrained decoding (same model, seeds and budgets)."""
    out = {}
    for constrained in (False, True):
        key = "constrained" if constrained else "unconstrained"
        mols = lm.generate("<mol>", n=samples, raw=True, temperature=1.0, max_new_tokens=max_new_tokens,
                           constrained=constrained, max_retries=0)
        beams = lm.generate(prompts, num_beams=10, max_new_tokens=max_new_tokens, constrained=constrained,
                            expect="reactants")
        flat = [g for row in beams for g in row]
        out[key] = {
            "unconditional_mol_valid": sum(g.valid for g in mols) / len(mols),
            "unconditional_mol_closed": sum(g.raw.rstrip().endswith("</mol>") for g in mols) / len(mols),
            "unconditional_mol_unique_valid": len({g.canonical for g in mols if g.valid}) / len(mols),
            "retro_beam_valid": sum(g.valid for g in flat) / max(1, len(flat)),
            "retro_beam_in_reactants_tag": sum(g.tag == "reactants" for g in flat) / max(1, len(flat)),
            "retro_top1_valid": sum(bool(row) and row[0].valid for row in beams) / len(beams),
        }
    return out


def _same(old: list[list], new: list[list]) -> dict:
    """Whether two runs gave the same candidates in the same order, and the largest score difference."""
    keys = all([g.key for g in a] == [g.key for g in b] for a, b in zip(old, new)) and len(old) == len(new)
    diffs = [abs(x.score - y.score) for a, b in zip(old, new) for x, y in zip(a, b) if x.score > -1e30 < y.score]
    return {"identical_candidates": keys, "max_score_diff": max(diffs, default=0.0)}


def retro_speed(lm, n: int, k: int, max_new_tokens: int, batch: int = 16) -> dict:
    """Retrosynthesis (k beams, `batch` prompts per search as NatureLM's default) and rank (its k candidates) per
    test product: the original implementations vs the current ones."""
    import sys

    from naturelm.api import instruction
    from naturelm.data.sources.uspto50k import load_uspto50k

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from generate_reference import reference_beams, reference_rank

    products = [r.product for r in load_uspto50k(split="test").split("test")[:n]]
    prompts = [instruction("retrosynthesis", product=p) for p in products]

    def clocked(fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        return out, time.perf_counter() - wall, time.process_time() - cpu

    out: dict = {"products": n, "k": k, "max_new_tokens": max_new_tokens, "batch_size": batch}
    old, w_old, c_old = clocked(lambda: reference_beams(lm, prompts, k, max_new_tokens, batch_size=batch))
    new, w_new, c_new = clocked(lambda: lm.retrosynthesis(products, k=k, max_new_tokens=max_new_tokens,
                                                          batch_size=batch))
    out["retrosynthesis"] = {"old_s_per_reaction": w_old / n, "new_s_per_reaction": w_new / n,
                             "old_cpu_s_per_reaction": c_old / n, "new_cpu_s_per_reaction": c_new / n,
                             "speedup_wall": w_old / w_new, "speedup_cpu": c_old / c_new, **_same(old, new)}
    cands = [[g.entity for g in row] for row in new]
    old, w_old, c_old = clocked(lambda: [reference_rank(lm, p, c, tag="reactants") for p, c in zip(prompts, cands)])
    one, w_one, c_one = clocked(lambda: [lm.rank(p, c, tag="reactants") for p, c in zip(prompts, cands)])
    many, w_many, c_many = clocked(lambda: lm.rank(prompts, cands, tag="reactants"))
    out["rank"] = {"candidates_per_product": sum(map(len, cands)) / n,
                   "old_s_per_product": w_old / n, "new_s_per_product": w_one / n,
                   "new_batched_s_per_product": w_many / n,
                   "old_cpu_s_per_product": c_old / n, "new_cpu_s_per_product": c_one / n,
                   "new_batched_cpu_s_per_product": c_many / n, "speedup_wall": w_old / w_one,
                   "speedup_cpu": c_old / c_one, "speedup_batched_cpu": c_old / c_many,
                   **_same(old, one), "batched": _same(old, many)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny", help="model config name (naturelm.model.configs), randomly initialised")
    ap.add_argument("--model", default=None, help="a trained checkpoint directory instead of a random --config model")
    ap.add_argument("--validity-samples", type=int, default=200, help="unconditional samples per validity setting")
    ap.add_argument("--validity-only", action="store_true", help="skip the throughput comparison")
    ap.add_argument("--skip-modes", action="store_true",
                    help="skip the HF comparison and validity (with --retro; the other results in --out are kept)")
    ap.add_argument("--retro", type=int, default=0,
                    help="time retrosynthesis + rank on this many USPTO-50k test products")
    ap.add_argument("--retro-max-new-tokens", type=int, default=256,
                    help="answer budget of --retro (NatureLM's default)")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a shared 2-core box)")
    ap.add_argument("--device", default="cpu")
    add_output_args(ap)
    args = ap.parse_args()
    args.out = str(output_path(args, "generate_throughput.json"))

    import torch

    from naturelm.api import NatureLM, instruction
    from naturelm.generate.engine import beam_width
    from naturelm.language import NatureTokenizer
    from naturelm.model.configs import build_model

    torch.set_num_threads(args.threads)
    if args.model:
        lm = NatureLM.load(args.model, device=args.device, dtype="float32")
        lm.batch_size = args.prompts
        model, tok = lm.model, lm.tokenizer
    else:
        tok = NatureTokenizer()
        model = build_model(args.config, tokenizer=tok, seed=0, device=args.device).eval()
        lm = NatureLM(model, tok, batch_size=args.prompts)
    eng = lm.engine
    prompts = [instruction("retrosynthesis", product=p) for p in (PRODUCTS * 10)[: args.prompts]]
    ids = eng.encode(prompts)
    cons = eng.constraints(False)
    stop = sorted(cons.stop_ids)
    in_ids, mask, _ = eng._left_pad(ids)
    width = in_ids.shape[1]
    T, N, K, L = 0.7, 10, 10, args.max_new_tokens
    hf_common = dict(input_ids=in_ids, attention_mask=mask, max_new_tokens=L, eos_token_id=stop,
                     pad_token_id=tok.pad_token_id)

    def ours(mode: str, constrained: bool, width: int | None = None):
        if mode == "greedy":
            return eng.sample(ids, 1, 0.0, 1.0, L, constrained)
        if mode == "sample":
            return eng.sample(ids, N, T, 1.0, L, constrained, seed=0)
        return eng.beam(ids, width or beam_width(K), L, constrained)

    def hf(mode: str):
        with torch.inference_mode():
            if mode == "greedy":
                return model.generate(**hf_common, do_sample=False)
            if mode == "sample":
                return model.generate(**hf_common, do_sample=True, temperature=T, top_p=1.0, top_k=0,
                                      num_return_sequences=N)
            return model.generate(**hf_common, do_sample=False, num_beams=K, num_return_sequences=K)

    results = {"settings": {"config": args.model or args.config, "prompts": len(ids), "max_new_tokens": L, "reps": args.reps,
                            "threads": args.threads, "device": args.device, "temperature": T, "n": N, "beams": K,
                            "our_beam_width": beam_width(K), "torch": torch.__version__,
                            "python": platform.python_version(), "machine": platform.machine(),
                            "params": sum(p.numel() for p in model.parameters())},
               "modes": {}}
    if args.retro:
        if not args.model:
            ap.error("--retro needs a trained --model")
        results["retro"] = {"model": args.model, "threads": args.threads,
                            **retro_speed(lm, args.retro, K, args.retro_max_new_tokens)}
        print("retro", json.dumps(results["retro"]))
    for mode in () if args.validity_only or args.skip_modes else ("greedy", "sample", "beam"):
        hf(mode), ours(mode, False)  # warm-up
        t_hf, out_hf, mem_hf = timed(lambda: hf(mode), args.reps, args.device)
        hf_rows = hf_tokens(out_hf, width, set(stop), tok.pad_token_id)
        row = {"hf": {"seconds": t_hf, "tokens": sum(map(len, hf_rows)), "candidates": len(hf_rows), "peak_mem_bytes": mem_hf}}
        variants = [("ours", False, None), ("ours_constrained", True, None)]
        if mode == "beam":  # our default runs 2k beams to return k distinct answers; at k beams it matches HF's work
            variants.append(("ours_same_width", False, K))
        for name, constrained, w in variants:
            t, out, mem = timed(lambda: ours(mode, constrained, w), args.reps, args.device)
            if mode == "beam" and w is None:  # candidates = distinct answers after canonicalisation, as returned
                gens = lm.generate(prompts, num_beams=K, max_new_tokens=L, constrained=constrained)
                n_cand, n_tok = sum(map(len, gens)), sum(len(h.ids) for hyps in out for h in hyps[:K])
            else:
                n_cand, n_tok = sum(len(hyps[:K]) for hyps in out), sum(len(h.ids) for hyps in out for h in hyps[:K])
            row[name] = {"seconds": t, "tokens": n_tok, "candidates": n_cand, "peak_mem_bytes": mem}
            if mode == "greedy" and not constrained:
                same = [h.ids for (h,) in out] == hf_rows
                row["greedy_identical"] = same
                assert same, "greedy outputs differ from HF model.generate"
        for r in row.values():
            if isinstance(r, dict):
                r["tokens_per_s"] = r["tokens"] / r["seconds"]
                r["candidates_per_s"] = r["candidates"] / r["seconds"]
        for name, _, _ in variants:
            row[f"{name}_vs_hf"] = {k: row[name][k] / row["hf"][k] for k in ("tokens_per_s", "candidates_per_s")}
            row[f"{name}_vs_hf"]["peak_mem"] = row[name]["peak_mem_bytes"] / max(1, row["hf"]["peak_mem_bytes"])
        results["modes"][mode] = row
        print(mode, json.dumps({k: (v if not isinstance(v, dict) else {a: round(b, 3) if isinstance(b, float) else b
                                                                        for a, b in v.items()}) for k, v in row.items()}))
    if not args.skip_modes:
        results["validity"] = validity(lm, prompts, args.validity_samples, L)
        print("validity", json.dumps(results["validity"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.skip_modes and Path(args.out).is_file():  # only the retro timing is new: keep the rest of the file
        results = {**json.loads(Path(args.out).read_text()), "retro": results.get("retro")}
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
