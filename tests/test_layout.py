"""The floors of ARCHITECTURE.md hold: no package imports one above it (import-linter), and every
package of the project is under the contract, so a new one cannot slip past it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from hotline.config import REPO_ROOT


def _contract() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    command = Path(sys.executable).with_name("lint-imports")
    if not command.exists():
        pytest.skip("lint-imports is not installed (pip install -e '.[test]')")
    return subprocess.run([str(command), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300)


def test_no_package_imports_a_floor_above_it() -> None:
    done = _lint_imports(REPO_ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_package_is_on_a_floor() -> None:
    contract = _contract()
    packages = {p.parent.name for p in REPO_ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(contract["root_packages"])
    layered = {name.strip() for layer in contract["contracts"][0]["layers"] for name in layer.split("|")}
    assert packages == layered


def test_an_upward_import_breaks_the_build(tmp_path: Path) -> None:
    """The contract is not decoration: the same check on a copy with one upward import fails."""
    copy = tmp_path / "house"
    shutil.copytree(
        REPO_ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "var", "test-artifacts", "*.pyc")
    )
    (copy / "core" / "sneaky.py").write_text("from dispatch.models import Ticket\n", encoding="utf-8")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=copy,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert "core.sneaky -> dispatch.models" in done.stdout
