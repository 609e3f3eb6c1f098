"""CPU inference: HF `generate` fp32 (baseline) against our engine in fp32, fp16, int8, int8-dynamic and int4, in one
run.

Two models: a 1B-shaped Llama with the released vocabulary (130,239 ids; random weights, seed 0, built once in
bfloat16 and saved to a scratch directory) and NatureLM-tiny (checkpoints/naturelm-tiny). Per path: tokens/s
(wall clock and per CPU second of the process) for greedy batch 1 and batch 8, beam 10 (like for like with HF's
10 beams, and the 20 beams `generate(num_beams=10)` runs: `COMPUTES`) and sampling n = 10; decode tokens/s of
greedy batch 1 (prefill excluded: the run with 1 new token is subtracted from the run with T) as a fraction of its
memory-bandwidth bound (weight bytes read per step / read bandwidth measured in the same process right before, a
sum over 256 MiB); peak RSS while decoding; agreement with our fp32 (greedy tokens over 20 prompts, teacher-forced
top-1 and free-running position by position, and the top-1 of a 10-beam retrosynthesis on NatureLM-tiny over
USPTO-50k test products).

The machine is shared and its speed drifts by tens of percent over seconds: each round runs mode by mode, every
path of a model back to back for a mode (in an order rotated each round), and the JSON reports the medians over
rounds with every round's numbers. Each model's paths share one process (the 1B one holds about
12 GB: its fp32, fp16, int8, int8-dynamic and int4 copies). A section skipped (--skip-big / --skip-tiny) is kept from
the output file. `bench/cpu_inference_doc.py` writes docs/inference.md's tables from the JSON.

    python bench/cpu_inference.py [--rounds 3] [--big-tokens 16] [--tiny-tokens 64] [--retro 100] [--note TEXT]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_path import add_output_args, output_path  # noqa: E402
from generate_throughput import PRODUCTS, PeakRSS, hf_tokens  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PATHS = ("hf_fp32", "ours_fp32", "ours_fp16", "ours_int8", "ours_int8dyn", "ours_int4", "ours_gguf_f16",
         "ours_gguf_q8_0", "ours_gguf_q4_0")
QUANT = {"hf_fp32": None, "ours_fp32": None, "ours_fp16": "fp16", "ours_int8": "int8", "ours_int8dyn": "int8-dynamic",
         "ours_int4": "int4", "ours_gguf_f16": "gguf-f16", "ours_gguf_q8_0": "gguf-q8_0", "ours_gguf_q4_0": "gguf-q4_0"}
QUANTIZED = PATHS[2:]
COMPUTES = {
    "greedy_b1": "2 prompts one by one, greedy, unconstrained; HF generate(do_sample=False) / our Engine.sample",
    "greedy_b8": "8 prompts in one left-padded batch, greedy",
    "beam10": ("like for like: 10 beams on 1 prompt returning 10 sequences (HF generate num_beams=10, "
               "num_return_sequences=10, early_stopping=False; ours Engine.beam width 10, the 10 best finished "
               "or unfinished hypotheses); tokens counted over the 10 returned"),
    "beam10_distinct": ("ours only, what NatureLM.generate(num_beams=10) runs: 20 beams (beam_width(10)) so that "
                        "10 answers stay after canonical duplicates merge; ratio against HF's 10-beam run"),
    "sample10": "1 prompt, n=10 samples at temperature 0.7, top_p 1, top_k off",
}
N_SAMPLES, K_BEAMS, TEMPERATURE = 10, 10, 0.7
MODES = ("greedy_b1", "greedy_b8", "beam10", "beam10_distinct", "sample10")


def prompts20() -> list[str]:
    """NatureLM-tiny's prompts: 10 retrosynthesis and 10 naming instructions (40-90 tokens each)."""
    from naturelm.api import instruction

    return ([instruction("retrosynthesis", product=p) for p in PRODUCTS]
            + [instruction("smiles_to_iupac", mol=p) for p in PRODUCTS])


