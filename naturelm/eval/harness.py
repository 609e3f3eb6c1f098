"""Run several answer sources side by side on the same test examples and write results.json.

Predictions are stored per model and task in `OUT/predictions/<model>/<task>.jsonl` as they come, so a
stopped run resumes where it was (an entry is reused only when its query and candidate count match).
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import re
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

from naturelm.errors import ConfigError
from naturelm.tasks.base import Context, Example, Task, get_task, task_names
from naturelm.tasks.baselines.base import Candidate, Predictor
from naturelm.tasks.baselines.compositions import RANKED_CANDIDATES
from naturelm.tasks.ranking import rank_union

BASELINES = ("retrosim", "retrosim-leakfree", "templates", "smact", "nispo", "openclatura", "rules", "opsin",
             "ligand_retrieval", "ligand_random", "biopython")
CROSS_DOMAIN_BASELINES = {"ligand_retrieval": "LigandRetrieval", "ligand_random": "RandomLigands",
                          "biopython": "BiopythonTranslator"}
RANKED_ROW = "{model}+{tool} (ranked)"
# `--rank`: the tools whose candidates each task's ranked rows rank with the model
RANKING_TOOLS = {"retrosynthesis": ("retrosim", "retrosim-leakfree"), "forward": ("templates",),
                 "composition_to_material": ("smact",)}
# Candidates a ranking tool gives per input where the task asks fewer of each model (composition -> material asks
# one sample): the ranked row ranks this many; the tool's own row is scored on its first as every row is.
RANKING_POOL = {"composition_to_material": RANKED_CANDIDATES}
# RetroSim baselines -> the index they hold (naturelm.tasks.baselines.retrosim.INDEXES)
RETROSIM_MODELS = {"retrosim": "standard", "retrosim-leakfree": "leak-free"}


def load_predictor(spec: str, data_dir: str | Path | None = None, temperature: float | None = None,
                   quantize: str | None = None):
    """A Predictor from a model spec: a checkpoint directory (sampling at `temperature`, default 0.7), or a baseline
    name (retrosim, retrosim-leakfree, templates, smact, nispo, openclatura, rules, opsin; ligand_retrieval,
    ligand_random, biopython from naturelm.tasks.baselines.cross_domain, read from the data dir). `smact` enumerates
    compositions within the data card's atoms-per-cell bound (naturelm.tasks.baselines.compositions). RetroSim holds the USPTO-50k
    training split (a copy saved in DATA/retrosim is reused), `retrosim-leakfree` the training reactions whose
    product is no test product by connectivity; both, and `templates`, are fitted once and then loaded from the
    template-index cache (naturelm.tasks.baselines.index_cache)."""
    if Path(spec).is_dir():
        from naturelm.api import NatureLM

        kw = {} if temperature is None else {"temperature": temperature}
        return NatureLM.load(spec, quantize=quantize, **kw)
    if spec in RETROSIM_MODELS:
        from naturelm.tasks.baselines.retrosim import RetroSim, cached_retrosim

        index = RETROSIM_MODELS[spec]
        saved = Path(data_dir) / "retrosim" if data_dir and index == "standard" else None
        if saved is not None and (saved / "retrosim.json").is_file():
            return RetroSim.load(saved)
        return cached_retrosim(index, progress=True)
    if spec == "templates":
        from naturelm.tasks.baselines.forward_templates import ForwardTemplates

        return ForwardTemplates.from_uspto50k()
    if spec == "smact":
        from naturelm.tasks.baselines.compositions import SmactCompositions
        from naturelm.tasks.requests import cell_atom_bound

        return SmactCompositions(max_atoms=cell_atom_bound(Context(data_dir).data_card()))
    if spec in CROSS_DOMAIN_BASELINES:
        from naturelm.tasks.baselines import cross_domain

        return getattr(cross_domain, CROSS_DOMAIN_BASELINES[spec])(data_dir)
    if spec in BASELINES:
        from naturelm.tasks.baselines.namers import get_predictor

        return get_predictor(spec)
    raise ConfigError(f"model {spec!r} is neither a checkpoint directory nor a baseline ({', '.join(BASELINES)})")


def model_label(spec: str, taken: set[str]) -> str:
    """A short unique row name: the checkpoint directory's name, or the baseline name."""
    base = Path(spec).name if Path(spec).is_dir() else spec
    label, i = base, 2
    while label in taken:
        label, i = f"{base}-{i}", i + 1
    return label


def resolve_tasks(tasks: str | list[str]) -> list[str]:
    """`all` or a comma list -> registered task names (unknown names raise ConfigError)."""
    names = tasks.split(",") if isinstance(tasks, str) else list(tasks)
    names = [n.strip() for n in names if n.strip()]
    if names == ["all"]:
        return task_names()
    for n in names:
        get_task(n)
    return names


def _safe_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", label)


def _to_json(c: Candidate) -> dict:
    d = asdict(c)
    d["meta"] = {k: v for k, v in d["meta"].items() if isinstance(v, (str, int, float, bool, type(None)))}
    return d


