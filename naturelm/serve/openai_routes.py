"""OpenAI-compatible /v1/models, /v1/completions and /v1/chat/completions (SSE streaming too).

Completions send the prompt as is (`raw=True`); chat renders the last user message with the NatureLM
instruction template `Instruction: …\\n\\n\\nResponse: `. Each choice also carries a `naturelm` field with
the extracted entity, its canonical form and validity (the `openai` client ignores unknown fields).
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from naturelm.language.prompts import format_prompt
from naturelm.serve.app import ApiError

router = APIRouter(prefix="/v1", tags=["openai"])


class _Sampling(BaseModel):
    model_config = ConfigDict(extra="ignore")  # accept (and ignore) OpenAI fields we do not use

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    n: int = Field(1, ge=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    stream: bool = False


class CompletionRequest(_Sampling):
    prompt: str | list[str]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict] | None = None


class ChatRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)


def render_chat(messages: list[ChatMessage]) -> str:
    """The NatureLM chat template: the last user message as `Instruction: …\\n\\n\\nResponse: `."""
    for m in reversed(messages):
        if m.role == "user":
            content = m.content
            if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
                content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
            if content and content.strip():
                return format_prompt(content)
    raise ApiError(422, "messages: no user message with text content", param="messages")


def generation_settings(request: Request, req: _Sampling) -> tuple:
    """The batch key: settings every prompt in one shared generate call must agree on."""
    cfg = request.app.state.config
    max_new = req.max_completion_tokens or req.max_tokens or cfg.default_new_tokens
    if max_new > cfg.max_new_tokens:
        raise ApiError(422, f"max_tokens={max_new} exceeds the server limit {cfg.max_new_tokens} (--max-new-tokens)",
                       param="max_tokens")
    if req.n > cfg.max_n:
        raise ApiError(422, f"n={req.n} exceeds the server limit {cfg.max_n}", param="n")
    return (("n", req.n), ("temperature", req.temperature), ("top_p", req.top_p), ("max_new_tokens", max_new),
            ("raw", True), ("seed", 0 if req.seed is None else req.seed))


def check_prompt(request: Request, prompt: str, param: str) -> str:
    limit = request.app.state.config.max_entity_chars
    if len(prompt) > limit:
        raise ApiError(413, f"{param} has {len(prompt)} characters; the limit is {limit}", param=param,
                       code="sequence_too_long")
    if not prompt:
        raise ApiError(422, f"{param} is empty", param=param)
    return prompt


def _count_tokens(model, text: str) -> int:
    return len(model.tokenizer.encode(text))


def _apply_stop(text: str, stop: str | list[str] | None) -> tuple[str, bool]:
    stops = [stop] if isinstance(stop, str) else (stop or [])
    cut = min((text.find(s) for s in stops if s and s in text), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _choices(model, generations: list, max_new: int, stop) -> list[dict]:
    out = []
    for g in generations:
        text, stopped = _apply_stop(g.raw, stop)
        finish = "stop" if stopped or _count_tokens(model, g.raw) < max_new else "length"
        out.append({"text": text, "finish_reason": finish, "naturelm": {
            "entity": g.entity, "tag": g.tag, "canonical": g.canonical, "valid": g.valid, "score": g.score,
            "verified_by": g.verified_by}})
    return out


def _usage(model, prompts: list[str], texts: list[str]) -> dict:
    p = sum(_count_tokens(model, x) for x in prompts)
    c = sum(_count_tokens(model, x) for x in texts)
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


async def _run(request: Request, prompts: list[str], key: tuple, stop) -> list[list[dict]]:
    model, batcher = request.app.state.model, request.app.state.batcher
    results = await batcher.submit_many(key, prompts)
    max_new = dict(key)["max_new_tokens"]
    return [_choices(model, gens, max_new, stop) for gens in results]


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
    prompts = [check_prompt(request, p, f"prompt[{i}]") for i, p in enumerate(prompts)]
    key = generation_settings(request, req)
    per_prompt = await _run(request, prompts, key, req.stop)
    choices = [dict(c, index=i * req.n + j, logprobs=None) for i, cs in enumerate(per_prompt) for j, c in enumerate(cs)]
    cid, created, name = f"cmpl-{uuid.uuid4().hex}", int(time.time()), request.app.state.config.model_name
    if req.stream:
        chunks = [{"id": cid, "object": "text_completion", "created": created, "model": name, "choices": [c]}
                  for c in choices]
        return StreamingResponse(_sse(chunks), media_type="text/event-stream")
    usage = _usage(request.app.state.model, prompts, [c["text"] for c in choices])
    return {"id": cid, "object": "text_completion", "created": created, "model": name, "choices": choices,
            "usage": usage}


@router.post("/chat/completions")
async def chat_completions(request: Request, req: ChatRequest):
    """Chat: the last user message becomes a NatureLM instruction; the reply is the model's response."""
    prompt = check_prompt(request, render_chat(req.messages), "messages")
    key = generation_settings(request, req)
    (choices,) = await _run(request, [prompt], key, req.stop)
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
    usage = _usage(request.app.state.model, [prompt], [c["text"] for c in choices])
    return {"id": cid, "object": "chat.completion", "created": created, "model": name, "choices": out, "usage": usage}
