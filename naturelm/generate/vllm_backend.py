"""The `generate()` contract through vLLM's offline engine (GPU serving of large checkpoints).

Prompts go in as token ids from the NatureTokenizer and outputs come back as ids, so vLLM never needs an HF
tokenizer for the science tokens (a released NatureLM folder works as downloaded: its vocabulary is rebuilt by
`NatureTokenizer.from_released`, no remote code); generation stops at EOS and at every closing tag of the
tokenizer's tag set. Constrained decoding is
not applied here (vLLM samples on its own); results are checked by the same post-processing.
"""
from __future__ import annotations

import os

from naturelm.errors import DataSourceMissing
from naturelm.generate.postprocess import Generation, dedup, is_empty, to_generation

INSTALL_HINT = "pip install vllm (needs a CUDA GPU); or use NatureLM.load(...).generate, which runs anywhere"


def _vllm():
    try:
        import vllm
    except ImportError:
        raise DataSourceMissing("vllm", INSTALL_HINT) from None
    return vllm


class VLLMBackend:
    """NatureLM generation on vLLM: `VLLMBackend(path).generate(prompts, n=..., num_beams=...)`."""

    def __init__(self, path: str | os.PathLike, **llm_kwargs):
        vllm = _vllm()
        from naturelm.language import NatureTokenizer

        path = str(path)
        self.tok = NatureTokenizer.for_checkpoint(path)  # ours, or a released folder as downloaded (no remote code)
        self.llm = vllm.LLM(model=path, skip_tokenizer_init=True, **llm_kwargs)
        self.stop_ids = [self.tok.eos_token_id] + [self.tok.tag_token_id(t.close) for t in self.tok.tags.values()]

    def generate(self, prompts: str | list[str], n: int = 1, num_beams: int = 1, temperature: float = 0.7,
                 top_p: float = 1.0, max_new_tokens: int = 128, raw: bool = False, seed: int = 0,
                 max_retries: int = 3, **_) -> list:
        """Same results as `NatureLM.generate` (a list per prompt), constrained decoding aside."""
        from naturelm.generate.engine import encode_prompts, open_tail

        vllm = _vllm()
        single = isinstance(prompts, str)
        texts = [prompts] if single else list(prompts)
        ids = encode_prompts(self.tok, texts, raw)  # the tokenizer's prompt format and text rules
        tails = [open_tail(t if raw else self.tok.format_prompt(t), self.tok.rules.tags) for t in texts]
        token_prompts = [{"prompt_token_ids": p} for p in ids]
        if num_beams > 1:
            from vllm.sampling_params import BeamSearchParams

            params = BeamSearchParams(beam_width=2 * num_beams, max_tokens=max_new_tokens)
            outs = self.llm.beam_search(token_prompts, params)
            results = []
            for p, tail, out in zip(ids, tails, outs):
                gens = [to_generation(tail + self.tok.decode(seq.tokens[len(p):]), seq.cum_logprob) for seq in out.sequences]
                results.append(dedup(gens, num_beams))
        else:
            results = self._sample(ids, tails, n, temperature, top_p, max_new_tokens, seed, vllm)
            for attempt in range(1, max_retries + 1):
                empty = [(i, j) for i, row in enumerate(results) for j, g in enumerate(row) if is_empty(g)]
                if not empty:
                    break
                hotter = max(temperature, 0.7) * (1.0 + 0.5 * attempt)
                redo = self._sample([ids[i] for i, _ in empty], [tails[i] for i, _ in empty], 1, hotter, top_p,
                                    max_new_tokens, seed + 7919 * attempt, vllm)
                for (i, j), (g,) in zip(empty, redo):
                    g.retries = attempt
                    results[i][j] = g
        return results[0] if single else results

    def _sample(self, ids, tails, n, temperature, top_p, max_new_tokens, seed, vllm) -> list[list[Generation]]:
        params = vllm.SamplingParams(n=n, temperature=max(temperature, 0.0), top_p=top_p, max_tokens=max_new_tokens,
                                     stop_token_ids=self.stop_ids, seed=seed, logprobs=0, detokenize=False)
        outs = self.llm.generate([{"prompt_token_ids": p} for p in ids], params)
        return [[to_generation(tail + self.tok.decode(o.token_ids), o.cumulative_logprob or 0.0) for o in out.outputs]
                for tail, out in zip(tails, outs)]
