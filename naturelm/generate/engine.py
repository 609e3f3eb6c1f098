"""The decode loop: batched, left-padded, KV-cached greedy / sampling / beam search with constrained decoding.

One forward per step over `model(...)` with the cache; positions follow HF `generate` (cumsum of the attention
mask), so greedy output equals `model.generate` greedy on the same prompts. Generation stops at EOS or at the
closing tag of the entity being written.
"""
from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

from naturelm.generate.constraints import Constraints
from naturelm.generate.postprocess import Generation, dedup, is_empty, to_generation
from naturelm.language.prompts import format_prompt
from naturelm.language.tags import split_tagged

NEG_INF = float("-inf")


@dataclass
class Decoded:
    """Token ids written after the prompt (stop token included), their summed log-probability, and whether it stopped."""

    ids: list[int]
    score: float
    finished: bool


def beam_width(k: int) -> int:
    """Beams actually run to return k distinct candidates after canonicalisation."""
    return k if k <= 1 else 2 * k


class Engine:
    """Decoding over an HF causal LM and a NatureTokenizer."""

    def __init__(self, model, tokenizer, add_bos: bool = True):
        self.model, self.tok, self.add_bos = model.eval(), tokenizer, add_bos
        self.device = next(model.parameters()).device
        self.vocab_size = model.get_output_embeddings().weight.shape[0]
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self._constraints: dict[bool, Constraints] = {}

    def constraints(self, enabled: bool) -> Constraints:
        if enabled not in self._constraints:
            self._constraints[enabled] = Constraints(self.tok, self.vocab_size, enabled, self.device)
        return self._constraints[enabled]

    # ------------------------------------------------------------------ tensors
    def encode(self, prompts: list[str], raw: bool = False) -> list[list[int]]:
        """Prompt ids: wrapped in the instruction format unless raw, BOS first; may end inside an open tag (`<mol>`)."""
        return encode_prompts(self.tok, prompts, raw, self.add_bos)

    def _left_pad(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.as_tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
        pos = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
        return ids.to(self.device), mask.to(self.device), pos.to(self.device)

    def _forward(self, ids, mask, pos, cache, keep: int = 1):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=keep == 1,
                         logits_to_keep=keep, **{self._cache_kw: cache})
        new_cache = out["cache"] if "cache" in out else out.get("past_key_values")
        return out.logits.float(), new_cache

    def _masked(self, logits, cons: Constraints, states, remaining: int):
        """Logits with disallowed ids at -inf (the constraints never leave a row with nothing allowed)."""
        import torch

        if not cons.enabled:
            return logits
        masks = [cons.allowed(s, remaining) for s in states]
        if all(m is None for m in masks):
            return logits
        ones = torch.ones(logits.shape[-1], dtype=torch.bool, device=logits.device)
        allowed = torch.stack([ones if m is None else m for m in masks])
        return logits.masked_fill(~allowed, NEG_INF)

    # ------------------------------------------------------------------ greedy / sampling
    def sample(self, prompt_ids: list[list[int]], n: int = 1, temperature: float = 0.7, top_p: float = 1.0,
               max_new_tokens: int = 128, constrained: bool = True, seed: int = 0, expect: str | None = None
               ) -> list[list[Decoded]]:
        """n continuations per prompt; greedy when temperature <= 0. Score: summed model log-probability."""
        import torch

        cons = self.constraints(constrained)
        rows = [p for p in prompt_ids for _ in range(n)]
        ids, mask, pos = self._left_pad(rows)
        states = [cons.start(p, expect) for p in rows]
        gen = torch.Generator(device=self.device).manual_seed(seed)
        out: list[list[int]] = [[] for _ in rows]
        scores = torch.zeros(len(rows), dtype=torch.float64)
        done = torch.zeros(len(rows), dtype=torch.bool)
        cache, cur = None, ids
        with torch.inference_mode():
            for step in range(max_new_tokens):
                logits, cache = self._forward(cur, mask, pos, cache)
                logits = logits[:, -1]
                logp = torch.log_softmax(logits, -1)
                logits = self._masked(logits, cons, states, max_new_tokens - step)
                if temperature is None or temperature <= 0:
                    nxt = logits.argmax(-1)
                else:
                    nxt = _sample_top_p(logits / temperature, top_p, gen)
                nxt = torch.where(done.to(nxt.device), self.tok.pad_token_id, nxt)
                picked = logp.gather(1, nxt[:, None])[:, 0].double().cpu()
                scores += torch.where(done, 0.0, picked)
                for i, t in enumerate(nxt.tolist()):
                    if not done[i]:
                        out[i].append(t)
                        states[i] = cons.advance(states[i], t)
                        if cons.is_stop(t):
                            done[i] = True
                if bool(done.all()):
                    break
                cur = nxt[:, None]
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                pos = pos[:, -1:] + 1
        decoded = [Decoded(o, float(s), bool(d)) for o, s, d in zip(out, scores.tolist(), done.tolist())]
        return [decoded[i * n:(i + 1) * n] for i in range(len(prompt_ids))]

    # ------------------------------------------------------------------ beam search
    def beam(self, prompt_ids: list[list[int]], width: int, max_new_tokens: int = 128, constrained: bool = True,
             expect: str | None = None, length_penalty: float = 0.0) -> list[list[Decoded]]:
        """Beam search with `width` beams per prompt; every finished hypothesis, best first.

        Score: summed log-probability / length**length_penalty. Beams that never stop are returned last-resort
        (finished=False) when fewer than `width` hypotheses finished.
        """
        import torch

        cons = self.constraints(constrained)
        P, W = len(prompt_ids), width
        rows = [p for p in prompt_ids for _ in range(W)]
        ids, mask, pos = self._left_pad(rows)
        states = [cons.start(p, expect) for p in rows]
        toks: list[list[int]] = [[] for _ in rows]
        beam_scores = torch.full((P, W), NEG_INF, dtype=torch.float64)
        beam_scores[:, 0] = 0.0
        pools: list[list[tuple[float, list[int], bool]]] = [[] for _ in range(P)]
        done = [False] * P
        norm = (lambda s, n: s / (n ** length_penalty)) if length_penalty else (lambda s, n: s)
        cache, cur = None, ids
        with torch.inference_mode():
            for step in range(max_new_tokens):
                logits, cache = self._forward(cur, mask, pos, cache)
                logp = torch.log_softmax(logits[:, -1], -1)
                logp = self._masked(logp, cons, states, max_new_tokens - step)
                V = logp.shape[-1]
                total = (beam_scores.view(-1, 1).to(logp.device) + logp.double()).view(P, W * V)
                top, idx = total.topk(min(2 * W, W * V), dim=1)
                top, idx = top.tolist(), idx.tolist()
                src, nxt, new_scores = [], [], []
                for p in range(P):
                    live: list[tuple[float, int, int]] = []
                    if not done[p]:
                        for rank, (s, j) in enumerate(zip(top[p], idx[p])):
                            if s == NEG_INF:
                                break
                            b, t = p * W + j // V, j % V
                            if cons.is_stop(t):
                                if rank < W:
                                    pools[p].append((norm(s, len(toks[b]) + 1), toks[b] + [t], True))
                                continue
                            live.append((s, b, t))
                            if len(live) == W:
                                break
                    live += [(NEG_INF, p * W, self.tok.pad_token_id)] * (W - len(live))
                    if not done[p]:
                        best_live = norm(live[0][0], step + 1)
                        finished = sorted((h[0] for h in pools[p]), reverse=True)
                        done[p] = live[0][0] == NEG_INF or (len(finished) >= W and best_live <= finished[W - 1])
                    for s, b, t in live:
                        src.append(b), nxt.append(t), new_scores.append(s)
                for p in range(P):  # beams still alive at the end (or when a prompt ran out): kept as unfinished
                    if step == max_new_tokens - 1 and len(pools[p]) < W:
                        for j in range(W):
                            s, b = new_scores[p * W + j], src[p * W + j]
                            if s != NEG_INF:
                                pools[p].append((norm(s, len(toks[b]) + 1), toks[b] + [nxt[p * W + j]], False))
                if all(done):
                    break
                src_t = torch.as_tensor(src, device=self.device)
                cache.reorder_cache(src_t)
                states = [cons.advance(states[b], t) for b, t in zip(src, nxt)]
                toks = [toks[b] + [t] for b, t in zip(src, nxt)]
                beam_scores = torch.tensor(new_scores, dtype=torch.float64).view(P, W)
                cur = torch.as_tensor(nxt, device=self.device)[:, None]
                mask = torch.cat([mask, mask.new_ones((len(rows), 1))], dim=1)
                pos = pos[:, -1:] + 1
        return [[Decoded(t, s, f) for s, t, f in sorted(pool, key=lambda h: -h[0])] for pool in pools]

    # ------------------------------------------------------------------ scoring
    def logprobs(self, prompt_ids: list[list[int]], continuations: list[list[int]]) -> list[list[float]]:
        """Per-token log-probabilities of each continuation given its prompt (one forward, no cache)."""
        import torch

        rows = [p + c for p, c in zip(prompt_ids, continuations)]
        ids, mask, pos = self._left_pad(rows)
        with torch.inference_mode():
            logits, _ = self._forward(ids, mask, pos, None, keep=0)
            logp = torch.log_softmax(logits[:, :-1], -1)
            target = ids[:, 1:]
            tok_lp = logp.gather(-1, target[..., None])[..., 0].cpu()
        return [tok_lp[i, tok_lp.shape[1] - len(c):].tolist() if c else [] for i, c in enumerate(continuations)]

    # ------------------------------------------------------------------ results
    def _response(self, prompt: list[int], ids: list[int], cons: Constraints) -> str:
        """Decoded response; a tag the prompt left open (raw `<mol>`) is written back in front."""
        return self.tok.decode(cons.open_tail(prompt) + ids)

    def generate(self, prompts: str | list[str], n: int = 1, num_beams: int = 1, temperature: float = 0.7,
                 top_p: float = 1.0, max_new_tokens: int = 128, raw: bool = False, constrained: bool = True,
                 seed: int = 0, max_retries: int = 3, expect: str | None = None, length_penalty: float = 0.0,
                 batch_size: int = 16) -> list[list[Generation]]:
        """Per prompt: `num_beams` distinct beam candidates (num_beams > 1) or n samples (greedy at temperature 0).

        Empty outputs of greedy/sampling are retried with a new seed and a higher temperature (`retries` field).
        `expect`: the tag the answer must be written in (forced when constrained; anything else is invalid).
        """
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        ids = self.encode(prompts, raw)
        cons = self.constraints(constrained)
        results: list[list[Generation]] = []
        for start in range(0, len(ids), batch_size):
            chunk = ids[start:start + batch_size]
            if num_beams > 1:
                found = self.beam(chunk, beam_width(num_beams), max_new_tokens, constrained, expect, length_penalty)
                for p, hyps in zip(chunk, found):
                    gens = [to_generation(self._response(p, h.ids, cons), h.score, expect=expect) for h in hyps]
                    results.append(dedup(gens, num_beams))
                continue
            found = self.sample(chunk, n, temperature, top_p, max_new_tokens, constrained, seed + start, expect)
            gens = [[to_generation(self._response(p, h.ids, cons), h.score, expect=expect) for h in hyps]
                    for p, hyps in zip(chunk, found)]
            self._retry(chunk, gens, temperature, top_p, max_new_tokens, constrained, seed + start, expect, max_retries)
            results += gens
        return results

    def _retry(self, chunk, gens, temperature, top_p, max_new_tokens, constrained, seed, expect, max_retries) -> None:
        cons = self.constraints(constrained)
        for attempt in range(1, max_retries + 1):
            empty = [(i, j) for i, row in enumerate(gens) for j, g in enumerate(row) if is_empty(g)]
            if not empty:
                return
            hotter = max(temperature or 0.0, 0.7) * (1.0 + 0.5 * attempt)
            redo = self.sample([chunk[i] for i, _ in empty], 1, hotter, top_p, max_new_tokens, constrained,
                               seed + 7919 * attempt, expect)
            for (i, j), (h,) in zip(empty, redo):
                gens[i][j] = to_generation(self._response(chunk[i], h.ids, cons), h.score, attempt, expect)


