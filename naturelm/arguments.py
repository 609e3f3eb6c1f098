"""Argument checks at the Python API boundary: a bad argument is an InputError naming it, never a TypeError,
OverflowError or a crash deep in torch or RDKit.

`checked(method)` checks a NatureLM method's arguments by name before it runs: texts (entities, names,
questions: strings or lists of strings that are valid Unicode), counts (n, k, beams: integers >= 1), finite
numbers (targets, temperatures), seeds (0 to 2**63-1). Keyword options passed on to generation are checked
the same way; other keyword values (molecule property targets) must be finite numbers.
"""
from __future__ import annotations

import functools
import inspect
import math
import numbers

from naturelm.errors import InputError
from naturelm.language.tags import TAGS

MIN_TEMPERATURE = 0.01  # 0 means greedy; below this, logits / temperature overflow
MAX_SEED = 2**63 - 1
TEXTS = frozenset({"inputs", "expect", "prompts", "prompt", "product", "reactants", "smiles", "name", "question", "description", "goal",
                   "dna", "protein", "target", "rbp", "elements", "property", "by", "method", "tag", "task", "direction",
                   "retrosim_index"})
LISTABLE = frozenset({"inputs", "prompts", "prompt", "product", "reactants", "smiles", "name", "question", "elements"})
COUNTS = {"n": 1, "k": 1, "num_beams": 1, "n_neighbours": 1, "max_new_tokens": 1, "batch_size": 1, "max_retries": 0}
NUMBERS = frozenset({"value", "delta", "top_p", "rank_weight", "length_penalty"})
FLAGS = frozenset({"raw", "constrained"})


def text(param: str, value, allow_none: bool = False, allow_list: bool = True):
    """A string (or a list of strings where `allow_list`), each encodable as UTF-8 (no lone surrogates)."""
    if value is None and allow_none:
        return value
    if isinstance(value, (list, tuple)) and not allow_list:
        raise InputError(param, f"expected a string, not {type(value).__name__}")
    items = value if isinstance(value, (list, tuple)) else [value]
    for i, item in enumerate(items):
        where = f"{param}[{i}]" if isinstance(value, (list, tuple)) else param
        if not isinstance(item, str):
            raise InputError(where, f"expected a string, not {type(item).__name__}")
        try:
            item.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(where, f"not valid Unicode: lone surrogate at position {exc.start}") from None
    return value


def count(param: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(param, f"expected an integer, not {type(value).__name__}")
    if value < minimum:
        raise InputError(param, f"must be at least {minimum}, not {value}")
    return int(value)


def number(param: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(param, f"expected a number, not {type(value).__name__}")
    try:
        out = float(value)
    except OverflowError:
        raise InputError(param, "too large to be a float") from None
    if not math.isfinite(out):
        raise InputError(param, f"must be finite, not {value}")
    return out


def temperature(param: str, value) -> float | None:
    if value is None:
        return None
    t = number(param, value)
    if t < 0 or 0 < t < MIN_TEMPERATURE or t > 100:
        raise InputError(param, f"must be 0 (greedy) or between {MIN_TEMPERATURE} and 100, not {value}")
    return t


def seed(param: str, value) -> int:
    s = count(param, value, 0)
    if s > MAX_SEED:
        raise InputError(param, f"must be at most 2**63-1, not {value}")
    return s


def check(param: str, value, other=None, allow_none: bool = False) -> None:
    """One argument by its name; `other(param, value)` checks names without a rule (None: accepted as is).
    None passes where `allow_none` (a parameter whose default is None)."""
    if value is None and (allow_none or param in ("temperature", "tag", "expect")):
        return
    if param in TEXTS:
        text(param, value, allow_list=param in LISTABLE)
        if param == "tag" and value not in TAGS:
            raise InputError("tag", f"unknown tag {value!r}; known: {', '.join(sorted(TAGS))}")
    elif param in COUNTS:
        count(param, value, COUNTS[param])
    elif param in NUMBERS:
        number(param, value)
        if param == "top_p" and not 0 < value <= 1:
            raise InputError(param, f"must be in (0, 1], not {value}")
    elif param == "temperature":
        temperature(param, value)
    elif param == "seed":
        seed(param, value)
    elif param in FLAGS:
        if not isinstance(value, bool):
            raise InputError(param, f"expected True or False, not {type(value).__name__}")
    elif other is not None:
        other(param, value)


def finite(param: str, value) -> None:
    """Extra keyword arguments that must be finite numbers (molecule property targets)."""
    number(param, value)


def checked(method, extra=None):
    """`method` with its arguments checked by name first; extra keyword arguments without a rule by
    `extra(name, value)` (None: passed on unchecked, to the method that takes them)."""
    sig = inspect.signature(method)
    variadic = next((p.name for p in sig.parameters.values() if p.kind is p.VAR_KEYWORD), None)

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise InputError(method.__name__, str(exc)) from None
        for name, value in bound.arguments.items():
            if name == "self":
                continue
            if name == variadic:
                for key, v in value.items():
                    check(key, v, extra)
            else:
                check(name, value, allow_none=sig.parameters[name].default is None)
        return method(self, *args, **kwargs)

    return wrapper
