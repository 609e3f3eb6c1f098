"""SMILES -> IUPAC names with rule-based namers: `nispo` (BSD-3) and `openclatura` (MIT).

Both are pure Python on RDKit. A namer never raises here: a failure gives None and a reason
("invalid_smiles", "no_name", "timeout", "error:<Type>"). In the main thread of a process each
molecule gets a CPU-time limit (SIGPROF, so a busy machine does not cause false timeouts), so one
pathological molecule cannot stall a batch.
"""
from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

NAMERS = ("nispo", "openclatura")
TIMEOUT_S = 20.0  # CPU seconds per molecule; a namer's first call also loads its rule tables (~5 s)


class _Timeout(Exception):
    pass


@contextmanager
def _time_limit(seconds: float | None):
    """Raise _Timeout after `seconds` of process CPU time (only in a process's main thread; elsewhere no limit)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum, frame):
        raise _Timeout

    old = signal.signal(signal.SIGPROF, _raise)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def _namer_fn(namer: str):
    if namer == "nispo":
        from nispo import smiles_to_iupac

        return smiles_to_iupac
    if namer == "openclatura":
        import openclatura

        def _name(smiles: str) -> str:
            result = openclatura.name(smiles)
            if result.error:
                raise RuntimeError(result.error)
            return result.name

        return _name
    raise ValueError(f"unknown namer {namer!r}; choose from {NAMERS}")


def name_one(namer: str, smiles: str, timeout: float | None = TIMEOUT_S) -> tuple[str | None, str | None]:
    """(name, None) on success, (None, reason) on failure."""
    from naturelm.language.codecs import mol_from_smiles

    fn = _namer_fn(namer)
    if not smiles or mol_from_smiles(smiles) is None:
        return None, "invalid_smiles"
    try:
        with _time_limit(timeout):
            name = fn(smiles)
    except _Timeout:
        return None, "timeout"
    except Exception as e:  # a namer bug must not stop a batch
        return None, f"error:{type(e).__name__}"
    name = (name or "").strip()
    return (name, None) if name else (None, "no_name")


def name_with_reasons(namer: str, smiles_list: list[str], timeout: float | None = TIMEOUT_S) -> list[tuple[str | None, str | None]]:
    """Name each SMILES; (name, reason) pairs in input order."""
    _namer_fn(namer)  # fail fast on an unknown namer
    return [name_one(namer, s, timeout) for s in smiles_list]


def name_with(namer: str, smiles_list: list[str], timeout: float | None = TIMEOUT_S) -> list[str | None]:
    """Name each SMILES with `namer` ("nispo" or "openclatura"); None where it fails."""
    return [name for name, _ in name_with_reasons(namer, smiles_list, timeout)]
