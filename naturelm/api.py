"""NatureLM: load a checkpoint, generate checked answers, and ask it the paper's tasks by name.

>>> lm = NatureLM.load("checkpoints/sft")                            # doctest: +SKIP
>>> lm.retrosynthesis("CC(=O)Nc1ccc(O)cc1", k=5)[0].canonical        # doctest: +SKIP
"""
from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import dataclass, field, fields
from functools import partial
import re
from pathlib import Path

from naturelm import arguments
from naturelm.data.instructions import instruction  # noqa: F401  (public: naturelm.api.instruction)
from naturelm.errors import ConfigError, DataSourceMissing, EntityError, InputError
from naturelm.generate.engine import Engine, encode_prompts, mean_logprob
from naturelm.generate.postprocess import Classification, Generation, dedup, to_generation
from naturelm.tasks import checks
from naturelm.language.tags import wrap

# The tag each task's response is written in (None: plain text).
RESPONSE_TAG = {
    "retrosynthesis": "reactants", "retrosynthesis_rag": "reactants", "forward": "product",
    "forward_rag": "product", "iupac_to_smiles": "mol", "smiles_to_iupac": None,
    "property_to_molecule": "mol", "property_optimization": "mol", "bbb_optimization": "mol",
    "bbb_classification": None, "text_to_protein": "protein", "composition_to_material": "material",
    "property_to_material": "material", "guide_rna": "rna", "molecule_generation": "mol",
    "protein_generation": "protein", "rna_generation": "rna", "material_generation": "material",
    "protein_to_molecule": "mol", "dna_to_protein": "protein", "protein_to_dna": "dna", "protein_to_rna": "rna",
}
RETRO_METHODS = ("auto", "model", "ranked", "rag")
RETROSIM_CANDIDATES = 10  # RetroSim candidates the model ranks per product (at least k)
RANKED_SOURCE = "retrosim+model"
RANK_WEIGHT_KEY = "naturelm_rank_weight"  # generation_config.json: the checkpoint's tuned RetroSim prior weight
FORWARD_METHODS = ("auto", "model", "ranked")
TEMPLATE_CANDIDATES = 10  # forward-template products the model ranks per reactant set (at least k)
FORWARD_RANKED_SOURCE = "templates+model"
FORWARD_RANK_WEIGHT_KEY = "naturelm_forward_rank_weight"  # generation_config.json: the tuned template prior weight
# Default weight of the forward-template score beside the model's mean log-probability: bench/forward_ranking.py's
# pick on 40 USPTO-50k valid reactions for NatureLM-tiny v1 (a flat sweep: 57.5-62.5% top-1 for 0 to 1000).
FORWARD_RANK_WEIGHT = 8.0
# generation_config.json: the round trip's share r of ranked forward (`tasks.ranking.combined_score`: (1 - r) x the
# model's mean log-probability of the product + r x its mean log-probability of the reactants as the retrosynthesis
# answer for that product + naturelm_forward_rank_weight x template score), tuned with it by bench/forward_ranking.py;
# absent: r = 0, the plain ranking.
FORWARD_RETRO_WEIGHT_KEY = "naturelm_forward_retro_weight"
MATERIAL_METHODS = ("auto", "model", "ranked")
MATERIAL_RANKED_SOURCE = "smact+model"
MATERIAL_RANK_WEIGHT_KEY = "naturelm_material_rank_weight"  # generation_config.json: a tuned composition weight
# Default weight of the composition tool's score (in (0, 1]) beside the model's mean log-probability, for checkpoints
# without MATERIAL_RANK_WEIGHT_KEY: bench/material_ranking.py's pick on the first 200 composition_to_material VALID
# records of data_build/model-tiny for a NatureLM-tiny v2 training checkpoint (runs/dry/stageB, not committed):
# formula_match 4.5% at w=0 (the model prefers longer cells), 16.5% at 5, 17.0% at 15 and for the tool alone,
# 17.5% from 30 on (the tool's order, the model breaking the tool's ties). The shipped checkpoint stores its own (15;
# bench/results/material_ranking_valid.json).
MATERIAL_RANK_WEIGHT = 30.0
# What `_tool_ranked` copies from a tool candidate's meta into the ranked answer's.
TOOL_META = ("template", "neighbour", "formula", "atoms", "oxidation_states")
UNCONDITIONAL = frozenset({"molecule_generation", "protein_generation", "rna_generation", "material_generation"})
CHECKPOINT_HINT = ("pass a checkpoint directory: one of ours (config.json + model weights + naturelm_tokenizer.json, "
                   "as written by `naturelm train`) or a released NatureLM folder as downloaded (config.json, weights, "
                   "Llama 3 tokenizer.json or Mixtral tokenizer.model; docs/released-checkpoints.md)")


@dataclass
class RankedGeneration(Generation):
    """A candidate of another source ranked by the model; `meta` holds the parts of its score."""

    meta: dict = field(default_factory=dict)


def _one(x) -> bool:
    return isinstance(x, str)


def _resolve_dtype(dtype, device: str):
    import torch

    if dtype is None:
        return torch.bfloat16 if str(device).startswith("cuda") and torch.cuda.is_bf16_supported() else torch.float32
    if isinstance(dtype, str):
        if not hasattr(torch, dtype) or not isinstance(getattr(torch, dtype), torch.dtype):
            raise ConfigError(f"unknown dtype {dtype!r}; use float32, bfloat16 or float16")
        return getattr(torch, dtype)
    return dtype


