"""Drawings for the playground: RDKit SVG of molecules and reactions, ViennaRNA secondary structures.

Drawing time grows fast with molecule size (a 3 KB SMILES took ~20 s), so molecules over `max_draw_atoms`
atoms are refused with 413 before RDKit lays them out (the SMILES is parsed and checked in a worker thread), and
the layout and drawing run in killable worker processes (`serve/workers.py`) with a time budget of
`draw_budget_s` seconds each: past it, or when the client goes away, the process is killed and the request gets
408 (`budget_exceeded`). Drawings are cached by the server in a cache bounded in bytes (`DrawCache`), not in
entries.
"""
from __future__ import annotations

import functools
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from naturelm.errors import ApiError, EntityError
from naturelm.language.codecs import get_codec, parse_smiles

router = APIRouter(prefix="/v1/draw", tags=["drawings"])
SVG = "image/svg+xml"
_VIENNA = threading.Lock()  # one ViennaRNA call at a time (draw routes run in a thread pool)
MAX_FOLD = 1000  # ViennaRNA folding is cubic in length: longer sequences are not folded or drawn


MAX_DRAW_ATOMS = 250  # default size limit of drawn molecules (all components together)


class DrawingTooLarge(ApiError):
    def __init__(self, param: str, atoms: int, limit: int):
        super().__init__(413, f"{param} has {atoms} atoms; drawings stop at {limit}", param=param,
                         code="drawing_too_large")


class DrawCache:
    """Least-recently-used SVG drawings, at most `max_bytes` of text in all (thread-safe)."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.size = max_bytes, 0
        self._items: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> str | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: tuple, value: str) -> str:
        with self._lock:
            if key not in self._items and len(value) <= self.max_bytes:
                self._items[key] = value
                self.size += len(value)
                while self.size > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    self.size -= len(old)
        return value


async def _drawn(request: Request, key: tuple, fn: Callable[..., str], args: tuple) -> str:
    """The cached drawing for `key`, else `fn(*args)` drawn in a killable worker process within the budget
    (`draw_budget_s` of drawing; waiting for a free worker is bounded by the request timeout)."""
    cache = request.app.state.drawings
    svg = cache.get(key)
    if svg is None:
        cfg = request.app.state.config
        svg = cache.put(key, await request.app.state.draw_workers.run(
            "drawing", fn, args, cfg.draw_budget_s, wait_s=cfg.timeout_s, disconnected=request.is_disconnected))
    return svg


def _check_length(request: Request, text: str, param: str) -> None:
    limit = request.app.state.config.max_entity_chars
    if len(text) > limit:
        raise ApiError(413, f"{param} has {len(text)} characters; the limit is {limit}", param=param,
                       code="sequence_too_long")


def _small(smiles: str, max_atoms: int, param: str):
    """The parsed molecule, or DrawingTooLarge before RDKit lays out more than `max_atoms` atoms."""
    mol = parse_smiles(smiles)
    if mol.GetNumAtoms() > max_atoms:
        raise DrawingTooLarge(param, mol.GetNumAtoms(), max_atoms)
    return mol


def molecule_svg(smiles: str, width: int = 300, height: int = 220, max_atoms: int = MAX_DRAW_ATOMS) -> str:
    """RDKit SVG of a molecule (or a `.`-joined set); raises EntityError when the SMILES is invalid and
    DrawingTooLarge over `max_atoms` atoms."""
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = _small(smiles, max_atoms, "smiles")
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def reaction_svg(reactants: str, product: str, width: int = 640, height: int = 220,
                 max_atoms: int = MAX_DRAW_ATOMS) -> str:
    """RDKit SVG of `reactants → product` (both validated first, so errors name the bad side)."""
    from rdkit.Chem import rdChemReactions
    from rdkit.Chem.Draw import rdMolDraw2D

    _check_reaction(reactants, product, max_atoms)
    rxn = rdChemReactions.ReactionFromSmarts(f"{reactants}>>{product}", useSmiles=True)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = False
    drawer.DrawReaction(rxn)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


def _check_reaction(reactants: str, product: str, max_atoms: int) -> None:
    """EntityError naming the bad side, or DrawingTooLarge over `max_atoms` atoms in all."""
    atoms = 0
    for side, smi in (("reactants", reactants), ("product", product)):
        for part in smi.split("."):
            try:
                atoms += parse_smiles(part).GetNumAtoms()
            except EntityError as exc:
                raise EntityError("molecule", smi, exc.position, f"{side}: {exc.reason}") from None
    if atoms > max_atoms:
        raise DrawingTooLarge("reactants+product", atoms, max_atoms)


@functools.lru_cache(maxsize=1024)
def rna_fold(sequence: str) -> tuple[str, float]:
    """ViennaRNA minimum-free-energy structure: (dot-bracket, MFE in kcal/mol)."""
    import RNA

    seq = get_codec("rna").canonicalize(sequence).replace("T", "U")
    with _VIENNA:
        structure, mfe = RNA.fold(seq)
    return structure, round(float(mfe), 2)


def rna_svg(sequence: str) -> str:
    """ViennaRNA's secondary-structure plot of the MFE structure as SVG."""
    import RNA

    seq = get_codec("rna").canonicalize(sequence).replace("T", "U")
    structure, _ = rna_fold(seq)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rna.svg")
        with _VIENNA:
            drawn = RNA.svg_rna_plot(seq, structure, path)
        if not drawn:
            raise EntityError("rna", sequence, None, "ViennaRNA could not draw this structure")
        with open(path) as fh:
            return fh.read()


@router.get("/molecule", response_class=Response, responses={200: {"content": {SVG: {}}}})
async def draw_molecule(request: Request, smiles: str = Query(..., min_length=1)):
    """An RDKit SVG of a molecule; 422 names the problem when the SMILES is invalid."""
    _check_length(request, smiles, "smiles")
    atoms = request.app.state.config.max_draw_atoms
    await run_in_threadpool(_small, smiles, atoms, "smiles")  # typed 422 / 413 before any drawing
    svg = await _drawn(request, ("molecule", smiles), molecule_svg, (smiles, 300, 220, atoms))
    return Response(svg, media_type=SVG)


@router.get("/reaction", response_class=Response, responses={200: {"content": {SVG: {}}}})
async def draw_reaction(request: Request, reactants: str = Query(..., min_length=1),
                        product: str = Query(..., min_length=1)):
    """An RDKit SVG of `reactants → product`."""
    _check_length(request, reactants + product, "reactants+product")
    atoms = request.app.state.config.max_draw_atoms
    await run_in_threadpool(_check_reaction, reactants, product, atoms)
    svg = await _drawn(request, ("reaction", reactants, product), reaction_svg, (reactants, product, 640, 220, atoms))
    return Response(svg, media_type=SVG)


@router.get("/rna", response_class=Response, responses={200: {"content": {SVG: {}}}})
def draw_rna(request: Request, sequence: str = Query(..., min_length=1)):
    """The ViennaRNA MFE secondary structure of an RNA sequence as SVG (at most MAX_FOLD nucleotides: ViennaRNA
    runs in this process, bounded by that size)."""
    if len(sequence) > MAX_FOLD:
        raise ApiError(413, f"sequence has {len(sequence)} nucleotides; drawings stop at {MAX_FOLD}",
                       param="sequence", code="sequence_too_long")
    cache = request.app.state.drawings
    svg = cache.get(("rna", sequence)) or cache.put(("rna", sequence), rna_svg(sequence))
    return Response(svg, media_type=SVG)
