"""Legacy (CSV) contact pairing benchmark: ``benchmarks.pairing`` with the legacy protocol.

    python -m benchmarks.legacy_pairing [--pairs 2000] [--concurrency 64] [--json]

Targets: matched pairs/s at least 0.7 of the floor's, open-loop p99 under 500 ms. The
phases, figures and options are described in ``benchmarks.pairing``.
"""

import sys

from benchmarks.pairing.command_line import main
from benchmarks.pairing_protocols import LegacyPairing

if __name__ == "__main__":
    sys.exit(main(default_protocol=LegacyPairing.name, prog="python -m benchmarks.legacy_pairing"))
