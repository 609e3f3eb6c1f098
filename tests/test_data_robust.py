"""Loaders and configs under malformed input: typed errors naming the file and line, paths kept as given."""
from __future__ import annotations

import gzip

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from naturelm.data.sources.common import read_fasta
from naturelm.errors import ConfigError, DataFileError, NatureLMError


def _open(path):
    return (gzip.open if path.suffix == ".gz" else open)(path, "rt")


@pytest.mark.parametrize("name,data,needle,line", [
    ("a.fa", b"MKV\n>p1\nMKV\n", "before the first '>' header", 1),
    ("b.fa", b">p1\nMKV\n>\nMKV\n", "empty FASTA header", 3),
    ("c.fa", b">p1\nMK\xff\xfeV\n", "not UTF-8", 2),
    ("d.fa", ">p1\nMKV\n>caf\xe9\nAA\n".encode("latin-1"), "not UTF-8", 3),
    ("e.fa.gz", gzip.compress(b">p1\n" + b"MKV\n" * 20000)[:60], "truncated", None),
])
def test_bad_fasta_files_name_file_and_line(tmp_path, name, data, needle, line):
    path = tmp_path / name
    path.write_bytes(data)
    with _open(path) as f, pytest.raises(DataFileError, match=needle) as err:
        read_fasta(f)
    assert err.value.path == str(path) and (line is None or err.value.line == line)


def test_good_fasta_is_read():
    assert read_fasta([">a x\n", "MK\n", "V\n", "\n", ">b\n", "AA\n"]) == [("a x", "MKV"), ("b", "AA")]


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.text(max_size=20), max_size=8))
def test_fasta_reader_raises_only_typed_errors(lines):
    try:
        read_fasta(lines)
    except NatureLMError:
        pass


def test_set_keeps_paths_as_text_and_names_bad_yaml():
    from naturelm.train.config import parse_set

    assert parse_set(["data.dir=2024", "train.output=null", "train.lr=0.001"]) == {
        "data": {"dir": "2024"}, "train": {"output": "null", "lr": 0.001}}
    with pytest.raises(ConfigError, match="train.betas"):
        parse_set(["train.betas=[0.9"])
