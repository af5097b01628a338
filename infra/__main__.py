"""The project's two commands, runnable with nothing but Python 3.11:

    python3.11 -m infra run    # install into .venv, then run the whole service locally
    python3.11 -m infra test   # install into .venv, then lint, type-check and run every test

and, with ``run`` going, ``python3.11 -m infra demo``: two agents create accounts and pair.

This module uses the standard library only: it is what creates the environment in
which everything else can be imported.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
VERAID_DIR = REPO_ROOT / "veraid"  # the veraid distribution, which the server depends on
VENV_DIR = Path(os.environ.get("LETRO_VENV", REPO_ROOT / ".venv"))
# The JavaScript reference libraries: the server's, and veraid's own (@relaycorp/veraid).
INTEROP_DIRS = (REPO_ROOT / "tests" / "interop", VERAID_DIR / "tests" / "interop")


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def install(extra: str) -> None:
    """Install veraid and the project with ``extra`` into the virtualenv, both editable,
    unless done for these pyprojects."""
    projects = (VERAID_DIR, REPO_ROOT)
    pyprojects = b"".join((project / "pyproject.toml").read_bytes() for project in projects)
    fingerprint = hashlib.sha256(pyprojects + extra.encode()).hexdigest()
    stamp = VENV_DIR / f".installed-{extra}"
    if stamp.exists() and stamp.read_text() == fingerprint and venv_python().exists():
        return
    if not venv_python().exists():
        print(f"Creating virtualenv in {VENV_DIR}", flush=True)
        venv.create(VENV_DIR, with_pip=True)
    print(f"Installing veraid and letro-server[{extra}] into {VENV_DIR}", flush=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    # One resolution for both: the server's `veraid` requirement is met by the checkout's,
    # never by an index.
    subprocess.run(
        [*pip, "--editable", str(VERAID_DIR), "--editable", f"{REPO_ROOT}[{extra}]"], check=True
    )
    stamp.write_text(fingerprint)


def install_interop_tools() -> None:
    """The JavaScript reference libraries the interoperability tests exchange bytes with."""
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: interoperability tests will not run", file=sys.stderr)
        return
    for interop_dir in INTEROP_DIRS:
        if (interop_dir / "package.json").exists():
            command = [npm, "ci", "--prefix", str(interop_dir), "--no-audit", "--no-fund"]
            subprocess.run(command, check=True)


def run_checks(pytest_args: list[str]) -> int:
    python = str(venv_python())
    steps = [
        [python, "-m", "ruff", "check", "."],
        [python, "-m", "ruff", "format", "--check", "."],
        [python, "-m", "mypy"],
        [python, "-m", "pytest", *pytest_args],
    ]
    for step in steps:
        print(f"$ {' '.join(step[2:])}", flush=True)
        result = subprocess.run(step, cwd=REPO_ROOT)
        if result.returncode != 0:
            return result.returncode
    return 0


def main(argv: list[str]) -> int:
    if len(argv) < 1 or argv[0] not in ("run", "test", "demo"):
        print(__doc__, file=sys.stderr)
        return 2
    command, rest = argv[0], argv[1:]
    if sys.version_info < (3, 11):  # noqa: UP036 -- this runs before anything checks the version
        print("Python 3.11 or newer is required", file=sys.stderr)
        return 2
    if command in ("run", "demo"):
        install("local")
        module = {"run": "infra.local", "demo": "infra.demo"}[command]
        os.execv(str(venv_python()), [str(venv_python()), "-m", module, *rest])
    install("test")
    install_interop_tools()
    return run_checks(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