class NatureLM:
    """A NatureLM model with its tokenizer: `generate`, the task methods, and the Predictor protocol."""

    name = "naturelm"

    def __init__(self, model, tokenizer, add_bos: bool = True, batch_size: int = 16, max_new_tokens: int = 256,
                 path: str | os.PathLike | None = None, rank_weight: float | None = None, temperature: float = 0.7,
                 prompt_constraints: bool = True, forward_rank_weight: float | None = None,
                 forward_retro_weight: float | None = None, material_rank_weight: float | None = None):
        self.engine = Engine(model, tokenizer, add_bos=add_bos)
        self.temperature = temperature  # default sampling temperature (0.7: the released notebooks' setting)
        self.prompt_constraints = prompt_constraints  # sampled task answers hold what the prompt asks (tasks.requests)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens  # default answer budget of the task methods and `predict`
        self.path = path  # the checkpoint directory (where a saved RetroSim is looked for)
        self.rank_weight = rank_weight  # the checkpoint's tuned RetroSim weight: ranked retrosynthesis by default
        self._retrosims: dict = {}  # RetroSim models of ranked retrosynthesis, loaded or fitted on first use
        self.forward_rank_weight = forward_rank_weight  # the checkpoint's tuned template weight: ranked forward
        self.forward_retro_weight = forward_retro_weight  # the checkpoint's tuned round-trip share of ranked forward
        self._forward_templates = None  # the forward-template tool of ranked forward prediction, fitted on first use
        self.material_rank_weight = material_rank_weight  # the checkpoint's tuned composition-tool weight
        self._memories: dict = {}  # retrieval memories of retrosynthesis_rag / forward_rag by direction, built on first use

    @property
    def model(self):
        return self.engine.model

    @property
    def decoding(self) -> str:
        """What computes the decoding steps: "llama.cpp gguf-q8_0", "PyTorch int8", "PyTorch float32" (as stored)..."""
        from naturelm.generate.quantize import quantized_mode

        if self.engine.native is not None:
            return f"llama.cpp {self.engine.native.fmt}"
        mode = quantized_mode(self.model) or str(next(self.model.parameters()).dtype).removeprefix("torch.")
        return f"PyTorch {mode}"

    @property
    def tokenizer(self):
        return self.engine.tok

    def data_card(self) -> dict | None:
        """The checkpoint's data_card.json (what it was trained on), None without one; read once."""
        if not hasattr(self, "_card"):
            path = Path(self.path) / "data_card.json" if self.path is not None else None
            self._card = json.loads(path.read_text()) if path is not None and path.is_file() else None
        return self._card

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "cpu", dtype=None, quantize: str | None = None,
             threads: int | None = None, **kw) -> "NatureLM":
        """Our checkpoint directory or a released NatureLM one as downloaded (docs/released-checkpoints.md): its
        vocabulary rebuilt by `NatureTokenizer.from_released`, no remote code; prompts in the tokenizer's format.

        `quantize`: "fp16", "int8", "int8-dynamic" or "int4" quantization for CPU decoding (`naturelm.generate.quantize`;
        the weights are read in the checkpoint's own dtype, then quantized); "gguf-f16", "gguf-q8_0" or "gguf-q4_0":
        decoding on llama.cpp in that GGUF format (`naturelm.generate.llamacpp`; a Llama checkpoint, with
        llama-cpp-python installed), scoring on the model as stored; None: as stored (docs/inference.md says which
        to use where).

        On CPU, torch's threads are set on purpose (naturelm.generate.threads): `threads` when given, else
        OMP_NUM_THREADS when set, else 1 for a small model (faster on a busy machine), else one per core (max 8)."""
        from transformers import AutoModelForCausalLM

        from naturelm.generate.llamacpp import FORMATS, LlamaCpp, cache_path as gguf_cache_path
        from naturelm.language import NatureTokenizer

        if not isinstance(path, (str, os.PathLike)):
            raise InputError("path", f"expected a directory path, not {type(path).__name__}")
        arguments.text("path", os.fspath(path), allow_list=False)
        arguments.text("quantize", quantize, allow_none=True, allow_list=False)
        if threads is not None:
            arguments.count("threads", threads)
        p = Path(path)
        if quantize is not None:
            from naturelm.generate.quantize import MODES, quantize as quantize_model

            if quantize not in MODES and quantize not in FORMATS:
                raise ConfigError(f"quantize must be one of {', '.join(MODES + tuple(FORMATS))} or None, "
                                  f"not {quantize!r}")
            if quantize in FORMATS and not str(device).startswith("cpu"):
                raise ConfigError(f"quantize={quantize!r} decodes on llama.cpp's CPU build; load it with "
                                  "device='cpu' (on a GPU: quantize=None, or the vLLM backend)")
        if not p.exists():
            raise DataSourceMissing(str(p), CHECKPOINT_HINT)
        if not p.is_dir() or not (p / "config.json").is_file():
            raise ConfigError(f"{p} is not a model checkpoint directory (no config.json); {CHECKPOINT_HINT}")
        tok = NatureTokenizer.for_checkpoint(p)
        try:
            model = AutoModelForCausalLM.from_pretrained(
                str(p), dtype="auto" if quantize and dtype is None else _resolve_dtype(dtype, device))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load the model in {p}: {exc}; {CHECKPOINT_HINT}") from None
        model.to(device)
        n_model = model.get_output_embeddings().weight.shape[0]
        if len(tok) > n_model:
            raise ConfigError(f"{p}: tokenizer has {len(tok)} ids but the model only {n_model}; wrong tokenizer files?")
        if str(device).startswith("cpu"):  # before quantizing: packed weights are not parameters any more
            from naturelm.generate.threads import set_inference_threads

            threads = set_inference_threads(model, threads)
        native = None
        if quantize in FORMATS:
            native = LlamaCpp.from_model(model, quantize, threads or 1, cache=gguf_cache_path(p, quantize))
        elif quantize is not None:
            calibration = (encode_prompts(tok, calibration_prompts(), add_bos=True)
                           if quantize == "int8-dynamic" else None)
            quantize_model(model, quantize, calibration)
        kw.setdefault("path", p)
        kw.setdefault("rank_weight", _rank_weight(p))
        kw.setdefault("forward_rank_weight", _rank_weight(p, FORWARD_RANK_WEIGHT_KEY))
        kw.setdefault("forward_retro_weight", _rank_weight(p, FORWARD_RETRO_WEIGHT_KEY))
        kw.setdefault("material_rank_weight", _rank_weight(p, MATERIAL_RANK_WEIGHT_KEY))
        lm = cls(model, tok, **kw)
        lm.engine.native = native
        return lm

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: str | list[str], n: int = 1, num_beams: int = 1, temperature: float | None = None,
                 top_p: float = 1.0, max_new_tokens: int = 128, raw: bool = False, constrained: bool = True,
                 seed: int = 0, max_retries: int = 3, **kw):
        """Checked generations: a list of Generation for one prompt, one list per prompt for a list.

        num_beams > 1: that many distinct beam candidates (beam score); else n samples (summed log-prob),
        greedy when temperature is 0 (None: the instance's `temperature`). `raw` sends prompts as they are
        (e.g. `"<mol>"`), else in the instruction format.
        """
        temperature = self.temperature if temperature is None else temperature
        out = self.engine.generate(prompts, n=n, num_beams=num_beams, temperature=temperature, top_p=top_p,
                                   max_new_tokens=max_new_tokens, raw=raw, constrained=constrained, seed=seed,
                                   max_retries=max_retries, batch_size=kw.pop("batch_size", self.batch_size), **kw)
        return out[0] if _one(prompts) else out

    def _ask(self, task: str, instructions, k: int, beams: bool, **gen):
        """Generate for one or many instructions of a task, in its response tag; sampled answers hold what the
        instruction asks (`naturelm.tasks.requests.request_for`) unless `constrained=False`."""
        gen.setdefault("max_new_tokens", self.max_new_tokens)
        if beams:
            gen.setdefault("temperature", 0.0)
            return self.generate(instructions, num_beams=k, expect=RESPONSE_TAG[task], **gen)
        if self.prompt_constraints and gen.get("constrained", True) and "requests" not in gen:
            from naturelm.tasks.requests import request_for

            card = self.data_card()
            requests = [request_for(task, text, card) for text in ([instructions] if _one(instructions) else instructions)]
            if any(r is not None for r in requests):
                gen["requests"] = requests
        return self.generate(instructions, n=k, expect=RESPONSE_TAG[task], **gen)

    # ------------------------------------------------------------------ reactions
    def retrosynthesis(self, product: str | list[str], k: int = 10, method: str = "auto", retrosim=None,
                       rank_weight: float | None = None, retrosim_index: str = "standard", **gen):
        """k distinct reactant sets for a product (atom maps stripped; invalid input raises EntityError).

        method: "model" (the model's beams; `gen` options apply to them), "ranked" (RetroSim's top max(k, 10)
        ordered by the model with RetroSim's score as a prior, as `tasks.ranking.rank_union` orders them),
        "rag" (`retrosynthesis_rag`), "auto" ("ranked" when `retrosim` is given or the checkpoint opts in with
        `naturelm_rank_weight` in its generation_config.json or a RetroSim saved as CHECKPOINT/retrosim, and a
        RetroSim is found; else "model"). Each answer's `source` says which: "model" or "retrosim+model".
        `retrosim`: a fitted RetroSim or a directory written by RetroSim.save; default
        `naturelm.tasks.baselines.retrosim.find_retrosim(checkpoint)` (DataSourceMissing for "ranked" without one).
        `rank_weight`: RetroSim's weight (default the checkpoint's `naturelm_rank_weight`, else RANK_PRIOR_WEIGHT).
        `retrosim_index="leak-free"`: rank the candidates of RetroSim's leak-free index instead (USPTO-50k training
        reactions whose product is, by connectivity, a test product removed; `retrosim.cached_retrosim`), to
        measure what the test products' own reactions in the standard index are worth; "auto" then ranks, and
        each answer's `source` is "retrosim-leakfree+model".
        """
        from naturelm.language.codecs import strip_atom_maps

        if method not in RETRO_METHODS:
            raise ConfigError(f"retrosynthesis method {method!r} is not one of {', '.join(RETRO_METHODS)}")
        if method == "rag":
            return self.retrosynthesis_rag(product, k=k, **gen)
        from naturelm.tasks.baselines.retrosim import INDEXES

        if retrosim_index not in INDEXES:
            raise ConfigError(f"retrosim_index {retrosim_index!r} is not one of {', '.join(INDEXES)}")
        if retrosim is not None and retrosim_index != "standard":
            raise ConfigError("give retrosim= (a RetroSim or a saved one) or retrosim_index=, not both")
        leak_free = retrosim_index != "standard"
        products = [strip_atom_maps(p) for p in ([product] if _one(product) else product)]
        if method == "ranked" or (method == "auto" and (leak_free or self._ranks_by_default(retrosim))):
            try:
                rs = self._retrosim_for(retrosim, retrosim_index)
            except DataSourceMissing:
                if method == "ranked" or retrosim is not None or leak_free:
                    raise
                rs = None  # "auto" without a RetroSim: the model's beams
            if rs is not None:
                out = self._retro_ranked(products, k, rs, rank_weight)
                out = [checks.check_retrosynthesis(p, gens) for p, gens in zip(products, out)]
                return out[0] if _one(product) else out
        prompts = [instruction("retrosynthesis", product=p) for p in products]
        out = self._ask("retrosynthesis", prompts, k, beams=True, **gen)
        out = [checks.check_retrosynthesis(p, gens) for p, gens in zip(products, out)]
        return out[0] if _one(product) else out

    def _ranks_by_default(self, retrosim) -> bool:
        """Whether "auto" ranks: a RetroSim is passed, or the checkpoint opts in (a tuned `naturelm_rank_weight`
        in its generation_config.json, or a RetroSim saved as CHECKPOINT/retrosim)."""
        from naturelm.tasks.baselines.retrosim import SAVED_DIR, is_saved

        return (retrosim is not None or self.rank_weight is not None
                or (self.path is not None and is_saved(Path(self.path) / SAVED_DIR)))

    def _retrosim_for(self, retrosim=None, index: str = "standard"):
        """`retrosim` as a fitted RetroSim (a saved directory is loaded once); None: the one `find_retrosim` gives
        for this checkpoint and `index` (saved near it, cached, or fitted on USPTO-50k), found once.
        DataSourceMissing if none."""
        from naturelm.tasks.baselines.base import Predictor
        from naturelm.tasks.baselines.retrosim import RetroSim, find_retrosim

        if retrosim is not None and not isinstance(retrosim, (str, os.PathLike)):
            if not (isinstance(retrosim, Predictor) and retrosim.supports("retrosynthesis")):
                raise ConfigError(f"retrosim= must be a fitted RetroSim or a saved RetroSim directory, "
                                  f"not {retrosim!r}")
            return retrosim
        key = str(Path(retrosim).resolve()) if retrosim is not None else f"index:{index}"
        if key not in self._retrosims:
            self._retrosims[key] = (RetroSim.from_saved(key, processes=1, progress=False) if retrosim is not None
                                    else find_retrosim(self.path, index=index))
        return self._retrosims[key]

    def _retro_ranked(self, products: list[str], k: int, retrosim, weight: float | None) -> list[list[Generation]]:
        """Per canonical product, RetroSim's candidates in `tasks.ranking.rank_union`'s order (model mean
        log-probability + weight x RetroSim score), each checked by RDKit; `meta` holds both parts and RetroSim's
        template and training reaction (the template precedent)."""
        from naturelm.tasks.ranking import RANK_PRIOR_WEIGHT

        w = next(x for x in (weight, self.rank_weight, RANK_PRIOR_WEIGHT) if x is not None)
        proposals = retrosim.predict("retrosynthesis", products, max(k, RETROSIM_CANDIDATES))
        from naturelm.tasks.baselines.retrosim import INDEXES

        index = getattr(retrosim, "index", "standard")
        source = RANKED_SOURCE if index == "standard" else f"{INDEXES.get(index, index)}+model"
        return self._tool_ranked("retrosynthesis", products, proposals, k, w, source, "retrosim_score")

    def _tool_ranked(self, task: str, queries: list[str], proposals, k: int, w: float, source: str,
                     prior_name: str, retro_weight: float = 0.0) -> list[list[Generation]]:
        """A tool's candidates per query ordered by model mean log-probability + w x the tool's score
        (`tasks.ranking.order_union`; forward with `retro_weight` > 0 also by the round trip,
        `tasks.ranking.combined_score`); `meta` holds the parts and what the tool says of its candidate
        (`TOOL_META`: a template and training reaction, a composition's formula and oxidation states)."""
        from naturelm.tasks.ranking import candidate_key, order_union, round_trip_scores, union_scores
        from naturelm.tasks.base import Example

        scored = union_scores(self, [Example(q) for q in queries], proposals, task=task)
        retro = round_trip_scores(self, queries, scored) if retro_weight else None
        out = []
        for i, (row, ordered, props) in enumerate(zip(scored, order_union(scored, w, k, retro, retro_weight),
                                                      proposals)):
            parts = {g.canonical or g.entity or "": (g, prior, retro[i][j] if retro else None)
                     for j, (g, prior) in enumerate(row)}
            precedent = {}
            for p in props:
                precedent.setdefault(candidate_key(task, p.text), p.meta)
            gens = []
            for c in ordered:
                g, prior, back = parts[c.text]
                round_trip = {} if back is None else {"retro_logprob": back if math.isfinite(back) else None,
                                                      "retro_weight": retro_weight}
                meta = {prior_name: prior, "rank_weight": w,
                        "model_logprob": g.score if math.isfinite(g.score) else None, **round_trip,
                        **{k_: v for k_, v in precedent.get(g.canonical, {}).items() if k_ in TOOL_META}}
                base = {f.name: getattr(g, f.name) for f in fields(g)}
                gens.append(RankedGeneration(**{**base, "score": c.score, "source": source, "meta": meta}))
            out.append(gens)
        return out

    def retrosynthesis_rag(self, product: str | list[str], k: int = 10, n_neighbours: int = 3, memory=None, **gen):
        """Retrosynthesis with the most similar training reactions in the prompt (retrieval-augmented, issue 8).

        `memory`: a naturelm.data.retrieval.ReactionMemory; default the USPTO-50k training split (built once)."""
        from naturelm.data.instructions import neighbour_lines
        from naturelm.language.codecs import strip_atom_maps

        memory = memory or self.reaction_memory()
        products = [product] if _one(product) else list(product)
        prompts = []
        for p in products:
            p = strip_atom_maps(p)
            nbs = [{"product": a, "reactants": b} for a, b, _ in memory.neighbours(p, n_neighbours)]
            prompts.append(instruction("retrosynthesis_rag", neighbours=neighbour_lines(nbs), product=p))
        out = self._ask("retrosynthesis", prompts, k, beams=True, **gen)
        out = [checks.check_retrosynthesis(strip_atom_maps(p), gens) for p, gens in zip(products, out)]
        return out[0] if _one(product) else out

    def reaction_memory(self, direction: str = "retro"):
        """The retrieval memory (USPTO-50k train split) of `retrosynthesis_rag` ("retro", by product) or
        `forward_rag` ("forward", by reactant set), built on first use."""
        if direction not in self._memories:
            from naturelm.data.retrieval import ReactionMemory, reaction_sides

            reaction_sides(direction)  # ConfigError for an unknown direction, before USPTO-50k is read

            self._memories[direction] = ReactionMemory.from_uspto50k(direction=direction)
        return self._memories[direction]

    def forward(self, reactants: str | list[str], k: int = 5, method: str = "auto", templates=None,
                rank_weight: float | None = None, retro_weight: float | None = None, **gen):
        """k distinct products for a reactant set (`A.B`).

        method: "model" (the model's beams; `gen` options apply to them), "ranked" (the products of training
        reactions' templates applied forward, `naturelm.tasks.baselines.forward_templates.ForwardTemplates`, top
        max(k, 10), ordered by the model's mean log-probability + weight x the template score), "auto" ("ranked"
        when `templates` is given or the checkpoint sets `naturelm_forward_rank_weight` in generation_config.json,
        else "model"). `templates`: a fitted ForwardTemplates (default: fitted once on USPTO-50k's training split).
        `rank_weight`: the template score's weight (default the checkpoint's, else FORWARD_RANK_WEIGHT).
        `retro_weight` r in [0, 1]: the round trip's share of the ranking (default the checkpoint's
        `naturelm_forward_retro_weight`, else 0): each product P is scored (1 - r) x the model's mean
        log-probability of P + r x its mean log-probability of the reactants as the retrosynthesis answer for P +
        weight x template score (`tasks.ranking.combined_score`; `meta` holds `retro_logprob`).
        Each answer's `source` says which: "model" or "templates+model".
        """
        from naturelm.language.codecs import canonical_reactant_set
        from naturelm.tasks.ranking import check_retro_weight

        if method not in FORWARD_METHODS:
            raise ConfigError(f"forward method {method!r} is not one of {', '.join(FORWARD_METHODS)}")
        sets = [canonical_reactant_set(r) for r in ([reactants] if _one(reactants) else reactants)]
        if method == "ranked" or (method == "auto" and (templates is not None or self.forward_rank_weight is not None)):
            tool = templates if templates is not None else self.forward_templates()
            w = next(x for x in (rank_weight, self.forward_rank_weight, FORWARD_RANK_WEIGHT) if x is not None)
            r = check_retro_weight(next(x for x in (retro_weight, self.forward_retro_weight, 0.0) if x is not None))
            proposals = tool.predict("forward", sets, max(k, TEMPLATE_CANDIDATES))
            out = self._tool_ranked("forward", sets, proposals, k, w, FORWARD_RANKED_SOURCE, "template_score", r)
        else:
            prompts = [instruction("forward", reactants=r) for r in sets]
            out = self._ask("forward", prompts, k, beams=True, **gen)
        out = [checks.check_forward(r, gens) for r, gens in zip(sets, out)]
        return out[0] if _one(reactants) else out

    def forward_templates(self):
        """The forward-template tool of ranked forward prediction, fitted once on USPTO-50k's training split."""
        if self._forward_templates is None:
            from naturelm.tasks.baselines.forward_templates import ForwardTemplates

            self._forward_templates = ForwardTemplates.from_uspto50k()
        return self._forward_templates

    def forward_rag(self, reactants: str | list[str], k: int = 5, n_neighbours: int = 3, memory=None, **gen):
        """Forward prediction with the training reactions of most similar reactant sets in the prompt (issue 8).

        `memory`: a naturelm.data.retrieval.ReactionMemory with direction "forward"; default the USPTO-50k
        training split (built once)."""
        from naturelm.data.instructions import neighbour_lines
        from naturelm.language.codecs import canonical_reactant_set

        memory = memory or self.reaction_memory("forward")
        if memory.direction != "forward":
            raise ConfigError(f"forward_rag needs a ReactionMemory with direction 'forward', not {memory.direction!r}")
        sets = [canonical_reactant_set(r) for r in ([reactants] if _one(reactants) else reactants)]
        prompts = []
        for r in sets:
            nbs = [{"product": a, "reactants": b} for a, b, _ in memory.neighbours(r, n_neighbours)]
            prompts.append(instruction("forward_rag", neighbours=neighbour_lines(nbs, "forward"), reactants=r))
        out = self._ask("forward_rag", prompts, k, beams=True, **gen)
        out = [checks.check_forward(r, gens) for r, gens in zip(sets, out)]
        return out[0] if _one(reactants) else out

    # ------------------------------------------------------------------ naming
    def smiles_to_iupac(self, smiles: str | list[str], k: int = 5, method: str = "auto", **gen):
        """Up to k IUPAC names, OPSIN-verified first. method: "auto" (model + rule namers), "model", "rules".

        Verified rule names come from openclatura before nispo (openclatura's are closer to preferred IUPAC names:
        "naphthalene", not "naphthalen"); each answer's `source` says what produced it ("model", "openclatura",
        "nispo")."""
        from naturelm.language.codecs import canonical_smiles
        from naturelm.tools.naming import smiles_to_iupac_verified

        items = [smiles] if _one(smiles) else list(smiles)
        canon = [canonical_smiles(s) for s in items]
        model_out = self._ask("smiles_to_iupac", [instruction("smiles_to_iupac", mol=s) for s in canon], k, True,
                              **gen) if method != "rules" else [[] for _ in canon]
        out = []
        for s, gens in zip(canon, model_out):
            score = {g.entity: g.score for g in gens}
            answers = smiles_to_iupac_verified(s, [g.entity for g in gens], k=k, method=method)
            out.append([Generation(raw=a.name, entity=a.name, tag=None, canonical=a.name, valid=a.verified,
                                   score=score.get(a.name, math.nan), verified_by="opsin" if a.verified else None,
                                   source=a.source, checks=[checks.opsin_round_trip(s, a.parsed, a.name)])
                        for a in answers])
        return out[0] if _one(smiles) else out

    def iupac_to_smiles(self, name: str | list[str], k: int = 5, method: str = "auto", **gen):
        """Up to k SMILES for a name: OPSIN's parse, else the registry's structure for a trivial name (PubChem
        synonyms), then the model's candidates, each checked against that reference (unverified without one).
        method: "auto", "model", "rules" (OPSIN and the registry only)."""
        from naturelm.tools.naming import iupac_to_smiles_verified

        names = [name] if _one(name) else list(name)
        model_out = self._ask("iupac_to_smiles", [instruction("iupac_to_smiles", name=x) for x in names], k, True,
                              **gen) if method != "rules" else [[] for _ in names]
        out = []
        for x, gens in zip(names, model_out):
            score = {g.canonical: g.score for g in gens if g.canonical}
            answers = iupac_to_smiles_verified(x, [g.canonical for g in gens if g.canonical], k=k, method=method)
            out.append([Generation(raw=a.smiles, entity=a.smiles, tag="mol", canonical=a.smiles, valid=True,
                                   score=score.get(a.smiles, math.nan),
                                   verified_by=(a.reference_source if a.verified else "rdkit"), source=a.source,
                                   checks=[checks.structure_reference(a.smiles, a.source, a.reference,
                                                                      a.reference_source, x)])
                        for a in answers])
        return out[0] if _one(name) else out

    # ------------------------------------------------------------------ molecules
    def generate_molecules(self, n: int = 10, **properties):
        """n molecules: unconditional (`<mol>` prompt), or with target properties, e.g. `QED=0.5, TPSA=40`."""
        from naturelm.data.instructions import MOLECULE_PROPERTIES, property_text

        gen = _gen(properties)
        if not properties:
            if self.prompt_constraints and gen.get("constrained", True):
                gen.update(_unconditional_requests("molecule_generation", 1))
            return self.generate("<mol>", n=n, raw=True, **gen)
        names = {p.lower(): p for p in MOLECULE_PROPERTIES}
        unknown = [p for p in properties if p.lower() not in names]
        if unknown:
            raise ConfigError(f"unknown molecule properties {unknown}; use {MOLECULE_PROPERTIES}")
        text = " and ".join(property_text(names[p.lower()], v)[0] for p, v in properties.items())
        out = self._ask("property_to_molecule", instruction("property_to_molecule", property_text=text), n,
                        beams=False, **gen)
        return checks.check_property_targets({names[p.lower()]: float(v) for p, v in properties.items()}, out)

    def optimize_molecule(self, smiles: str, goal: str = "increase QED", n: int = 4, delta: float | None = None, **gen):
        """n edits of a molecule toward a goal: "increase QED", "decrease LogP", "HBD+" or "bbb"."""
        from naturelm.data.instructions import OPTIMIZATION
        from naturelm.language.codecs import canonical_smiles

        mol = canonical_smiles(smiles)
        if "bbb" in goal.lower() or "blood" in goal.lower():
            out = self._ask("bbb_optimization", instruction("bbb_optimization", mol=mol), n, beams=False, **gen)
            return checks.check_bbb_optimization(mol, out)
        prop = next((p for p in OPTIMIZATION if re.search(rf"\b{p}\b", goal, re.I)), None)
        if prop is None:
            raise ConfigError(f"goal {goal!r} names no optimisable property; use one of {list(OPTIMIZATION)} or 'bbb'")
        direction = "decrease" if re.search(r"decrease|lower|reduce|-$", goal, re.I) else "increase"
        name, default_delta = OPTIMIZATION[prop]
        delta = default_delta if delta is None else delta
        prompt = instruction("property_optimization", mol=mol, property_name=name, direction=direction, delta=delta)
        out = self._ask("property_optimization", prompt, n, beams=False, **gen)
        return checks.check_optimization(mol, prop, direction, float(delta), out)

    def classify(self, question: str | list[str]):
        """p(Yes) / (p(Yes) + p(No)) of the response's first word, for one question or many.

        A question must tag the entity it asks about (`<mol>…</mol>`, `<protein>…</protein>`): EntityError if not."""
        qs = [question] if _one(question) else list(question)
        for q in qs:
            _require_entity(q)
        tok = self.tokenizer
        prompts = self.engine.encode(qs)
        yes, no = tok.encode("Yes"), tok.encode("No")
        lp_yes = self.engine.logprobs(prompts, [yes] * len(qs))
        lp_no = self.engine.logprobs(prompts, [no] * len(qs))
        out = [1.0 / (1.0 + math.exp(min(700.0, sum(n_) - sum(y)))) for y, n_ in zip(lp_yes, lp_no)]
        return out[0] if _one(question) else out

    def classify_checked(self, question: str | list[str]):
        """`classify` as Classification answers: the model's p(Yes), its answer, and the checks (for a BBB question,
        the BBB oracle's probability with its held-out AUROC and whether model and oracle agree)."""
        qs = [question] if _one(question) else list(question)
        out = []
        for q, p in zip(qs, self.classify(qs)):
            found, _ = checks.classification_checks(q, p)
            out.append(Classification(q, p, "Yes" if p >= 0.5 else "No", checks=found))
        return out[0] if _one(question) else out

    # ------------------------------------------------------------------ proteins, RNA, materials
    def design_protein(self, description: str | None = None, n: int = 1, **gen):
        """n protein sequences: unconditional, or for a description such as "soluble"."""
        gen.setdefault("max_new_tokens", max(512, self.max_new_tokens))
        if not description:
            out = self.generate("<protein>", n=n, raw=True, **gen)
        else:
            out = self._ask("text_to_protein", instruction("text_to_protein", label=description), n, beams=False, **gen)
        return checks.check_proteins(description, out)

    def design_rna(self, n: int = 10, **gen):
        """n RNA sequences from the bare `<rna>` prompt."""
        gen.setdefault("max_new_tokens", self.max_new_tokens)
        return self.generate("<rna>", n=n, raw=True, **gen)

    def design_material(self, elements: str | list[str] | None = None, property: str | None = None,
                        value: float | None = None, n: int = 10, method: str = "auto",
                        rank_weight: float | None = None, **gen):
        """n materials: from elements (["Li", "Fe", "O"]), a property target (band_gap=1.5), or unconditional.

        For elements, `method`: "ranked" (the charge-balanced compositions of exactly those elements that SMACT
        enumerates, `naturelm.tasks.baselines.compositions.SmactCompositions`, top max(n, its RANKED_CANDIDATES) by
        the tool's prior for small formula units of common oxidation states, ordered by the model's mean
        log-probability + weight x that prior; at most n, fewer when fewer compositions exist, none when no
        composition of the elements is SMACT-valid), "model" (the model's samples under the request's constraints,
        `naturelm.tasks.requests.ElementsRequest`; `gen` options apply to them), "auto" ("ranked": the tool needs
        only SMACT). `rank_weight`: the tool score's weight (default the checkpoint's
        `naturelm_material_rank_weight`, else MATERIAL_RANK_WEIGHT). Each answer's `source` says which: "model" or
        "smact+model"; each carries the SMACT and element checks. A symbol that is no element raises ConfigError.
        Property targets and unconditional requests are always the model's samples."""
        if elements is not None and property is not None:
            raise ConfigError("design_material: give elements= or property=/value=, not both")
        if method not in MATERIAL_METHODS:
            raise ConfigError(f"design_material method {method!r} is not one of {', '.join(MATERIAL_METHODS)}")
        if elements is not None:
            from naturelm.tasks.requests import element_symbols

            els = elements.replace(",", " ").split() if isinstance(elements, str) else list(elements)
            element_symbols(els)  # ConfigError naming a symbol that is no element
            prompt = instruction("composition_to_material", elements=", ".join(els))
            if method == "model":
                out = self._ask("composition_to_material", prompt, n, beams=False, **gen)
            else:
                out = self._compositions_ranked(prompt, els, n, rank_weight)
            return checks.check_materials(els, None, None, out)
        if method == "ranked":
            raise ConfigError("design_material: method='ranked' needs elements= (the composition tool ranks "
                              "compositions of requested elements)")
        if property is not None:
            from naturelm.data.instructions import MATERIAL_TEXT, material_property_text

            if property not in MATERIAL_TEXT or value is None:
                raise ConfigError(f"design_material: property must be one of {list(MATERIAL_TEXT)} with a value=")
            prompt = instruction("property_to_material", property_text=material_property_text(property, value)[0])
            out = self._ask("property_to_material", prompt, n, beams=False, **gen)
            return checks.check_materials(None, property, value, out)
        return checks.check_materials(None, None, None, self.generate("<material>", n=n, raw=True, **gen))

    def _compositions_ranked(self, prompt: str, elements: list[str], n: int, weight: float | None):
        """SMACT's compositions of `elements` (within the data card's atoms-per-cell bound) ordered by the model
        under `prompt` + weight x the tool's score (`_tool_ranked`)."""
        from naturelm.tasks.baselines.compositions import RANKED_CANDIDATES, SmactCompositions
        from naturelm.tasks.requests import cell_atom_bound

        w = next(x for x in (weight, self.material_rank_weight, MATERIAL_RANK_WEIGHT) if x is not None)
        tool = SmactCompositions(max_atoms=cell_atom_bound(self.data_card()))
        proposals = [tool.propose(elements, max(n, RANKED_CANDIDATES))]
        return self._tool_ranked("composition_to_material", [prompt], proposals, n, w, MATERIAL_RANKED_SOURCE,
                                 "smact_score")[0]

    def guide_rna(self, dna: str, n: int = 5, **gen):
        """n guide RNAs for a target DNA sequence."""
        from naturelm.language.codecs import get_codec

        seq = get_codec("dna").canonicalize(dna)
        return checks.check_guides(seq, self._ask("guide_rna", instruction("guide_rna", dna=seq), n, beams=False, **gen))

    # ------------------------------------------------------------------ cross-domain
    def design_ligand(self, protein: str | None = None, target: str | None = None, n: int = 10, **gen):
        """n molecules for a protein given by its (pocket) sequence, or a target by gene symbol or name (one of the
        30 MoleculeACE targets, naturelm.data.sources.moleculeace.TARGETS). Checks: drug-likeness (QED) and the
        target's affinity oracle for a named target or a sequence that is a known (dockstring) pocket, else
        unverified."""
        from naturelm.data.instructions import target_text
        from naturelm.data.sources.dockstring import pocket_sequences
        from naturelm.data.sources.moleculeace import TARGETS, find_target
        from naturelm.language.codecs import get_codec

        if (protein is None) == (target is None):
            raise ConfigError("design_ligand: give protein= (a sequence) or target= (a gene symbol or name), not both")
        if protein is not None:
            seq = get_codec("protein").canonicalize(protein)
            known = {g for g, _ in TARGETS.values()}
            gene = next((g for g, s in pocket_sequences().items() if s == seq and g in known), None)
            prompt_target = target_text({"sequence": seq}, "sequence")
        else:
            gene, name = find_target(target)
            prompt_target = target_text({"gene": gene, "target_name": name}, "name")
        gens = self._ask("protein_to_molecule", instruction("protein_to_molecule", target=prompt_target), n,
                         beams=False, **gen)
        return checks.check_ligands(gene, gens)

    def translate_dna(self, dna: str, k: int = 1, **gen):
        """The protein a coding sequence encodes: the model's answers, each checked against Biopython's translation;
        Biopython's own answer (source "biopython") is added when no model answer agrees."""
        from naturelm.language.codecs import get_codec
        from naturelm.tools.translation import clean_dna

        seq = get_codec("dna").canonicalize(dna)
        if clean_dna(seq) is None:
            raise EntityError("dna", seq, None, "only A, C, G, T (or U) can be translated")
        gens = self._ask("dna_to_protein", instruction("dna_to_protein", dna=seq), k, beams=True, **gen)
        return checks.check_translation(seq, gens)

    def back_translate(self, protein: str, n: int = 1, **gen):
        """n coding sequences for a protein, each translated back by Biopython (checks: a complete CDS that
        encodes the protein)."""
        from naturelm.language.codecs import get_codec

        seq = get_codec("protein").canonicalize(protein)
        gen.setdefault("max_new_tokens", max(self.max_new_tokens, 3 * len(seq) + 8))
        gens = self._ask("protein_to_dna", instruction("protein_to_dna", protein=seq), n, beams=False, **gen)
        return checks.check_back_translation(seq, gens)

    def rna_for_protein(self, rbp: str, by: str = "gene", n: int = 5, **gen):
        """n RNAs for an RNA-binding protein named by `by`: "gene" (name), "gene_id" or "family" (ATtRACT).
        Checks: the best site of the protein's ATtRACT matrices in each RNA, and whether it is a binding site."""
        from naturelm.data.instructions import RBP_TEXT
        from naturelm.tasks.protein_to_rna import motif_set

        if by not in RBP_TEXT:
            raise ConfigError(f"rna_for_protein: by={by!r} is not one of {sorted(RBP_TEXT)}")
        name = rbp.strip()
        if not len(motif_set(by, name)):
            raise ConfigError(f"rna_for_protein: no ATtRACT motif for {by} {rbp!r}")
        prompt = instruction("protein_to_rna", rbp=RBP_TEXT[by].format(**{by: name}))
        return checks.check_rbp_rna(by, name, self._ask("protein_to_rna", prompt, n, beams=False, **gen))

    # ------------------------------------------------------------------ ranking
    def rank(self, prompt: str | list[str], candidates: list, tag: str | None = None, raw: bool = False):
        """Candidates (strings or Candidate objects) scored by the mean log-probability of the candidate as the
        response (wrapped in `tag` when given), checked, merged by canonical form, best first.

        A list of prompts takes one candidate list per prompt and gives one ranked list per prompt; all of them
        are scored together (each prompt run once, its candidates batched on its cache)."""
        many = not _one(prompt)
        if many:
            for i, pool in enumerate(_listed("candidates", candidates)):
                _listed(f"candidates[{i}]", pool)
        else:
            _listed("candidates", candidates)
        prompts, pools = (list(prompt), [list(c) for c in candidates]) if many else ([prompt], [list(candidates)])
        if len(pools) != len(prompts):
            raise ConfigError(f"rank: {len(prompts)} prompts but {len(pools)} candidate lists; give one list per prompt")
        pools = [[c for c in pool if isinstance(getattr(c, "text", c), str) and getattr(c, "text", c).strip()]
                 for pool in pools]
        responses = [[wrap(tag, t) if tag and not t.lstrip().startswith("<") else t
                      for t in (getattr(c, "text", c) for c in pool)] for pool in pools]
        p_ids = self.engine.encode(prompts, raw=raw) if any(pools) else []
        pairs, conts = [], []  # (prompt, candidate) of every candidate the tokenizer accepts, its ids
        for i, rs in enumerate(responses):
            for j, r in enumerate(rs):
                try:
                    ids = self.tokenizer.encode(r)
                except (EntityError, ValueError):
                    continue
                if ids:
                    pairs.append((i, j))
                    conts.append(ids)
        lps = self.engine.logprobs([p_ids[i] for i, _ in pairs], conts) if pairs else []
        score = {pair: mean_logprob(lp) for pair, lp in zip(pairs, lps)}
        out = []
        for i, (pool, rs) in enumerate(zip(pools, responses)):
            gens = []
            for j, r in enumerate(rs):
                g = to_generation(r, score.get((i, j), -math.inf))
                g.source = getattr(pool[j], "source", "") or "candidate"
                gens.append(g)
            out.append(dedup(gens))
        return out if many else out[0]

    # ------------------------------------------------------------------ Predictor protocol
    def supports(self, task: str) -> bool:
        return isinstance(task, str) and task in RESPONSE_TAG

    def predict(self, task: str, inputs: list[str], k: int) -> list[list]:
        """Up to k candidates per input (see naturelm.tasks.base for what each task passes as input)."""
        from naturelm.tasks.baselines.base import Candidate

        if not self.supports(task):
            raise ConfigError(f"NatureLM does not support task {task!r}; supported: {sorted(RESPONSE_TAG)}")
        inputs = list(inputs)
        if task == "bbb_classification":
            def answer(xs, _k):
                probs = self.classify([instruction(task, mol=s) for s in ([xs] if _one(xs) else xs)])
                rows = [[Candidate("Yes." if p >= 0.5 else "No.", p, self.name, None, {"p_yes": p})] for p in probs]
                return rows[0] if _one(xs) else rows

            return _batched(answer, inputs, k)
        gens = self._predict_generations(task, inputs, k)
        return [[Candidate(g.canonical or g.entity, g.score, g.source if g.source != "model" else self.name, g.valid,
                           {"raw": g.raw, "retries": g.retries, "verified_by": g.verified_by,
                            "draws": g.draws}) for g in row]
                for row in gens]

    def _next_seed(self, n_inputs: int) -> int:
        """Seeds for successive `predict` calls: one seeded stream, so that repeated calls with the same prompt
        (an evaluation drawing 1,000 `<mol>` samples 32 at a time) never repeat each other's samples."""
        seed = getattr(self, "_predict_seed", 0)
        self._predict_seed = seed + max(1, n_inputs)
        return seed

    def _predict_generations(self, task: str, inputs: list[str], k: int) -> list[list[Generation]]:
        if task in UNCONDITIONAL:
            budget = max(512, self.max_new_tokens) if task == "protein_generation" else self.max_new_tokens
            requests = _unconditional_requests(task, len(inputs)) if self.prompt_constraints else {}
            return self.generate(inputs, n=k, raw=True, max_new_tokens=budget, seed=self._next_seed(len(inputs)),
                                 **requests)
        # retrosynthesis: the model's own beams; `naturelm eval --rank` scores the RetroSim-ranked row of its own
        methods = {"retrosynthesis": partial(self.retrosynthesis, method="model"),
                   "retrosynthesis_rag": self.retrosynthesis_rag,
                   "forward": partial(self.forward, method="model"), "forward_rag": self.forward_rag,
                   # the model's own names: the rule-based namers are scored as baselines of their own
                   "smiles_to_iupac": partial(self.smiles_to_iupac, method="model"),
                   "iupac_to_smiles": partial(self.iupac_to_smiles, method="model")}
        if task in methods:
            return _batched(methods[task], inputs, k)
        if task == "bbb_optimization":
            return [_safe(lambda x: self.optimize_molecule(x, "bbb", n=k), x) for x in inputs]
        if task in ("protein_to_dna", "dna_to_protein"):  # a gene (up to 3 nt per residue) needs a longer budget
            return self._ask(task, inputs, k, beams=False, seed=self._next_seed(len(inputs)),
                             max_new_tokens=max(512, self.max_new_tokens))
        return self._ask(task, inputs, k, beams=False, seed=self._next_seed(len(inputs)))  # the other tasks pass their instruction