def short_prompts20() -> list[str]:
    """The 1B model's prompts, raw and short (5-8 tokens): decoding, not prefill, is measured (a 1B prefill of
    a 60-token instruction costs as much as dozens of decode steps on this CPU)."""
    starts = ["CCO", "CC(=O)", "c1ccccc1", "CN1C", "O=C(O)", "CCN", "Clc1ccc", "COc1", "NC(=O)", "CC(C)C"]
    return [f"<mol>{s}" for s in starts] + [f"<product>{s}" for s in starts]


def read_bandwidth(mib: int = 256, reps: int = 5) -> float:
    """Bytes per second read by a sum over `mib` MiB of float32 (median of `reps`)."""
    import torch

    a = torch.ones(mib * 2 ** 20 // 4)
    a.sum()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        a.sum()
        times.append(time.perf_counter() - t)
    return a.numel() * 4 / statistics.median(times)


def load(path_name: str, checkpoint: Path, threads: int | None = None):
    """The path's model; `threads`: torch's threads (None: what `NatureLM.load` chooses for the model). A gguf
    path converts in a fresh cache folder (its load time includes the conversion), removed afterwards."""
    from naturelm.api import NatureLM

    quant = QUANT[path_name]
    with tempfile.TemporaryDirectory(prefix="naturelm-bench-gguf-") as cache, \
            mock.patch.dict(os.environ, NATURELM_CACHE=cache):
        return NatureLM.load(checkpoint, dtype=None if quant else "float32", quantize=quant, threads=threads)


def run_modes(lm, path_name: str, prompts: list[str], tokens: int, raw: bool = False, distinct: bool = True,
              modes: tuple = MODES) -> dict:
    """Seconds and new tokens of the given modes (`MODES`) for one path; greedy batch 1 also measures the read
    bandwidth and the fraction of the bandwidth bound."""
    import torch

    from naturelm.generate.engine import beam_width
    from naturelm.generate.quantize import weight_bytes_per_token

    eng, tok = lm.engine, lm.tokenizer
    stop = sorted(eng.constraints(False).stop_ids)
    ids = eng.encode(prompts, raw=raw)
    hf = path_name.startswith("hf")

    def decode(rows: list[list[int]], mode: str, new: int):
        """(seconds, new tokens, token rows, CPU seconds of this process) of one call."""
        t, cpu = time.perf_counter(), time.process_time()
        if hf:
            x, mask, _ = eng._left_pad(rows)
            kw = dict(input_ids=x, attention_mask=mask, max_new_tokens=new, eos_token_id=stop,
                      pad_token_id=tok.pad_token_id)
            with torch.inference_mode():
                if mode == "greedy":
                    out = lm.model.generate(**kw, do_sample=False)
                elif mode == "sample":
                    out = lm.model.generate(**kw, do_sample=True, temperature=TEMPERATURE, top_p=1.0, top_k=0,
                                            num_return_sequences=N_SAMPLES)
                else:
                    out = lm.model.generate(**kw, do_sample=False, num_beams=K_BEAMS, num_return_sequences=K_BEAMS)
            got = hf_tokens(out, x.shape[1], set(stop), tok.pad_token_id)
        elif mode == "greedy":
            got = [h.ids for (h,) in eng.sample(rows, 1, 0.0, 1.0, new, False)]
        elif mode == "sample":
            got = [h.ids for hyps in eng.sample(rows, N_SAMPLES, TEMPERATURE, 1.0, new, False) for h in hyps]
        elif mode == "beam":
            got = [h.ids for hyps in eng.beam(rows, K_BEAMS, new, False) for h in hyps[:K_BEAMS]]
        else:
            got = [h.ids for hyps in eng.beam(rows, beam_width(K_BEAMS), new, False) for h in hyps[:K_BEAMS]]
        return time.perf_counter() - t, sum(map(len, got)), got, time.process_time() - cpu

    def timed(mode: str, rows, new: int) -> dict:
        s, n, _, cpu = decode(rows, mode, new)
        return {"seconds": s, "cpu_seconds": cpu, "tokens": n, "tokens_per_s": n / s, "tokens_per_cpu_s": n / cpu}

    out: dict = {}
    decode(ids[:1], "greedy", 2)  # warm-up
    with PeakRSS() as mem:
        if "greedy_b1" in modes:
            out["weight_bytes_per_step"] = (weight_bytes_per_token(lm.model) if eng.native is None
                                            else eng.native.step_bytes)  # llama.cpp's: its GGUF tensors
            out["read_bandwidth_bytes_per_s"] = read_bandwidth()
            one = [decode([p], "greedy", 1) for p in ids[:2]]
            full = [decode([p], "greedy", tokens) for p in ids[:2]]
            s1, sT = sum(r[0] for r in one), sum(r[0] for r in full)
            n1, nT = sum(r[1] for r in one), sum(r[1] for r in full)
            cT = sum(r[3] for r in full)
            out["greedy_b1"] = {"seconds": sT, "cpu_seconds": cT, "tokens": nT, "tokens_per_s": nT / sT,
                                "tokens_per_cpu_s": nT / cT, "decode_tokens_per_s": (nT - n1) / max(1e-9, sT - s1),
                                "prefill_s": s1 / len(one)}
            bound = out["read_bandwidth_bytes_per_s"] / out["weight_bytes_per_step"]
            out["bandwidth_bound_tokens_per_s"] = bound
            out["fraction_of_bound"] = out["greedy_b1"]["decode_tokens_per_s"] / bound
        if "greedy_b8" in modes:
            out["greedy_b8"] = timed("greedy", ids[:8], tokens)
        if "beam10" in modes:
            out["beam10"] = timed("beam", ids[:1], tokens)
        if "beam10_distinct" in modes and distinct and not hf:
            out["beam10_distinct"] = timed("beam_distinct", ids[:1], tokens)
        if "sample10" in modes:
            out["sample10"] = timed("sample", ids[:1], tokens)
    out["peak_rss_bytes"] = mem.peak
    return out


def run_round(models: dict, order: list[str], prompts: list[str], tokens: int, raw: bool = False,
              distinct: bool = True) -> dict:
    """One round: mode by mode, every path in `order` back to back (the machine's slow and fast spells then fall
    on all paths of a mode alike); per path the modes' results and the largest peak RSS."""
    row: dict = {p: {"peak_rss_bytes": 0} for p in order}
    for mode in MODES:
        for p in order:
            got = run_modes(models[p], p, prompts, tokens, raw, distinct, modes=(mode,))
            peak = max(row[p]["peak_rss_bytes"], got.pop("peak_rss_bytes"))
            row[p].update(got, peak_rss_bytes=peak)
    return row


def greedy_ids(lm, prompts: list[str], tokens: int, batch: int = 10, raw: bool = False) -> list[list[int]]:
    """Our greedy continuations (unconstrained) of the agreement prompts."""
    ids = lm.engine.encode(prompts, raw=raw)
    out = []
    for i in range(0, len(ids), batch):
        out += [h.ids for (h,) in lm.engine.sample(ids[i:i + batch], 1, 0.0, 1.0, tokens, False)]
    return out


def teacher_forced_agreement(ref_lm, lm, prompts: list[str], ref: list[list[int]], raw: bool = False) -> float:
    """Share of steps at which `lm`'s top-1 token equals `ref_lm`'s when both are given the same prefix (the
    prompt and `ref`'s tokens so far): agreement per step, without one early difference shifting the rest."""
    import torch

    same = total = 0
    for p, r in zip(ref_lm.engine.encode(prompts, raw=raw), ref):
        if not r:
            continue
        x = torch.as_tensor([p + r[:-1]])
        with torch.inference_mode():
            a = ref_lm.model(input_ids=x, logits_to_keep=len(r)).logits[0].argmax(-1)
            b = (lm.model(input_ids=x, logits_to_keep=len(r)).logits[0].argmax(-1) if lm.engine.native is None
                 else stepped_top1(lm, p, r))
        same, total = same + int((a == b).sum()), total + len(r)
    return same / total if total else 1.0


def stepped_top1(lm, prompt: list[int], ref: list[int]):
    """Top-1 token after the prompt and after each prefix of `ref`, through the engine's decoder (llama.cpp's for a
    gguf path, whose `lm.model` is the fp32 model it scores with)."""
    import torch

    dec = lm.engine.decoder([prompt], room=len(ref), rows=1)
    top = [int(dec.logits[0].argmax())]
    for t in ref[:-1]:
        top.append(int(dec.step(None, torch.tensor([t]))[0].argmax()))
    return torch.tensor(top)


def agreement(models: dict, prompts: list[str], tokens: int, raw: bool = False) -> dict:
    """Both agreement definitions of each quantized path with our fp32 greedy (unconstrained) continuations."""
    quantized = [p for p in QUANTIZED if p in models]
    ref = greedy_ids(models["ours_fp32"], prompts, tokens, raw=raw)
    return {"free_running_position_match": {p: token_agreement(ref, greedy_ids(models[p], prompts, tokens, raw=raw))
                                            for p in quantized},
            "teacher_forced_top1": {p: teacher_forced_agreement(models["ours_fp32"], models[p], prompts, ref, raw)
                                    for p in quantized},
            "prompts": len(prompts), "tokens": tokens, "reference_tokens": sum(map(len, ref)),
            "definitions": {"free_running_position_match": (
                "each path decodes greedily on its own; share of fp32's tokens matched at the same position "
                "(after the first difference the texts usually shift, so it counts the rest as wrong)"),
                "teacher_forced_top1": ("at every step of fp32's greedy continuation, the quantized model is given "
                                        "the same prefix; share of steps where its top-1 token equals fp32's")}}


def token_agreement(ref: list[list[int]], other: list[list[int]]) -> float:
    """Share of the reference's tokens that the other run wrote at the same position of the same prompt."""
    total = sum(len(r) for r in ref)
    same = sum(a == b for r, o in zip(ref, other) for a, b in zip(r, o))
    return same / total if total else 1.0


def top1_agreement(ref: list[list], other: list[list]) -> float:
    """Share of inputs whose first answer (canonical form) is the same in both; no answer counts as different."""
    same = sum(bool(r) and bool(o) and r[0].key == o[0].key for r, o in zip(ref, other))
    return same / len(ref) if ref else 1.0


# ------------------------------------------------------------------ the 1B model
def build_big(directory: Path) -> None:
    """The 1B-shaped Llama (random, seed 0, bfloat16) with our tokenizer, saved once."""
    import torch

    from naturelm.language import NatureTokenizer
    from naturelm.model.configs import LLAMA3_VOCAB, build_model

    if (directory / "model.safetensors").is_file() or (directory / "model.safetensors.index.json").is_file():
        return
    tok = NatureTokenizer()
    model = build_model("1b", vocab_size=LLAMA3_VOCAB, tokenizer=tok, seed=0, dtype=torch.bfloat16)
    model.save_pretrained(directory)
    tok.save_pretrained(directory)


def rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def model_bytes(lm) -> int:
    """Parameters, buffers and fbgemm's packed weights (int8-dynamic and fp16 layers hold them outside buffers),
    plus llama.cpp's weights on a gguf path (which keeps the model as stored for scoring)."""
    from naturelm.generate.quantize import packed_bytes

    tensors = list(lm.model.parameters()) + list(lm.model.buffers())
    native = lm.engine.native.weight_bytes if lm.engine.native is not None else 0
    return native + packed_bytes(lm.model) + sum(t.numel() * t.element_size() for t in tensors)


def run_big(args, out: dict) -> None:
    """All 1B paths in this process (the quantized ones loaded first, then fp32 shared by HF and ours: about
    7 GB together), interleaved over rounds. Peak RSS per path = the RSS its loading added + the most its
    decoding added on top of the process's RSS before it."""
    import gc

    import torch

    from naturelm.generate.llamacpp import FORMATS

    directory = Path(args.big_dir)
    directory.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--build-big", str(directory)], check=True)
    out["build_s"] = time.perf_counter() - t
    models, loaded = {}, {}
    paths = [p for p in PATHS if p in args.big_paths.split(",")]
    for p in [p for p in QUANTIZED if p in paths] + ["ours_fp32"]:
        gc.collect()
        before, t = rss(), time.perf_counter()
        models[p] = load(p, directory, args.big_threads)
        gc.collect()
        loaded[p] = {"load_s": time.perf_counter() - t, "rss_added_by_load_bytes": rss() - before,
                     "model_bytes": model_bytes(models[p])}
    models["hf_fp32"], loaded["hf_fp32"] = models["ours_fp32"], loaded["ours_fp32"]
    out["loading"], out["threads"] = loaded, torch.get_num_threads()
    if any(QUANT[p] in FORMATS for p in paths):
        out["memory_note"] = ("a gguf path keeps the checkpoint as stored (for scoring) beside llama.cpp's weights: "
                              "its weights in memory count both")
    prompts = short_prompts20()
    out["paths_run"], out["beam10_distinct_run"] = paths, args.big_distinct
    out["peak_rss_note"] = ("one process holds every 1B path; a path's peak RSS is its model's bytes plus the most "
                            "its decoding added to the process's RSS")
    save(out)
    rounds = []
    for r in range(args.rounds):
        if r and time.time() > args.deadline:
            out["rounds_note"] = f"stopped after {r} rounds at the --deadline (shared machine, slow rounds)"
            break
        order = paths[r % len(paths):] + paths[:r % len(paths)]
        before = rss()
        row = run_round(models, order, prompts, args.big_tokens, raw=True, distinct=args.big_distinct)
        for p in order:
            row[p]["peak_rss_bytes"] = loaded[p]["model_bytes"] + max(0, row[p]["peak_rss_bytes"] - before)
            print(f"1b round {r} {p}: b1 {row[p]['greedy_b1']['tokens_per_s']:.2f} tok/s "
                  f"(decode {row[p]['greedy_b1']['decode_tokens_per_s']:.2f}), b8 "
                  f"{row[p]['greedy_b8']['tokens_per_s']:.2f}, beam {row[p]['beam10']['tokens_per_s']:.2f}, "
                  f"sample {row[p]['sample10']['tokens_per_s']:.2f}", flush=True)
        rounds.append(row)
        out["rounds"] = rounds
        out["paths"] = summarize(rounds)
        save(out)
    out["greedy_token_agreement_with_fp32"] = agreement(models, prompts, args.big_tokens, raw=True)
    out["greedy_token_agreement_with_fp32"]["note"] = (
        "random weights: the logits are nearly flat (the top tokens differ by less than the quantization error), "
        "so agreement here measures noise, not quality; NatureLM-tiny's trained weights are the meaningful check")
    save(out)


def save(section: dict) -> None:
    """Write the results so far (a slow round on a busy machine must not lose the earlier ones)."""
    if SAVE is not None:
        SAVE()


SAVE = None


def summarize(rounds: list[dict]) -> dict:
    """Medians over rounds and each path's ratio to HF fp32 (wall clock, and CPU time of the process: on a shared
    CPU the latter counts the work done, whatever else ran). beam10_distinct (ours) is compared with HF's beam10."""
    keys = [("greedy_b1", "tokens_per_s"), ("greedy_b1", "tokens_per_cpu_s"), ("greedy_b1", "decode_tokens_per_s"),
            ("greedy_b1", "prefill_s"), ("greedy_b8", "tokens_per_s"), ("greedy_b8", "tokens_per_cpu_s"),
            ("beam10", "tokens_per_s"), ("beam10", "tokens_per_cpu_s"), ("beam10_distinct", "tokens_per_s"),
            ("beam10_distinct", "tokens_per_cpu_s"), ("sample10", "tokens_per_s"), ("sample10", "tokens_per_cpu_s")]
    out = {}
    paths = [p for p in PATHS if p in rounds[0]]
    for p in paths:
        row = {f"{mode}_{k}": statistics.median(r[p][mode][k] for r in rounds)
               for mode, k in keys if mode in rounds[0][p]}
        for k in ("peak_rss_bytes", "weight_bytes_per_step", "read_bandwidth_bytes_per_s",
                  "bandwidth_bound_tokens_per_s", "fraction_of_bound"):
            row[k] = statistics.median(r[p][k] for r in rounds)
        out[p] = row
    for p in paths:
        out[p]["vs_hf_fp32"] = {f"{mode}_{k}": out[p][f"{mode}_{k}"] / out["hf_fp32"][f"{mode}_{k}".replace(
            "beam10_distinct", "beam10")] for mode, k in keys if k != "prefill_s" and f"{mode}_{k}" in out[p]}
        out[p]["vs_hf_fp32"]["peak_rss"] = out[p]["peak_rss_bytes"] / out["hf_fp32"]["peak_rss_bytes"]
    return out


# ------------------------------------------------------------------ NatureLM-tiny, one process
def run_tiny(args, out: dict) -> None:
    import torch

    checkpoint = ROOT / "checkpoints" / "naturelm-tiny"
    models = {p: load(p, checkpoint, args.tiny_threads) for p in PATHS if p != "hf_fp32"}
    models["hf_fp32"] = models["ours_fp32"]  # the same fp32 model: HF generate vs our engine on it
    out["threads"] = torch.get_num_threads()
    prompts = prompts20()
    rounds = []
    for r in range(args.rounds):
        if r and time.time() > args.deadline:
            out["rounds_note"] = f"stopped after {r} rounds at the --deadline (shared machine, slow rounds)"
            break
        order = PATHS[r % len(PATHS):] + PATHS[:r % len(PATHS)]
        row = run_round(models, order, prompts, args.tiny_tokens)
        rounds.append(row)
        out["rounds"], out["paths"] = rounds, summarize(rounds)
        save(out)
        print(f"tiny round {r}: " + ", ".join(f"{p} b1 {row[p]['greedy_b1']['tokens_per_s']:.0f} "
                                               f"b8 {row[p]['greedy_b8']['tokens_per_s']:.0f} "
                                               f"beam {row[p]['beam10']['tokens_per_s']:.0f}" for p in PATHS),
              flush=True)
    out["rounds"] = rounds
    out["paths"] = summarize(rounds)
    out["peak_rss_note"] = "all tiny paths share one process: peak RSS is that process's, not per path"
    out["greedy_token_agreement_with_fp32"] = agreement(models, prompts, args.tiny_tokens)
    save(out)
    if args.retro:
        from naturelm.data.sources.uspto50k import load_uspto50k

        products = [rx.product for rx in load_uspto50k(split="test").split("test")[:args.retro]]
        beams = {}
        for p in ("ours_fp32",) + QUANTIZED:
            t = time.perf_counter()
            beams[p] = models[p].retrosynthesis(products, k=K_BEAMS, method="model")
            out.setdefault("retro_s_per_product", {})[p] = (time.perf_counter() - t) / len(products)
        out["retro_products"] = len(products)
        out["retro_top1_agreement_with_fp32"] = {p: top1_agreement(beams["ours_fp32"], beams[p]) for p in QUANTIZED}
        out["retro_top1_valid"] = {p: sum(bool(b) and b[0].valid for b in beams[p]) / len(products) for p in beams}


def sections(data: dict) -> list[str]:
    """The result sections of a JSON: `1b` (and other 1B runs, `1b_*`) and `tiny`."""
    return [k for k in data if k == "tiny" or k == "1b" or k.startswith("1b_")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--big-tokens", type=int, default=16, help="new tokens per 1B call")
    ap.add_argument("--big-threads", type=int, default=None,
                    help="torch threads of every 1B path, HF's included (default: what NatureLM.load chooses for a "
                         "1B model: one per available core)")
    ap.add_argument("--big-section", default="1b",
                    help="the JSON key of the 1B results (e.g. 1b_1thread for a second thread count)")
    ap.add_argument("--big-dir", default=str(Path(tempfile.gettempdir()) / "naturelm-1b-random"),
                    help="scratch directory of the random 1B checkpoint (2.5 GB, built once)")
    ap.add_argument("--tiny-tokens", type=int, default=64)
    ap.add_argument("--tiny-threads", type=int, default=None,
                    help="torch threads of every tiny path (default: what NatureLM.load chooses: 1 under 100M)")
    ap.add_argument("--retro", type=int, default=100, help="USPTO-50k test products for the top-1 agreement")
    ap.add_argument("--deadline", type=float, default=float("inf"),
                    help="unix time after which no new round starts (results are written after every round)")
    ap.add_argument("--big-paths", default=",".join(PATHS), help="comma-separated paths of the 1B section")
    ap.add_argument("--big-distinct", action="store_true",
                    help="also time the 20-beam beam10_distinct mode on the 1B (slow on a shared machine)")
    ap.add_argument("--skip-big", action="store_true")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--note", default="", help="what else the machine was running (recorded in the JSON)")
    add_output_args(ap)
    ap.add_argument("--build-big", default=None, help=argparse.SUPPRESS)  # internal: build the 1B checkpoint
    args = ap.parse_args()
    args.out = str(output_path(args, "cpu_inference.json"))
    if args.build_big:
        return build_big(Path(args.build_big))

    import torch

    result = {"settings": {"rounds": args.rounds, "big_tokens": args.big_tokens, "big_threads": args.big_threads,
                           "big_paths": args.big_paths, "big_distinct": args.big_distinct,
                           "tiny_tokens": args.tiny_tokens, "tiny_threads": args.tiny_threads,
                           "retro_products": args.retro, "samples": N_SAMPLES, "beams": K_BEAMS,
                           "temperature": TEMPERATURE, "torch": torch.__version__, "note": args.note,
                           "cpu_affinity": sorted(os.sched_getaffinity(0)),
                           "python": platform.python_version(), "machine": platform.machine(),
                           "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
              "method": ("one run; each round runs mode by mode, every path back to back for a mode, in an order "
                         "rotated each round; medians over rounds; "
                         "ratios against HF generate fp32 in the same run. The machine is shared with other "
                         "work (load average above): absolute tokens/s vary with it, ratios less so. Greedy "
                         "batch 1 runs 2 prompts one by one; batch 8 runs 8 prompts; beam 10 and sampling n=10 "
                         "one prompt; decoding unconstrained. tokens_per_s: wall clock; tokens_per_cpu_s: CPU "
                         "time of the benchmark process (the work done, whatever else shared the core)."),
              "computes": COMPUTES}
    global SAVE

    def write():
        result["settings"]["load_average_now"] = os.getloadavg()
        Path(args.out).write_text(json.dumps(dict(kept, **result), indent=1))

    # a section not run this time (--skip-big / --skip-tiny) is kept from the file, with the settings it ran under
    old = json.loads(Path(args.out).read_text()) if Path(args.out).is_file() else {}
    ran = [k for k, skip in ((args.big_section, args.skip_big), ("tiny", args.skip_tiny)) if not skip]
    kept = {k: old[k] for k in sections(old) if k not in ran}
    old_settings = old.get("settings_by_section", {})
    result["settings_by_section"] = {**{k: old_settings[k] for k in kept if k in old_settings},
                                     **{k: result["settings"] for k in ran}}
    SAVE = write
    if not args.skip_big:
        result[args.big_section] = {}
        run_big(args, result[args.big_section])
    if not args.skip_tiny:
        result["tiny"] = {}
        run_tiny(args, result["tiny"])
    result["settings"]["load_average_at_end"] = os.getloadavg()
    write()
    print(json.dumps({m: {p: {k: v for k, v in r.items() if k == "vs_hf_fp32"} for p, r in result[m]["paths"].items()}
                      for m in sections(result)}, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
