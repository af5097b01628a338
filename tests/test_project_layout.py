"""The checkout's two distributions, the server and ``veraid``, as the tools see them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
VERAID_DIR = ROOT / "veraid"


def pyproject(folder: Path) -> dict[str, Any]:
    return tomllib.loads((folder / "pyproject.toml").read_text())


def test_mypy_checks_every_module_of_the_veraid_tests() -> None:
    # veraid/tests is not a package, so that its tests import the installed veraid; mypy
    # then checks only the modules named in its configuration.
    tests = VERAID_DIR / "tests"
    assert not (tests / "__init__.py").exists()
    checked = set(pyproject(ROOT)["tool"]["mypy"]["modules"])
    assert {path.stem for path in tests.glob("*.py")} <= checked


def test_the_server_requires_the_veraid_of_the_checkout() -> None:
    requirements = [Requirement(line) for line in pyproject(ROOT)["project"]["dependencies"]]
    [veraid] = [requirement for requirement in requirements if requirement.name == "veraid"]

    assert veraid.specifier.contains(pyproject(VERAID_DIR)["project"]["version"])
