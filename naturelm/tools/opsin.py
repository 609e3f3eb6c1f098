"""IUPAC name -> structure with OPSIN (py2opsin), and the InChIKey checks built on it.

Each OPSIN run starts a JVM (~2-4 s), so every function here takes lists and sends them in
large chunks; results are memoised per process so repeated names cost nothing. The JVM runs the jar that
py2opsin ships, as a child process that is polled and killed when the caller's time budget for "opsin"
(`naturelm.generate.cancel.time_budgets`, set by the server) runs out or its request is cancelled.
"""
from __future__ import annotations

import os
import subprocess
import tempfile

from naturelm.errors import NatureLMError
from naturelm.generate.cancel import Deadline
from naturelm.language.codecs.molecule import mol_from_smiles

CHUNK = 20_000  # names per JVM start
# C1-only JIT and the serial GC halve OPSIN's CPU time on short runs (measured: 5k names 9.8 -> 4.3 CPU s)
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
_CACHE: dict[str, str | None] = {}
_CACHE_MAX = 200_000


def rdkit_chem():
    """RDKit's Chem module with its logging silenced."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")
    return Chem


def canonical(smiles: str | None) -> str | None:
    """Canonical RDKit SMILES, or None when RDKit cannot read it."""
    if not smiles:
        return None
    Chem = rdkit_chem()
    mol = mol_from_smiles(smiles)
    return Chem.MolToSmiles(mol) if mol is not None and mol.GetNumAtoms() else None


def inchikey(smiles: str | None) -> str | None:
    """Standard InChIKey of a SMILES (computed by RDKit), or None when it cannot be made."""
    if not smiles:
        return None
    Chem = rdkit_chem()
    mol = mol_from_smiles(smiles)
    if mol is None or not mol.GetNumAtoms():
        return None
    try:
        return Chem.MolToInchiKey(mol) or None
    except Exception:
        return None


OPSIN_JAR = "opsin-cli-2.9.0-jar-with-dependencies.jar"  # shipped inside py2opsin==1.2.0
OPSIN_HINT = "it needs Java >= 8 on PATH (apt-get install openjdk-17-jre-headless) and `pip install py2opsin==1.2.0`"


def _opsin_jar() -> str:
    from importlib.resources import files

    try:
        jar = files("py2opsin") / OPSIN_JAR
    except ModuleNotFoundError:
        raise NatureLMError(f"OPSIN is not installed: {OPSIN_HINT}") from None
    if not jar.is_file():
        raise NatureLMError(f"OPSIN's jar {OPSIN_JAR} is missing from py2opsin: {OPSIN_HINT}")
    return str(jar)


def _run_opsin(names: list[str]) -> list[str]:
    """One JVM start: raw OPSIN SMILES per name ('' when unparsable). The JVM is killed (and BudgetExceeded or
    Cancelled raised) when this thread's "opsin" budget runs out or its work is cancelled."""
    deadline = Deadline("opsin")
    fd, path = tempfile.mkstemp(prefix="opsin_", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as fh:
            fh.write("\n".join(names) + "\n")
        try:
            proc = subprocess.Popen(["java", *JVM_OPTIONS.split(), "-jar", _opsin_jar(), "-osmi", path],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            raise NatureLMError(f"OPSIN could not start: {OPSIN_HINT}") from None
        while True:
            try:
                out, _ = proc.communicate(timeout=0.1)  # retrying after a timeout loses no output
                break
            except subprocess.TimeoutExpired:
                try:
                    deadline.check()
                except BaseException:
                    proc.kill()
                    proc.communicate()
                    raise
    finally:
        os.remove(path)
    lines = out.decode("utf-8", errors="replace").replace("\r", "").split("\n")[:-1]
    if proc.returncode != 0 or len(lines) != len(names):
        raise NatureLMError(f"OPSIN failed (exit {proc.returncode}, {len(lines)} answers for {len(names)} names); "
                            f"{OPSIN_HINT}")
    return lines


def names_to_smiles(names: list[str], chunk: int = CHUNK, progress: bool = False) -> list[str | None]:
    """Parse IUPAC names with OPSIN; canonical RDKit SMILES per name, None when OPSIN or RDKit fails."""
    clean = [n.strip() if isinstance(n, str) and "\n" not in n and "\r" not in n else "" for n in names]
    todo = sorted({n for n in clean if n and n not in _CACHE})
    chunks = range(0, len(todo), chunk)
    if progress and len(chunks) > 1:
        from tqdm import tqdm

        chunks = tqdm(chunks, desc="opsin", unit="chunk")
    for i in chunks:
        part = todo[i : i + chunk]
        if len(_CACHE) + len(part) > _CACHE_MAX:
            _CACHE.clear()
        for name, smi in zip(part, _run_opsin(part)):
            _CACHE[name] = canonical(smi)
    return [_CACHE.get(n) if n else None for n in clean]


def name_to_smiles(name: str) -> str | None:
    """One name (prefer `names_to_smiles` for many: each uncached call starts a JVM)."""
    return names_to_smiles([name])[0]


def names_match(names: list[str | None], smiles_list: list[str], chunk: int = CHUNK, progress: bool = False) -> list[bool]:
    """For each (name, smiles): does OPSIN parse the name to the molecule's InChIKey? Empty names are False."""
    if len(names) != len(smiles_list):
        raise ValueError(f"names_match: {len(names)} names but {len(smiles_list)} SMILES")
    parsed = names_to_smiles([n or "" for n in names], chunk=chunk, progress=progress)
    out = []
    for got, smi in zip(parsed, smiles_list):
        key = inchikey(smi)
        out.append(got is not None and key is not None and inchikey(got) == key)
    return out


def name_matches(name: str, smiles: str) -> bool:
    """True when OPSIN parses `name` to the same InChIKey as `smiles`."""
    return names_match([name], [smiles])[0]
