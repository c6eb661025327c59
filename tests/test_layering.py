"""The import contract of pyproject.toml ([tool.importlinter]), which `make lint` checks: it holds
on the tree, and it breaks on a planted cycle (so the check can fail)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(package_parent: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=package_parent,
        env=env,
        capture_output=True,
        text=True,
    )


@pytest.fixture()
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(
        ROOT / "espnet_distill", tmp_path / "espnet_distill", ignore=shutil.ignore_patterns("*.pyc")
    )
    return tmp_path


def test_the_tree_keeps_the_import_contract(package_copy: Path):
    result = _lint_imports(package_copy)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "2 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("importer", "planted", "broken"),
    [
        # a cycle between building blocks: align -> graph -> align (graph.hclg reads align.hmm)
        ("align/hmm.py", "from espnet_distill.graph import hclg", "No cycles are allowed"),
        # a building block that imports a task package (the old models -> ssl import)
        ("models/acoustic_model.py", "from espnet_distill.ssl import trainer", "is not allowed"),
        # a cycle inside a package: hubert <- students <- hubert
        ("models/hubert.py", "from espnet_distill.models import students", "No cycles"),
    ],
)
def test_a_planted_import_breaks_the_contract(package_copy, importer, planted, broken):
    module = package_copy / "espnet_distill" / importer
    module.write_text(module.read_text() + f"\n{planted}  # planted\n")
    result = _lint_imports(package_copy)
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout[-3000:]


def test_bench_imports_only_the_library_not_bin():
    for script in sorted((ROOT / "bench").glob("*.py")):
        for node in ast.walk(ast.parse(script.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("espnet_distill.bin"), (script.name, node.module)


def test_the_readme_package_map_names_every_module():
    readme = (ROOT / "README.md").read_text()
    package_map = readme.split("### Package map", 1)[1].split("### Stage -> module", 1)[0]
    for module in sorted((ROOT / "espnet_distill").rglob("*.py")):
        rel = module.relative_to(ROOT / "espnet_distill")
        if module.name == "__init__.py" or rel.parts[0] == "bin":
            continue
        assert f" {rel.as_posix()} " in package_map, f"README package map lacks {rel}"
