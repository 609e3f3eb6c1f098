"""Drawings for the playground: RDKit SVG of molecules and reactions, ViennaRNA secondary structures."""
from __future__ import annotations

import functools
import os
import tempfile
import threading

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from naturelm.errors import EntityError
from naturelm.language.codecs import canonical_smiles, get_codec, parse_smiles
from naturelm.serve.app import ApiError

router = APIRouter(prefix="/v1/draw", tags=["drawings"])
SVG = "image/svg+xml"
_VIENNA = threading.Lock()  # one ViennaRNA call at a time (draw routes run in a thread pool)
MAX_FOLD = 1000  # ViennaRNA folding is cubic in length: longer sequences are not folded or drawn


def _check_length(request: Request, text: str, param: str) -> None:
    limit = request.app.state.config.max_entity_chars
    if len(text) > limit:
        raise ApiError(413, f"{param} has {len(text)} characters; the limit is {limit}", param=param,
                       code="sequence_too_long")


@functools.lru_cache(maxsize=2048)
def molecule_svg(smiles: str, width: int = 300, height: int = 220) -> str:
    """RDKit SVG of a molecule (or a `.`-joined set); raises EntityError when the SMILES is invalid."""
    from rdkit.Chem.Draw import rdMolDraw2D

    mol = parse_smiles(smiles)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


@functools.lru_cache(maxsize=2048)
def reaction_svg(reactants: str, product: str, width: int = 640, height: int = 220) -> str:
    """RDKit SVG of `reactants → product` (both validated first, so errors name the bad side)."""
    from rdkit.Chem import rdChemReactions
    from rdkit.Chem.Draw import rdMolDraw2D

    for side, smi in (("reactants", reactants), ("product", product)):
        for part in smi.split("."):
            try:
                canonical_smiles(part)
            except EntityError as exc:
                raise EntityError("molecule", smi, exc.position, f"{side}: {exc.reason}") from None
    rxn = rdChemReactions.ReactionFromSmarts(f"{reactants}>>{product}", useSmiles=True)
    drawer = rdMolDraw2D.MolDraw2DSVG(width, height)
    drawer.drawOptions().clearBackground = False
    drawer.DrawReaction(rxn)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()


@functools.lru_cache(maxsize=1024)
def rna_fold(sequence: str) -> tuple[str, float]:
    """ViennaRNA minimum-free-energy structure: (dot-bracket, MFE in kcal/mol)."""
    import RNA

    seq = get_codec("rna").canonicalize(sequence).replace("T", "U")
    with _VIENNA:
        structure, mfe = RNA.fold(seq)
    return structure, round(float(mfe), 2)


@functools.lru_cache(maxsize=256)
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
def draw_molecule(request: Request, smiles: str = Query(..., min_length=1)):
    """An RDKit SVG of a molecule; 422 names the problem when the SMILES is invalid."""
    _check_length(request, smiles, "smiles")
    return Response(molecule_svg(smiles), media_type=SVG)


@router.get("/reaction", response_class=Response, responses={200: {"content": {SVG: {}}}})
def draw_reaction(request: Request, reactants: str = Query(..., min_length=1), product: str = Query(..., min_length=1)):
    """An RDKit SVG of `reactants → product`."""
    _check_length(request, reactants + product, "reactants+product")
    return Response(reaction_svg(reactants, product), media_type=SVG)


@router.get("/rna", response_class=Response, responses={200: {"content": {SVG: {}}}})
def draw_rna(request: Request, sequence: str = Query(..., min_length=1)):
    """The ViennaRNA MFE secondary structure of an RNA sequence as SVG."""
    if len(sequence) > MAX_FOLD:
        raise ApiError(413, f"sequence has {len(sequence)} nucleotides; drawings stop at {MAX_FOLD}",
                       param="sequence", code="sequence_too_long")
    return Response(rna_svg(sequence), media_type=SVG)