def _require_entity(question: str) -> None:
    """A yes/no question must tag what it asks about; EntityError naming the question otherwise."""
    from naturelm.language import find_entities

    if not any(s.tag.domain != "text" for s in find_entities(question)):
        raise EntityError("question", question, reason="no tagged entity: wrap what the question is about in its "
                                                       "tag, e.g. 'Can <mol>CCO</mol> cross the blood-brain barrier?'")


def _safe(fn, x) -> list[Generation]:
    """An invalid input is an unanswerable question in evaluation: no candidates instead of an error."""
    try:
        return fn(x)
    except EntityError:
        return []


def _batched(method, inputs: list[str], k: int) -> list[list[Generation]]:
    """One batched call; when some input is invalid, item by item (invalid inputs get no candidates)."""
    try:
        return method(inputs, k)
    except EntityError:
        return [_safe(lambda x: method(x, k), x) for x in inputs]


# int8-dynamic's calibration (SmoothQuant): molecules outside the benchmark's agreement prompts
CALIBRATION_MOLECULES = ("CC(C)NCC(O)COc1cccc2ccccc12", "CN1CCN(CC1)C(=O)c1ccc(Cl)cc1", "OC(=O)CCc1ccccc1",
                         "COC(=O)c1ccc(N)cc1", "CC(C)(C)OC(=O)N1CCC(CC1)C(=O)O", "Brc1ccc(cc1)C#N",
                         "O=C1CCCN1", "Cc1ccc(S(=O)(=O)Cl)cc1", "OCc1ccc(F)cc1", "CCOC(=O)C(C)(C)Oc1ccc(Cl)cc1",
                         "NC1CCCCC1", "c1ccc2[nH]ccc2c1")


