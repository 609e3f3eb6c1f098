"""The sequence language: tags, domain codecs, tokenizer, prompt format."""
from naturelm.language.prompts import format_example, format_prompt
from naturelm.language.tags import DOMAINS, TAGS, find_entities, split_tagged, wrap
from naturelm.language.tokenizer import NatureTokenizer

__all__ = ["NatureTokenizer", "TAGS", "DOMAINS", "wrap", "split_tagged", "find_entities", "format_prompt", "format_example"]
