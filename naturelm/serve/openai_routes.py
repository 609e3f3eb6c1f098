"""OpenAI-compatible /v1/models, /v1/completions and /v1/chat/completions (SSE streaming too).

Completions send the prompt as is (`raw=True`); chat renders the last user message with the NatureLM
instruction template `Instruction: …\\n\\n\\nResponse: `. Each choice also carries a `naturelm` field with
the extracted entity, its canonical form and validity (the `openai` client ignores unknown fields).
"""
from __future__ import annotations

import json
import math
import time
import uuid
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, Field

from naturelm.errors import ApiError, NatureLMError
from naturelm.generate.engine import encode_prompts, open_tail
from naturelm.language.prompts import format_prompt
from naturelm.language.tags import split_tagged
from naturelm.serve.schema import MIN_TEMPERATURE, Checked, Seed, Temperature, Text

router = APIRouter(prefix="/v1", tags=["openai"])


class _Sampling(Checked):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)  # accept (and ignore) OpenAI fields we do not use

    model: Text | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: Temperature = Field(0.7, ge=0.0, le=2.0, description=f"0 (greedy) or {MIN_TEMPERATURE} to 2")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    seed: Seed | None = None
    stop: Text | list[Text] | None = None
    stream: bool = False


class CompletionRequest(_Sampling):
    prompt: Text | list[Text] = Field(description="one prompt or a list (all prompts together count against the "
                                                  "server's prompt limit)")


class ContentPart(Checked):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    type: Text
    text: Text | None = None


class ChatMessage(Checked):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text | list[ContentPart] | None = None


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)


def render_chat(messages: list[ChatMessage], tokenizer=None) -> str:
    """The NatureLM chat template: the last user message as `Instruction: …\\n\\n\\nResponse: ` (the prompt format of
    the model's tokenizer: released checkpoints end at `Response:`)."""
    for m in reversed(messages):
        if m.role == "user":
            content = m.content
            if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
                content = "".join(p.text or "" for p in content if p.type == "text")
            if content and content.strip():
                return tokenizer.format_prompt(content) if tokenizer is not None else format_prompt(content)
    raise ApiError(422, "messages: no user message with text content", param="messages")


def _tokenizer(request: Request):
    """The served model's NatureTokenizer (None for a backend without one)."""
    return getattr(getattr(request.app.state, "model", None), "tokenizer", None)


def generation_settings(request: Request, req: _Sampling, n_prompts: int = 1) -> tuple[tuple, int]:
    """The batch key (settings every prompt in one shared generate call must agree on) and the cost of one prompt
    (n x new tokens); the request's whole cost is checked against the server's per-request limit.

    Without a seed, requests share batches and each call draws a fresh seed (different samples every time);
    with a seed, the request gets a generate call of its own, so its samples do not depend on its neighbours.
    """
    cfg = request.app.state.config
    if req.model is not None and req.model != cfg.model_name:
        raise ApiError(404, f"The model {req.model!r} does not exist; this server serves {cfg.model_name!r} "
                            "(GET /v1/models)", param="model", code="model_not_found")
    asked = req.max_completion_tokens or req.max_tokens
    if asked is not None and asked > cfg.max_new_tokens:
        raise ApiError(422, f"max_tokens={asked} exceeds the server limit {cfg.max_new_tokens} (--max-new-tokens)",
                       param="max_tokens")
    max_new = asked or min(cfg.default_new_tokens, cfg.max_new_tokens)
    if req.n > cfg.max_n:
        raise ApiError(422, f"n={req.n} exceeds the server limit {cfg.max_n}", param="n")
    cost = req.n * max_new
    if n_prompts * cost > cfg.request_cost_limit:
        raise ApiError(413, f"{n_prompts} prompt(s) x n={req.n} x max_tokens={max_new} = {n_prompts * cost} tokens "
                            f"exceeds the per-request limit {cfg.request_cost_limit}; send fewer prompts, candidates "
                            "or tokens", param="prompt" if n_prompts > 1 else "n" if req.n > 1 else "max_tokens",
                       code="request_too_costly")
    settings = (("n", req.n), ("temperature", req.temperature), ("top_p", req.top_p), ("max_new_tokens", max_new),
                ("raw", True))
    if req.seed is None:
        return ("generate", settings), cost
    return ("generate", settings + (("seed", req.seed),), uuid.uuid4().hex), cost


def check_prompts(request: Request, prompts: list[str], param: str) -> list[str]:
    """Prompts within the size limit (all together), non-empty, and encodable (tags closed and entities valid),
    checked here so that an invalid prompt never joins a batch."""
    limit = request.app.state.config.max_entity_chars
    total = sum(len(p) for p in prompts)
    if total > limit:
        raise ApiError(413, f"{param} has {total} characters; the limit is {limit}", param=param,
                       code="sequence_too_long")
    tok = request.app.state.model.tokenizer
    for i, p in enumerate(prompts):
        where = f"{param}[{i}]" if len(prompts) > 1 else param
        if not p:
            raise ApiError(422, f"{where} is empty", param=where)
        try:
            encode_prompts(tok, [p], raw=True)
        except NatureLMError as exc:
            raise ApiError(422, f"{where}: {exc}", param=where, code="invalid_prompt") from None
    return prompts


