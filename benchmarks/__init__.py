"""Load generators that drive the real stack and print throughput and latency figures."""

import sys
from pathlib import Path

# benchmarks.hostile_input builds its hostile bundles with the veraid tests' helpers
# (veraid/tests/veraid_helpers.py): a directory of modules, not a package, so that veraid's
# own tests import the installed veraid (see veraid/README.md, "Tests").
_VERAID_TESTS = str(Path(__file__).resolve().parent.parent / "veraid" / "tests")
if _VERAID_TESTS not in sys.path:
    sys.path.append(_VERAID_TESTS)
