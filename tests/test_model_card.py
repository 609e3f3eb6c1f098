"""The model card's data tables are generated from the committed bench/results JSON (bench/tiny_card.py, and
docs/inference.md's by bench/cpu_inference_doc.py, both through bench/doc_blocks.py): the committed docs match their
JSON, the renderer turns hand-made JSON into exactly the expected rows, and a missing
key or a null is an error naming the file and the key, never a blank cell."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from naturelm.errors import DataFileError


def _tiny_card():
    spec = importlib.util.spec_from_file_location("bench_tiny_card", REPO / "bench" / "tiny_card.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


card = _tiny_card()


def _results(tmp_path, doc, base=""):
    (tmp_path / "bench" / "results").mkdir(parents=True)
    (tmp_path / "bench" / "results" / "r.json").write_text(json.dumps(doc))
    return card.Results(tmp_path, {"s": ("r.json", base)})


def _cli(*args):
    return subprocess.run([sys.executable, str(REPO / "bench" / "tiny_card.py"), *args], cwd=REPO, text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_the_committed_card_matches_its_json():
    done = _cli("--check")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "every block matches" in done.stdout


def test_every_table_has_its_block_in_the_card():
    text = (REPO / "docs" / "model-card.md").read_text()
    for name in card.TABLES:
        assert text.count(f"<!-- generated:{name} -->") == 1 and text.count(f"<!-- /generated:{name} -->") == 1, name


def test_a_hand_made_json_gives_exactly_the_expected_rows(tmp_path):
    doc = {"top_k": {"ranked, w=3.0": {"top_1": 0.39695878, "top_10": 0.0894357},
                     "gen": {"validity": 0.82, "mfe": -18.512, "n": 200,
                             "spearman_QED": 0.2033, "spearman_LogP": -0.1834}}}
    results = _results(tmp_path, doc, base="top_k")
    table = dict(header=("system", "top-1", "top-10"), rows=[
        ("**shipped**", "**{s/ranked, w=3.0/top_1:pct1}**", "{s/ranked, w=3.0/top_10:pct1}"),
        ("gen ({s/gen/n})", "validity {s/gen/validity:.0%}; MFE {s/gen/mfe:.1f}",
         "{s/gen/spearman_*:min.2f} … {s/gen/spearman_*:max.2f}"),
        ("*paper*", "*68.6*", ""),
        lambda get: ("computed", card.number(get("s/gen/mfe") / 2, ".2f"), "x"),
    ])
    assert card.render(table, results) == "\n".join([
        "| system | top-1 | top-10 |",
        "|---|---|---|",
        "| **shipped** | **39.7** | 8.9 |",
        "| gen (200) | validity 82%; MFE −18.5 | −0.18 … 0.20 |",  # U+2212, as the card writes minus
        "| *paper* | *68.6* | |",
        "| computed | −9.26 | x |",
    ])


def test_one_row_per_item_of_a_list(tmp_path):
    results = _results(tmp_path, {"rows": [{"stage": "sft", "train_seconds": 423.0, "top_1": 0.38},
                                           {"stage": "sft-long", "train_seconds": 2125.3, "top_1": 0.4}]}, base="rows")
    table = dict(header=("stage", "min", "top-1"), each="s", rows=[("{row/stage}", "{row/train_seconds:minutes}",
                                                                   "{row/top_1:.2f}")])
    assert card.render(table, results).splitlines()[2:] == ["| sft | 7 | 0.38 |", "| sft-long | 35 | 0.40 |"]


@pytest.mark.parametrize("doc, field, message", [
    ({"top_k": {"retrosim": {"top_1": 0.4}}}, "s/top_k/retrosim/top_3", "missing key top_k/retrosim/top_3"),
    ({"top_k": {"retrosim": {"top_1": 0.4}}}, "s/top_k/model beams/top_1", "missing key top_k/model beams"),
    ({"gen": {"fcd": None}}, "s/gen/fcd", "key gen/fcd is null"),
    ({"gen": {"fcd": 1.0}}, "s/gen/spearman_*", "no non-null key matches gen/spearman_*"),
    ({"rows": [{"step": 1}]}, "s/rows/1/step", "missing key rows/1"),
])
def test_a_missing_key_or_null_names_the_file_and_the_key(tmp_path, doc, field, message):
    results = _results(tmp_path, doc)
    with pytest.raises(DataFileError, match="bench/results/r.json") as err:
        card.render(dict(header=("a",), rows=[("{" + field + ":.1f}",)]), results)
    assert message in str(err.value)


def test_an_optional_key_prints_null_as_a_dash_but_must_exist(tmp_path):
    results = _results(tmp_path, {"rows": [{"loss": None}, {"loss": 0.51234}]})
    table = dict(header=("loss",), rows=[("{s/rows/0/loss?:.3f}",), ("{s/rows/1/loss?:.3f}",)])
    assert card.render(table, results).splitlines()[2:] == ["| — |", "| 0.512 |"]
    with pytest.raises(DataFileError, match="missing key rows/0/val_loss"):
        card.render(dict(header=("a",), rows=[("{s/rows/0/val_loss?:.3f}",)]), results)
    with pytest.raises(DataFileError, match="key rows/0/loss is null"):
        card.render(dict(header=("a",), rows=[("{s/rows/0/loss:.3f}",)]), results)


def test_a_missing_results_file_is_named(tmp_path):
    results = card.Results(tmp_path, {"s": ("absent.json", "")})
    with pytest.raises(DataFileError, match="bench/results/absent.json: not found"):
        results.get("s/x")


def test_update_rewrites_stale_blocks_only_and_names_them(tmp_path):
    results = _results(tmp_path, {"a": 0.5})
    tables = {"one": dict(header=("x",), rows=[("{s/a:pct1}",)]), "two": dict(header=("y",), rows=[("z",)])}
    fresh = "| y |\n|---|\n| z |\n\n"
    text = ("intro\n<!-- generated:one -->\n| x |\n|---|\n| 49.0 |\n<!-- /generated:one -->\n"
            f"mid\n<!-- generated:two -->\n{fresh}<!-- /generated:two -->\n")
    new, changed = card.update(text, tables, results)
    assert changed == ["one"]
    assert new == text.replace("| 49.0 |\n", "| 50.0 |\n\n")
    assert card.update(new, tables, results) == (new, [])
    with pytest.raises(DataFileError, match=r"written blocks without a place: \['two'\]"):
        card.update("<!-- generated:one -->\n<!-- /generated:one -->\n", tables, results)
    with pytest.raises(DataFileError, match=r"generated blocks without a writer: \['three'\]"):
        card.update(new + "<!-- generated:three -->\nx\n<!-- /generated:three -->\n", tables, results)


def test_the_inference_doc_matches_its_json():
    done = subprocess.run([sys.executable, str(REPO / "bench" / "cpu_inference_doc.py"), "--check"], cwd=REPO,
                          text=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stdout + done.stderr


def test_check_fails_naming_the_block_that_drifted(tmp_path):
    drifted = tmp_path / "model-card.md"
    drifted.write_text((REPO / "docs" / "model-card.md").read_text().replace("| 39.7 | 62.2 |", "| 39.8 | 62.2 |", 1))
    done = _cli("--check", str(drifted))
    assert done.returncode == 1
    assert "blocks differ from bench/results: retro-test" in done.stderr