def open_tail(text: str) -> str:
    """The end of a prompt from its unclosed opening tag on (`"<mol>"` for the raw prompt `<mol>`), else ""."""
    segments = split_tagged(text, allow_unclosed=True)
    last = segments[-1] if segments else None
    if last is None or last.tag is None or text.endswith(last.tag.close):
        return ""
    return text[last.start - len(last.tag.open):]


def encode_prompts(tok, prompts: list[str], raw: bool = False, add_bos: bool = True) -> list[list[int]]:
    """Prompt ids: wrapped in the instruction format unless raw; a prompt may end inside an open tag."""
    out = []
    for p in prompts:
        text = p if raw else format_prompt(p)
        tail = open_tail(text)
        if not tail:
            out.append(tok.encode(text, add_bos=add_bos))
        else:  # encode with the closing tag, then drop it
            close = split_tagged(text, allow_unclosed=True)[-1].tag.close
            out.append(tok.encode(text + close, add_bos=add_bos)[:-1])
    return out


def _sample_top_p(logits, top_p: float, generator):
    """One multinomial draw per row from softmax(logits), restricted to the top-p nucleus."""
    import torch

    probs = torch.softmax(logits, -1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p > top_p
        sorted_p = sorted_p.masked_fill(drop, 0.0)
        choice = torch.multinomial(sorted_p, 1, generator=generator)
        return order.gather(1, choice)[:, 0]
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


def mean_logprob(lps: list[float]) -> float:
    """Length-normalised log-probability (-inf for an empty continuation)."""
    return sum(lps) / len(lps) if lps else -math.inf