def calibration_prompts() -> list[str]:
    """The prompts whose activations `quantize="int8-dynamic"` calibrates on: retrosynthesis and naming
    instructions over `CALIBRATION_MOLECULES`."""
    return ([instruction("retrosynthesis", product=m) for m in CALIBRATION_MOLECULES]
            + [instruction("smiles_to_iupac", mol=m) for m in CALIBRATION_MOLECULES])


def _rank_weight(checkpoint: Path, key: str = RANK_WEIGHT_KEY) -> float | None:
    """A tuned tool weight of the checkpoint (`key` in generation_config.json: `naturelm_rank_weight` for RetroSim,
    `naturelm_forward_rank_weight` for forward templates and `naturelm_forward_retro_weight` for their round trip,
    `naturelm_material_rank_weight` for SMACT compositions), None without one."""
    cfg = checkpoint / "generation_config.json"
    value = json.loads(cfg.read_text()).get(key) if cfg.is_file() else None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is not None and not (number and math.isfinite(value)):
        raise ConfigError(f"{cfg}: {key} must be a finite number, not {value!r}")
    return None if value is None else float(value)


def write_rank_weight(checkpoint: str | Path, key: str, weight: float) -> Path:
    """Store a tool weight tuned on a valid split (bench/forward_ranking.py, bench/material_ranking.py) as `key` in
    CHECKPOINT/generation_config.json, which `_rank_weight` reads back; the file's other keys are kept."""
    if not (isinstance(weight, (int, float)) and math.isfinite(weight)):
        raise ConfigError(f"{key} must be a finite number, not {weight!r}")
    cfg = Path(checkpoint) / "generation_config.json"
    doc = json.loads(cfg.read_text()) if cfg.is_file() else {}
    doc[key] = float(weight)
    cfg.write_text(json.dumps(doc, indent=2) + "\n")
    return cfg


