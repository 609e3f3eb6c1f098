"""Property-based tests: random strings at every parser and codec raise only the documented error types."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from naturelm import EntityError, NatureTokenizer, TagError
from naturelm.language import find_entities, split_tagged
from naturelm.language.codecs import CODECS, canonical_reactant_set, formula_to_material, material_to_formula, parse_reaction
from naturelm.language.tags import tag_strings

TOK = NatureTokenizer()
PIECES = st.sampled_from(tag_strings() + ["C", "c1", "(", ")", "[C@@H]", "A", "Li", " ", "<sg225>", "<m>", "%12", "]", "["])
TAGGY = st.lists(st.one_of(PIECES, st.text(max_size=6)), max_size=12).map("".join)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(TAGGY)
def test_tokenizer_raises_only_documented_errors(text):
    try:
        ids = TOK.encode(text)
    except (TagError, EntityError):
        return
    TOK.decode(ids)
    assert len(TOK.tokenize(text)) == len(ids)


@SETTINGS
@given(TAGGY)
def test_tag_parsers_raise_only_tag_errors(text):
    for fn in (split_tagged, find_entities):
        try:
            fn(text)
        except TagError:
            pass


@SETTINGS
@given(st.sampled_from(sorted(CODECS)), st.one_of(st.text(max_size=20), PIECES))
def test_codecs_raise_only_entity_errors(domain, text):
    codec = CODECS[domain]
    try:
        canon = codec.canonicalize(text)
    except EntityError:
        assert not codec.is_valid(text)
        return
    assert codec.canonicalize(canon) == canon  # canonical forms are fixed points


@SETTINGS
@given(st.text(max_size=20))
def test_reaction_and_material_helpers_raise_only_entity_errors(text):
    for fn in (canonical_reactant_set, parse_reaction, formula_to_material, material_to_formula):
        try:
            fn(text)
        except EntityError:
            pass
