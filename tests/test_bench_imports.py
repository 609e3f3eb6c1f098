"""Every `from naturelm... import name` in bench/ (top level or inside a function) names something that exists.

The bench scripts run rarely and import lazily, so a name moved inside the package (candidate ranking from
eval/harness.py to tasks/ranking.py) broke bench/retro_ranking.py without any test noticing."""

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def package_imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, name, line) for each `from naturelm[.x] import name` anywhere in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "naturelm":
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names if alias.name.split(".")[0] == "naturelm"]
    return found


@pytest.mark.parametrize("script", sorted(BENCH.glob("*.py")), ids=lambda p: p.name)
def test_bench_imports_resolve(script):
    missing = []
    for module, name, line in package_imports(script):
        mod = importlib.import_module(module)
        if name and not hasattr(mod, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ModuleNotFoundError:
                missing.append(f"line {line}: {module}.{name}")
    assert not missing, f"{script.name} imports names the package does not have: {missing}"


def test_finder_sees_nested_imports(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("import os\n\ndef f():\n    from naturelm.tasks.ranking import order_union\n    import naturelm.errors\n")
    assert package_imports(script) == [("naturelm.tasks.ranking", "order_union", 4), ("naturelm.errors", "", 5)]