def _unconditional_requests(task: str, n_prompts: int) -> dict:
    """`requests=` for unconditional prompts: a valid molecule for `<mol>` (`request_for`), nothing otherwise."""
    from naturelm.tasks.requests import request_for

    request = request_for(task, "")
    return {"requests": [request] * n_prompts} if request is not None else {}


def _listed(param: str, value) -> list | tuple:
    """`value` when it is a list or tuple, else InputError naming `param`."""
    if not isinstance(value, (list, tuple)):
        raise InputError(param, f"expected a list, not {type(value).__name__}")
    return value


def _gen(properties: dict) -> dict:
    """Split generation options (max_new_tokens, temperature, ...) out of a properties dict."""
    keys = ("max_new_tokens", "temperature", "top_p", "seed", "constrained", "max_retries", "batch_size", "max_draws")
    return {k: properties.pop(k) for k in keys if k in properties}


def _engine_option(name: str, value) -> None:
    """Keyword options of `generate` are the engine's: an unknown one is an InputError, not a TypeError."""
    if name not in inspect.signature(Engine.generate).parameters:
        raise InputError(name, "not an option of generate")


# Every public method checks its arguments first (naturelm.arguments): bad input raises InputError naming it.
for _name, _extra in {"generate": _engine_option, "generate_molecules": arguments.finite}.items():
    setattr(NatureLM, _name, arguments.checked(getattr(NatureLM, _name), _extra))
for _name, _method in list(vars(NatureLM).items()):
    if (inspect.isfunction(_method) and not _name.startswith("_") and _name not in ("generate", "generate_molecules")
            and _name not in ("supports",)):
        setattr(NatureLM, _name, arguments.checked(_method))
