"""The README's configuration table and config.py's declarations say the same, both ways."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import config
from config import VARIABLES, Variable

README = Path(__file__).resolve().parent.parent / "README.md"


@dataclass(frozen=True)
class Row:
    default: str
    meaning: str


def _cells(line: str) -> list[str]:
    cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
    assert len(cells) == 3, f"not a variable | default | meaning row: {line}"
    return cells


def readme_table(text: str) -> dict[str, Row]:
    """Each variable the configuration table names, with its row's cells.

    A row may name several variables in its first cell; each of them is then said to
    have that row's default and meaning.
    """
    section = re.search(r"^## Configuration\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert section is not None, "no Configuration section"
    table: dict[str, Row] = {}
    for line in section[1].splitlines():
        if not line.startswith("| `"):
            continue
        names_cell, default, meaning = _cells(line)
        names = re.findall(r"`([^`]+)`", names_cell)
        assert names_cell == ", ".join(f"`{name}`" for name in names), line
        for name in names:
            assert name not in table, f"{name} has two rows"
            table[name] = Row(default, meaning)
    return table


def documented_default(variable: Variable[Any]) -> str:
    """The default cell that ``variable``'s declaration calls for."""
    if variable.default is not None:
        literal = f"`{variable.default}`"
        return f"{literal} ({variable.default_doc})" if variable.default_doc else literal
    if variable.required:
        return "required"
    return variable.default_doc or "none"


@pytest.fixture(scope="module")
def table() -> dict[str, Row]:
    return readme_table(README.read_text())


def test_every_declared_variable_is_in_the_table(table: dict[str, Row]) -> None:
    assert [v.name for v in VARIABLES if v.name not in table] == []


def test_every_variable_in_the_table_is_declared(table: dict[str, Row]) -> None:
    declared = {variable.name for variable in VARIABLES}
    assert [name for name in table if name not in declared] == []


def test_the_table_gives_each_declared_default(table: dict[str, Row]) -> None:
    wrong = {
        v.name: (table[v.name].default, documented_default(v))
        for v in VARIABLES
        if v.name in table and table[v.name].default != documented_default(v)
    }
    assert wrong == {}, "README default != declared one"


def test_the_table_gives_each_declared_meaning(table: dict[str, Row]) -> None:
    wrong = {
        v.name: (table[v.name].meaning, v.description)
        for v in VARIABLES
        if v.name in table and table[v.name].meaning != v.description
    }
    assert wrong == {}, "README meaning != declared description"


def test_a_row_naming_several_variables_applies_to_each() -> None:
    text = (
        "## Configuration\n\n| variable | default | meaning |\n|---|---|---|\n"
        "| `A`, `B` | none | both |\n| `C` | `1` | one |\n\n## Next\n| `D` | x | y |\n"
    )
    assert readme_table(text) == {
        "A": Row("none", "both"),
        "B": Row("none", "both"),
        "C": Row("`1`", "one"),
    }


def test_each_declaration_is_named_as_its_variable() -> None:
    # load_settings reads config.X for the variable X: a typo would read another one.
    declared = {
        attribute: value.name
        for attribute, value in vars(config).items()
        if isinstance(value, Variable)
    }
    assert declared == {variable.name: variable.name for variable in VARIABLES}
    assert len(VARIABLES) == len(declared)


@pytest.mark.parametrize(
    "variable", [v for v in VARIABLES if v.default is not None], ids=lambda v: v.name
)
def test_each_declared_default_is_valid(variable: Variable[Any]) -> None:
    # A default is parsed as an operator's text would be, so it must be one the parser takes.
    assert variable.default_value is not None
    assert not variable.required
