"""Request-field types every route shares, and the error shapes the OpenAPI schema documents.

Pydantic checks each field at the boundary, so a bad value is a 4xx naming the field before any work starts:
numbers are finite (no NaN, ±inf or 1e400), seeds fit in int64, temperatures are 0 (greedy) or at least
`MIN_TEMPERATURE`, and every string can be written as UTF-8 (no lone surrogates such as `\\ud800`).
"""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from naturelm.arguments import MAX_SEED, MIN_TEMPERATURE


def utf8_text(value: str) -> str:
    """The string itself, or ValueError when it cannot be written as UTF-8 (a lone surrogate)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"not valid Unicode text: lone surrogate {value[exc.start]!r} at position {exc.start}") from None
    return value


def _temperature(value: float | None) -> float | None:
    if value is not None and 0 < value < MIN_TEMPERATURE:
        raise ValueError(f"must be 0 (greedy) or at least {MIN_TEMPERATURE}")
    return value


Text = Annotated[str, AfterValidator(utf8_text)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="sampling seed (0 to 2**63-1); same seed, same samples")]
Temperature = Annotated[float, AfterValidator(_temperature)]


def _check_strings(value: Any, where: str) -> None:
    """Lone surrogates anywhere in nested dicts and lists (dict keys included)."""
    if isinstance(value, str):
        try:
            utf8_text(value)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_strings(k, where)
            _check_strings(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_strings(v, f"{where}[{i}]")


class Checked(BaseModel):
    """Base of every request body: finite numbers only, and every string (however nested) valid Unicode."""

    model_config = ConfigDict(allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _unicode(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for k, v in data.items():
                _check_strings(k, "body")
                _check_strings(v, str(k))
        return data


class ErrorDetail(BaseModel):
    message: str = Field(description="what is wrong and where")
    type: str = Field(description="invalid_request_error, authentication_error, not_found_error, timeout_error, "
                                  "request_too_large, rate_limit_error or server_error")
    param: str | None = Field(None, description="the request field at fault, when one is")
    code: str | None = Field(None, description="a short machine-readable reason")
    request_id: str | None = Field(None, description="500 only: quote it when reporting the failure")


class ErrorBody(BaseModel):
    """Every error the server answers: `{"error": {...}}` (the OpenAI shape)."""

    error: ErrorDetail


def _err(description: str) -> dict:
    return {"model": ErrorBody, "description": description}


# What routes may answer besides 200 (the OpenAPI `responses` of every route)
ERROR_RESPONSES: dict[int | str, dict] = {
    400: _err("malformed JSON, or a Host header this server does not answer to"),
    401: _err("missing or wrong API key (servers started with --api-key)"),
    404: _err("unknown route or task"),
    408: _err("the work did not finish within the server's timeout (--timeout); it is cancelled"),
    413: _err("a body, prompt, entity or requested amount of generation over the server's limits"),
    422: _err("a field has a wrong type or value, or an entity (SMILES, sequence, material) is invalid"),
    429: _err("the server holds as much queued work as it allows; nothing of this request was run"),
    500: _err("an unexpected failure, logged with the request id given in the body"),
}
