"""Typed errors: every failure names what is wrong and where."""
from __future__ import annotations


class NatureLMError(Exception):
    """Base class of every error this package raises on purpose."""


class EntityError(NatureLMError, ValueError):
    """An entity (SMILES, sequence, material) is not valid in its domain."""

    def __init__(self, domain: str, text: str, position: int | None = None, reason: str = "invalid"):
        self.domain, self.text, self.position, self.reason = domain, text, position, reason
        where = f" at position {position}" if position is not None else ""
        shown = text if len(text) <= 80 else text[:77] + "..."
        super().__init__(f"{domain}: {reason}{where} in {shown!r}")


class TagError(NatureLMError, ValueError):
    """Tags are nested, mismatched or unclosed."""

    def __init__(self, message: str, position: int | None = None, text: str = ""):
        self.position, self.text = position, text
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"{message}{where}")


class DataSourceMissing(NatureLMError, FileNotFoundError):
    """A data source or tool is not installed or not found; the message says how to get it."""

    def __init__(self, what: str, hint: str):
        self.what, self.hint = what, hint
        super().__init__(f"{what} not found: {hint}")


class ConfigError(NatureLMError, ValueError):
    """A configuration, recipe or argument is invalid."""


class InputError(NatureLMError, ValueError):
    """An argument of a call has the wrong type or is out of range; `param` names it."""

    def __init__(self, param: str, message: str):
        self.param = param
        super().__init__(f"{param}: {message}")


class DataFileError(NatureLMError, ValueError):
    """A data file cannot be read as its format says (binary, wrong encoding, truncated, malformed row).

    The message names the file and, where known, the line."""

    def __init__(self, path, message: str, line: int | None = None):
        self.path, self.line = str(path), line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {message}")


class ApiError(NatureLMError):
    """A client error of the HTTP API with its status (400 bad value, 413 too large, 429 busy, ...).

    `param` names the request field; `code` is a short machine-readable reason."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
