"""The training-data entity check's verdicts cached by the file's sha256 (naturelm.train.entity_check)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from naturelm.errors import DataFileError
from naturelm.train import entity_check
from naturelm.train.data import SFTData


def _rec(instruction="What is <mol>CCO</mol>?", response="<mol>CCO</mol>", task="t"):
    return json.dumps({"instruction": instruction, "response": response, "task": task})


def _write(root: Path, lines: list[str]) -> Path:
    (root / "instructions").mkdir(parents=True, exist_ok=True)
    (root / "instructions" / "train.jsonl").write_text("".join(line + "\n" for line in lines))
    return root


@pytest.fixture(scope="module")
def tok():
    from naturelm.language.tokenizer import NatureTokenizer

    return NatureTokenizer()


@pytest.fixture
def calls(monkeypatch):
    """How many records the RDKit check itself looked at (the cache answers the others)."""
    seen = []
    real = entity_check.EntityCheck.record_problem

    def counted(self, rec, fields):
        seen.append(rec)
        return real(self, rec, fields)

    monkeypatch.setattr(entity_check.EntityCheck, "record_problem", counted)
    return seen


def _sft(root, tok, **kw):
    return SFTData(root, "train", tok, 512, 2, 0, **kw)


def _cache(root: Path) -> Path:
    return root / "check_cache" / "instructions" / "train.jsonl.json"


GOOD = [_rec(), _rec(response="<mol>c1ccccc1O</mol>"), _rec("<mol>", "<mol>CCN</mol>"), _rec("Name it.", "ethanol")]


def test_a_second_start_on_the_same_file_skips_the_check(tmp_path, tok, calls, capfd):
    root = _write(tmp_path, GOOD)
    first = _sft(root, tok)
    assert len(calls) == 4 and _cache(root).is_file()
    assert first.entity_check["records_checked"] == 4 and first.entity_check["records_from_cache"] == 0
    assert "4 records checked with RDKit" in capfd.readouterr().err
    calls.clear()
    second = _sft(root, tok)
    assert calls == [] and second.ids == first.ids
    assert second.entity_check["records_checked"] == 0 and second.entity_check["records_from_cache"] == 4
    err = capfd.readouterr().err
    assert "entity check of train.jsonl skipped: verdict cached for sha256" in err and str(_cache(root)) in err
    want = hashlib.sha256((root / "instructions" / "train.jsonl").read_bytes()).hexdigest()
    assert second.entity_check["sha256"] == want


def test_changed_content_is_checked_again(tmp_path, tok, calls, capfd):
    root = _write(tmp_path, GOOD)
    _sft(root, tok)
    _write(root, GOOD[:3] + [_rec(response="<mol>C1CC</mol>")])  # same line count, one record now invalid
    calls.clear()
    capfd.readouterr()
    with pytest.raises(DataFileError, match=r"1 record\(s\).*lines 4.*C1CC"):
        _sft(root, tok)
    assert len(calls) == 4
    assert "made for another bytes and sha256" in capfd.readouterr().err


def test_a_new_checker_version_checks_again(tmp_path, tok, calls, monkeypatch):
    root = _write(tmp_path, GOOD)
    _sft(root, tok)
    monkeypatch.setattr(entity_check, "CHECKER_VERSION", entity_check.CHECKER_VERSION + 1)
    calls.clear()
    _sft(root, tok)
    assert len(calls) == 4
    calls.clear()
    _sft(root, tok)
    assert calls == []


def _tampered(text: str) -> str:
    data = json.loads(text)
    data["problems"] = {"2": "<mol>CCO: RDKit cannot read it"}  # content changed, digest left as it was
    return json.dumps(data)


def _resealed(change):
    """A verdict changed and given a matching digest: well-formed JSON whose content is still not usable."""
    def spoil(text: str) -> str:
        data = json.loads(text)
        data.pop("digest")
        change(data)
        return json.dumps({**data, "digest": entity_check._digest(data)})
    return spoil


@pytest.mark.parametrize("spoil", [
    lambda text: text[: len(text) // 2],          # cut short
    lambda text: "\x00\xff not json",             # garbage
    lambda text: "[1, 2]",                         # JSON, not a verdict
    lambda text: json.dumps({**json.loads(text), "checked": 7}),  # a field of the wrong type
    _tampered,                                     # edited: fails its own digest
    _resealed(lambda d: d.update(checked={"lines": "x", "bits": 3})),  # digest right, fields unusable
    _resealed(lambda d: d.update(problems={"99": "made up"})),  # a problem on a line it never checked
], ids=["truncated", "garbage", "list", "wrong-type", "tampered", "resealed-bad-fields", "resealed-unchecked-line"])
def test_a_corrupt_cache_is_ignored_and_rewritten(tmp_path, tok, calls, capfd, spoil):
    root = _write(tmp_path, GOOD)
    first = _sft(root, tok)
    _cache(root).write_text(spoil(_cache(root).read_text()), encoding="latin-1")
    calls.clear()
    capfd.readouterr()
    again = _sft(root, tok)  # no crash, not trusted: every record checked again, none refused
    assert len(calls) == 4 and again.ids == first.ids
    assert "ignoring the cached verdict" in capfd.readouterr().err
    calls.clear()
    _sft(root, tok)  # rewritten whole: the next start uses it
    assert calls == []


def test_a_failing_file_is_refused_again_from_the_cache_with_the_same_error(tmp_path, tok, calls):
    lines = GOOD + [_rec(response="<mol>C1CC</mol>"), _rec(instruction="Make <product>C(C)(C)(C)(C)C</product>")]
    root = _write(tmp_path, lines)
    with pytest.raises(DataFileError) as first:
        _sft(root, tok)
    assert len(calls) == 6 and _cache(root).is_file()
    cached = json.loads(_cache(root).read_text())["problems"]
    assert set(cached) == {"5", "6"}
    calls.clear()
    with pytest.raises(DataFileError) as second:
        _sft(root, tok)
    assert calls == []
    assert (str(second.value), second.value.line, second.value.path) == (str(first.value), 5, first.value.path)
    skipped = _sft(root, tok, invalid_entities="skip")  # the same records skipped, still without RDKit
    assert calls == [] and len(skipped) == 4 and dict(skipped.invalid) == {"invalid_entity": 2}


def test_a_subset_is_cached_and_the_rest_checked_later(tmp_path, tok, calls):
    root = _write(tmp_path, GOOD)
    _sft(root, tok, max_examples=2)
    assert len(calls) == 2
    calls.clear()
    full = _sft(root, tok)
    assert len(calls) == 2 and full.entity_check["records_from_cache"] == 2
    calls.clear()
    _sft(root, tok)
    assert calls == []


def test_an_unwritable_build_falls_back_to_the_run_directory(tmp_path, tok, calls, capfd):
    root = _write(tmp_path / "build", GOOD)
    (root / "check_cache").write_text("a file where the cache folder would go")  # cannot be written (as root too)
    run = tmp_path / "run"
    _sft(root, tok, run_dir=run)
    cached = run / "check_cache" / "instructions" / "train.jsonl.json"
    assert cached.is_file() and f"verdict cached in {cached}" in capfd.readouterr().err
    calls.clear()
    _sft(root, tok, run_dir=run)
    assert calls == []
    calls.clear()
    (run / "check_cache").rename(tmp_path / "elsewhere")
    data = _sft(root, tok)  # nowhere to write: trains anyway, says so
    assert len(calls) == 4 and data.entity_check["cache"] is None
    assert "verdict not cached" in capfd.readouterr().err


def test_file_sha256_streams_in_blocks(tmp_path, monkeypatch):
    from naturelm.data import card

    path = tmp_path / "big.bin"
    data = bytes(range(256)) * (3 * 4096 + 7)  # ~3 MiB: several 1 MiB blocks
    path.write_bytes(data)
    reads = []

    class Recorded:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def fileno(self):
            return self.f.fileno()

        def read(self, size=-1):
            reads.append(size)
            return self.f.read(size)

    monkeypatch.setattr(card, "open", lambda p, mode: Recorded(open(p, mode)), raising=False)
    assert card.file_sha256(path, progress=True) == hashlib.sha256(data).hexdigest()
    assert len(reads) >= 4 and all(0 < size <= 1 << 20 for size in reads)