def predict_resumable(predictor, task: Task, examples: list[Example], k: int, path: Path,
                      chunk: int = 32, progress: bool = True) -> list[list[Candidate]]:
    """Candidates for every example, reusing matching lines of `path` and appending new ones chunk by chunk."""
    from tqdm.auto import tqdm

    done: dict[int, list[Candidate]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut by an interrupted run
            i = rec["i"]
            if i < len(examples) and rec["query"] == examples[i].query and rec["k"] == k:
                done[i] = [Candidate(**c) for c in rec["candidates"]]
    todo = [i for i in range(len(examples)) if i not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(examples), initial=len(done), desc=f"{predictor.name}:{task.name}", disable=not progress)
    with path.open("a") as f:
        for start in range(0, len(todo), chunk):
            idx = todo[start : start + chunk]
            out = predictor.predict(task.name, [examples[i].query for i in idx], k)
            if len(out) != len(idx):
                raise ConfigError(f"{predictor.name} returned {len(out)} answers for {len(idx)} inputs of {task.name}")
            for i, cands in zip(idx, out):
                cands = list(cands)[:k]
                done[i] = cands
                f.write(json.dumps({"i": i, "query": examples[i].query, "k": k,
                                    "candidates": [_to_json(c) for c in cands]}) + "\n")
            f.flush()
            bar.update(len(idx))
    bar.close()
    return [done[i] for i in range(len(examples))]


def _tool_weight(task: str, predictor, rank_prior_weight: float, forward_override: float | None = None) -> float:
    """The tool score's weight of a ranked row: RetroSim's `rank_prior_weight` for retrosynthesis; for forward the
    template weight `forward_override`, else the checkpoint's, else the default; for composition -> material the
    checkpoint's composition weight, else the default."""
    from naturelm.api import FORWARD_RANK_WEIGHT, MATERIAL_RANK_WEIGHT

    if task == "retrosynthesis":
        return rank_prior_weight
    if task == "forward":
        candidates = (forward_override, getattr(predictor, "forward_rank_weight", None), FORWARD_RANK_WEIGHT)
    else:
        candidates = (getattr(predictor, "material_rank_weight", None), MATERIAL_RANK_WEIGHT)
    return next(w for w in candidates if w is not None)


def _retro_weight(task: str, predictor) -> float:
    """The round trip's share of a ranked forward row (`tasks.ranking.combined_score`): the checkpoint's
    `naturelm_forward_retro_weight`, else 0; 0 for every other task."""
    from naturelm.tasks.ranking import check_retro_weight

    r = getattr(predictor, "forward_retro_weight", None) if task == "forward" else None
    return 0.0 if r is None else check_retro_weight(r)


def configured(task: Task, k: int, samples: int | None) -> Task:
    """A copy of a registered task for this run: top-k cut-offs up to k (k itself included), samples overridden."""
    task = copy.copy(task)
    if task.kind == "ranked":
        n = task.n_candidates(k)
        task.ks = tuple(sorted({x for x in task.ks if x <= n} | {n}))
    if samples and task.kind == "sample":
        task.samples = samples
    return task


def _check_source(pred_dir: Path, spec: str, temperature: float | None = None, quantize: str | None = None) -> None:
    """Stored predictions belong to one model, temperature and quantization: when the spec, the checkpoint files,
    the temperature or the quantization changed, start afresh."""
    p = Path(spec)
    files = sorted(f for f in p.iterdir() if f.is_file()) if p.is_dir() else []
    source = {"spec": str(p.resolve()) if p.is_dir() else spec,
              "files": [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]}
    if temperature is not None:
        source["temperature"] = temperature
    if quantize is not None:
        source["quantize"] = quantize
    marker = pred_dir / "source.json"
    if marker.is_file() and json.loads(marker.read_text()) != source:
        shutil.rmtree(pred_dir)
    pred_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(source))


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def run_eval(models: list[str], tasks: str | list[str] = "all", data: str | Path | None = None,
             out: str | Path = "eval_out", limit: int | None = None, k: int = 10, rank: bool = False,
             rank_prior_weight: float = 0.0,
             samples: int | None = None, progress: bool = True, predictors: dict | None = None,
             fail_fast: bool = False, temperature: float | None = None, quantize: str | None = None,
             forward_rank_weight: float | None = None) -> dict:
    """Evaluate each model spec on each task (same examples for all) and write OUT/results.json and the report.

    `rank`: ranked rows (`RANKED_ROW`) for retrosynthesis (RetroSim's weight `rank_prior_weight`), forward (the
    template weight `forward_rank_weight`, default each checkpoint's own, else `naturelm.api.FORWARD_RANK_WEIGHT`;
    with the checkpoint's round-trip share `naturelm_forward_retro_weight`, recorded as `forward_retro`) and composition -> material (`smact`'s compositions; each checkpoint's weight, else
    `naturelm.api.MATERIAL_RANK_WEIGHT`);
    `settings.rank_weights` records the weight each ranked row used.

    `predictors` maps extra labels to ready Predictor objects (used by tests and by Python callers). A model that
    fails on a task gets an `error` entry (and a note) instead of metrics unless `fail_fast`.
    """
    from naturelm.eval.report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = resolve_tasks(tasks)
    loaded: dict[str, object] = {}
    for spec in models:
        label = model_label(spec, set(loaded))
        loaded[label] = load_predictor(spec, data, temperature, quantize)
        _check_source(out / "predictions" / _safe_name(label), spec, temperature, quantize)
    for label, p in (predictors or {}).items():
        if not isinstance(p, Predictor):
            raise ConfigError(f"{label!r} does not implement the Predictor protocol (name, supports, predict)")
        loaded[label] = p
    if not loaded:
        raise ConfigError("no model given: --model PATH or a baseline name")
    ctx = Context(data, progress=progress)
    results: dict[str, dict] = {m: {} for m in loaded}
    wall: dict[str, dict] = {m: {} for m in loaded}
    notes: dict[str, list[str]] = {}
    meta: dict[str, dict] = {}
    rank_weights: dict[str, dict] = {}  # ranked row -> task -> the weight it used
    for name in names:
        task = configured(get_task(name), k, samples)
        examples = task.examples(data, limit)
        n_cand = task.n_candidates(k)
        meta[name] = {"kind": task.kind, "n_examples": len(examples), "candidates_per_input": n_cand,
                      "ks": list(task.ks) if task.kind == "ranked" else [],
                      "headline": list(task.headline)}
        if not examples:
            notes.setdefault(name, []).append("no test records of this task in the data dir")
            continue
        preds_by_model = {}
        for label, predictor in loaded.items():
            if not predictor.supports(name):
                continue
            t0 = time.perf_counter()
            n_ask = max(n_cand, RANKING_POOL.get(name, 0)) if label in RANKING_TOOLS.get(name, ()) else n_cand
            try:
                preds = predict_resumable(predictor, task, examples, n_ask,
                                          out / "predictions" / _safe_name(label) / f"{name}.jsonl", progress=progress)
                preds_by_model[label] = preds
                _score_into(results, wall, notes, label, task, examples, preds, ctx, time.perf_counter() - t0)
            except Exception as exc:  # one failing model/task must not lose a long run: recorded, shown, re-run resumes
                if fail_fast:
                    raise
                results[label][name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                notes.setdefault(name, []).append(f"{label} failed: {type(exc).__name__}: {exc}"[:300])
                print(f"naturelm eval: {label} failed on {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        for tool in RANKING_TOOLS.get(name, ()) if rank else ():
            if tool not in preds_by_model:
                continue
            for label, predictor in loaded.items():
                if label in preds_by_model and hasattr(predictor, "rank"):
                    row = RANKED_ROW.format(model=label, tool=tool)
                    weight = _tool_weight(name, predictor, rank_prior_weight, forward_rank_weight)
                    retro_weight = _retro_weight(name, predictor)
                    rank_weights.setdefault(row, {})[name] = weight
                    if retro_weight:
                        rank_weights[row][f"{name}_retro"] = retro_weight
                    t0 = time.perf_counter()
                    merged = rank_union(predictor, examples, preds_by_model[label], preds_by_model[tool], k=n_cand,
                                        prior_weight=weight, task=name, retro_weight=retro_weight)
                    results.setdefault(row, {})
                    wall.setdefault(row, {})
                    _score_into(results, wall, notes, row, task, examples, merged, ctx, time.perf_counter() - t0)
    oracles = {oname: oracle.card() for oname, oracle in ctx.oracles_used().items()}
    data_dir = Path(data) if data else None
    doc = {
        "results": results,
        "wall_s": wall,
        "tasks": meta,
        "notes": notes,
        "oracles": oracles,
        "settings": {"models": {label: spec for label, spec in zip(loaded, list(models) + list(predictors or {}))},
                     "tasks": names, "limit": limit, "k": k, "rank": rank,
                     "rank_prior_weight": rank_prior_weight, "forward_rank_weight": forward_rank_weight,
                     "rank_weights": rank_weights, "samples": samples,
                     "temperature": temperature, "quantize": quantize,
                     "retrieval_indexes": {label: p.index for label, p in loaded.items()
                                           if isinstance(getattr(p, "index", None), str)}},
        "data": {"dir": str(data_dir) if data_dir else None,
                 "card_sha256": _sha256(data_dir / "card.json") if data_dir else None},
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    write_report(doc, out)
    return doc


def _score_into(results, wall, notes, label, task, examples, preds, ctx, predict_s) -> None:
    t0 = time.perf_counter()
    metrics = task.score(examples, preds, ctx)
    for note in metrics.pop("notes", []):
        if note not in notes.setdefault(task.name, []):
            notes[task.name].append(note)
    results[label][task.name] = metrics
    wall[label][task.name] = {"predict": round(predict_s, 3), "score": round(time.perf_counter() - t0, 3)}
