"""Straightforward reference implementations the fast decode paths are pinned against (tests and bench).

`reference_beam` is the original beam search of `Engine.beam` (every prompt prefilled `width` times, dead and
finished rows computed to the end); `reference_beams` runs it the way `Engine.generate` returned candidates;
`reference_logprobs` / `reference_rank` are the original `Engine.logprobs` / `NatureLM.rank` (one uncached forward
over prompt + candidate per candidate).
"""
from __future__ import annotations

import math

from naturelm.errors import EntityError
from naturelm.generate.engine import NEG_INF, Decoded, beam_width, mean_logprob
from naturelm.generate.postprocess import dedup, to_generation
from naturelm.language.tags import wrap


def reference_beam(self, prompt_ids: list[list[int]], width: int, max_new_tokens: int = 128,
                   constrained: bool = True, expect: str | None = None, length_penalty: float = 0.0
                   ) -> list[list[Decoded]]:
    """The engine's original beam search: all prompts x width rows from the first step to the last."""
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


def reference_beams(lm, prompts: list[str], k: int, max_new_tokens: int, expect: str | None = "reactants",
                    batch_size: int = 16, constrained: bool = True) -> list[list]:
    """k distinct candidates per prompt, as `Engine.generate(num_beams=k)` returned them with `reference_beam`."""
    eng = lm.engine
    ids = eng.encode(prompts)
    cons = eng.constraints(constrained)
    out = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        for p, hyps in zip(chunk, reference_beam(eng, chunk, beam_width(k), max_new_tokens, constrained, expect)):
            out.append(dedup([to_generation(eng._response(p, h.ids, cons), h.score, expect=expect) for h in hyps], k))
    return out


def reference_logprobs(engine, prompt_ids: list[list[int]], continuations: list[list[int]]) -> list[list[float]]:
    """The original `Engine.logprobs`: one left-padded forward over prompt + continuation per row, no cache."""
    import torch

    rows = [p + c for p, c in zip(prompt_ids, continuations)]
    ids, mask, pos = engine._left_pad(rows)
    with torch.inference_mode():
        logits, _ = engine._forward(ids, mask, pos, None, keep=0)
        logp = torch.log_softmax(logits[:, :-1], -1)
        target = ids[:, 1:]
        tok_lp = logp.gather(-1, target[..., None])[..., 0].cpu()
    return [tok_lp[i, tok_lp.shape[1] - len(c):].tolist() if c else [] for i, c in enumerate(continuations)]


def reference_rank(lm, prompt: str, candidates: list, tag: str | None = None, raw: bool = False) -> list:
    """The original `NatureLM.rank`: mean log-probability of each candidate, one uncached forward per row."""
    candidates = [c for c in candidates if isinstance(getattr(c, "text", c), str) and getattr(c, "text", c).strip()]
    if not candidates:
        return []
    texts = [getattr(c, "text", c) for c in candidates]
    responses = [wrap(tag, t) if tag and not t.lstrip().startswith("<") else t for t in texts]
    tok = lm.tokenizer
    conts, gens = [], []
    for r in responses:
        try:
            conts.append(tok.encode(r))
        except (EntityError, ValueError):
            conts.append(None)
    p_ids = lm.engine.encode([prompt], raw=raw)[0]
    ok = [i for i, c in enumerate(conts) if c]
    lps = reference_logprobs(lm.engine, [p_ids] * len(ok), [conts[i] for i in ok]) if ok else []
    score = dict(zip(ok, (mean_logprob(lp) for lp in lps)))
    for i, r in enumerate(responses):
        g = to_generation(r, score.get(i, -math.inf))
        g.source = getattr(candidates[i], "source", "") or "candidate"
        gens.append(g)
    return dedup(gens)
