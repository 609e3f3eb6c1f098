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