def _count_tokens(model, text: str) -> int:
    """Token count of a prompt or completion; a trailing open tag (`<mol>`, a truncated entity) is allowed.

    A completion the tokenizer cannot encode again (say an entity over a codec's size limit) is counted per
    segment, its entities by their units, so that a valid answer never fails on its usage block."""
    tok = model.tokenizer
    rules = getattr(tok, "rules", None)
    segments = split_tagged(text, allow_unclosed=True, tags=rules.tags if rules else None)
    last = segments[-1] if segments else None
    try:
        if last is not None and last.tag is not None and not text.endswith(last.tag.close):
            return len(tok.encode(text + last.tag.close)) - 1
        return len(tok.encode(text))
    except NatureLMError:
        pass
    total = 0
    for seg in segments:
        if seg.tag is None:
            total += len(tok.encode(seg.text))
            continue
        try:
            total += len(tok.encode(seg.tag.open + seg.text + seg.tag.close))
        except NatureLMError:
            units = seg.text.split()
            total += 2 + (len(units) if len(units) > 1 else len(seg.text))
    return total


def _apply_stop(text: str, stop: str | list[str] | None) -> tuple[str, bool]:
    stops = [stop] if isinstance(stop, str) else (stop or [])
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _choices(model, prompt: str, generations: list, max_new: int, stop) -> tuple[list[dict], int]:
    """OpenAI choices and their completion-token count. The text is the continuation only: the engine writes a
    tag the prompt left open (`<mol>`) back in front, which is cut here."""
    tail = open_tail(prompt)
    out, total = [], 0
    for g in generations:
        cut = bool(tail) and g.raw.startswith(tail)
        text, stopped = _apply_stop(g.raw[len(tail):] if cut else g.raw, stop)
        n_tokens = _count_tokens(model, g.raw) - (_count_tokens(model, tail) if cut else 0)
        total += n_tokens
        out.append({"text": text, "finish_reason": "stop" if stopped or n_tokens < max_new else "length",
                    "naturelm": {"entity": g.entity, "tag": g.tag, "canonical": g.canonical, "valid": g.valid,
                                 "score": g.score if math.isfinite(g.score) else None,
                                 "verified_by": g.verified_by}})
    return out, total


async def _run(request: Request, prompts: list[str], key: tuple, cost: int, stop) -> tuple[list[list[dict]], dict]:
    """Queue the prompts in the batcher; choices per prompt and the OpenAI usage block."""
    model, batcher = request.app.state.model, request.app.state.batcher
    results = await batcher.submit_many(key, prompts, cost, disconnected=request.is_disconnected)
    max_new = dict(key[1])["max_new_tokens"]
    shaped = [_choices(model, p, gens, max_new, stop) for p, gens in zip(prompts, results)]
    p_tokens, c_tokens = sum(_count_tokens(model, p) for p in prompts), sum(n for _, n in shaped)
    usage = {"prompt_tokens": p_tokens, "completion_tokens": c_tokens, "total_tokens": p_tokens + c_tokens}
    return [choices for choices, _ in shaped], usage


def _sse(chunks):
    for chunk in chunks:
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


@router.get("/models")
async def list_models(request: Request) -> dict:
    """The one model this server holds."""
    cfg = request.app.state.config
    return {"object": "list", "data": [{"id": cfg.model_name, "object": "model",
                                        "created": int(request.app.state.started), "owned_by": "naturelm"}]}


@router.post("/completions")
async def completions(request: Request, req: CompletionRequest):
    """Text completion of raw prompts (send `Instruction: …\\n\\n\\nResponse: ` yourself, or a bare `<mol>`)."""
    prompts = [req.prompt] if isinstance(req.prompt, str) else req.prompt
    if not prompts:
        raise ApiError(422, "prompt: empty list", param="prompt")
    key, cost = generation_settings(request, req, len(prompts))
    prompts = check_prompts(request, prompts, "prompt")
    per_prompt, usage = await _run(request, prompts, key, cost, req.stop)
    choices = [dict(c, index=i * req.n + j, logprobs=None) for i, cs in enumerate(per_prompt) for j, c in enumerate(cs)]
    cid, created, name = f"cmpl-{uuid.uuid4().hex}", int(time.time()), request.app.state.config.model_name
    if req.stream:
        chunks = [{"id": cid, "object": "text_completion", "created": created, "model": name, "choices": [c]}
                  for c in choices]
        return StreamingResponse(_sse(chunks), media_type="text/event-stream")
    return {"id": cid, "object": "text_completion", "created": created, "model": name, "choices": choices,
            "usage": usage}


@router.post("/chat/completions")
async def chat_completions(request: Request, req: ChatRequest):
    """Chat: the last user message becomes a NatureLM instruction; the reply is the model's response."""
    key, cost = generation_settings(request, req)
    (prompt,) = check_prompts(request, [render_chat(req.messages, _tokenizer(request))], "messages")
    (choices,), usage = await _run(request, [prompt], key, cost, req.stop)
    cid, created, name = f"chatcmpl-{uuid.uuid4().hex}", int(time.time()), request.app.state.config.model_name
    if req.stream:
        chunks = []
        for i, c in enumerate(choices):
            base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name}
            chunks.append({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                "finish_reason": None}]})
            chunks.append({**base, "choices": [{"index": i, "delta": {"content": c["text"]}, "finish_reason": None,
                                                "naturelm": c["naturelm"]}]})
            chunks.append({**base, "choices": [{"index": i, "delta": {}, "finish_reason": c["finish_reason"]}]})
        return StreamingResponse(_sse(chunks), media_type="text/event-stream")
    out = [{"index": i, "message": {"role": "assistant", "content": c["text"]}, "finish_reason": c["finish_reason"],
            "logprobs": None, "naturelm": c["naturelm"]} for i, c in enumerate(choices)]
    return {"id": cid, "object": "chat.completion", "created": created, "model": name, "choices": out, "usage": usage}
