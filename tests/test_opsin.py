"""OPSIN wrapper: batched parsing, InChIKey checks, oracle / anti-oracle for name verification."""
from naturelm.tools.opsin import canonical, inchikey, name_matches, names_match, names_to_smiles

ASPIRIN = "CC(=O)Oc1ccccc1C(=O)O"
PAIRS = [  # (IUPAC name, SMILES)
    ("ethanol", "OCC"),
    ("2-acetyloxybenzoic acid", ASPIRIN),
    ("N,N-diethylethanamine", "CCN(CC)CC"),
    ("(2S)-2-aminopropanoic acid", "C[C@H](N)C(=O)O"),
    ("naphthalene", "c1ccc2ccccc2c1"),
]


def test_names_to_smiles_batch():
    names = [n for n, _ in PAIRS] + ["definitely not a chemical", "", "two\nlines"]
    got = names_to_smiles(names)
    assert got[: len(PAIRS)] == [canonical(s) for _, s in PAIRS]
    assert got[len(PAIRS):] == [None, None, None]


def test_inchikey():
    assert inchikey(ASPIRIN) == "BSYNRYMUTXBXSQ-UHFFFAOYSA-N"
    assert inchikey("OCC") == inchikey("CCO")
    assert inchikey("not smiles") is None and inchikey("") is None


def test_verification_oracle_and_anti_oracle():
    names, smiles = zip(*PAIRS)
    assert names_match(list(names), list(smiles)) == [True] * len(PAIRS)  # gold -> all verified
    rotated = list(smiles[1:]) + [smiles[0]]
    assert names_match(list(names), rotated) == [False] * len(PAIRS)  # wrong pairing -> none verified
    assert names_match([None, ""], [ASPIRIN, ASPIRIN]) == [False, False]  # empty answers are wrong


def test_stereo_is_checked():
    assert name_matches("(2S)-2-aminopropanoic acid", "C[C@H](N)C(=O)O")
    assert not name_matches("(2S)-2-aminopropanoic acid", "C[C@@H](N)C(=O)O")
    assert not name_matches("(2S)-2-aminopropanoic acid", "CC(N)C(=O)O")
