"""VeraId contact pairing benchmark: ``benchmarks.pairing`` with real SignatureBundles.

    python -m benchmarks.veraid_pairing [--pairs 2000] [--concurrency 64] [--json]

Targets (issue 4): matched pairs/s at least 0.65 of the floor's, exactly two match messages
per pair under simultaneous arrival, and verification never the bottleneck (the share of
a core it needs is printed). The phases, figures and options are described in
``benchmarks.pairing``.
"""

import sys

from benchmarks.pairing.command_line import main
from benchmarks.pairing_protocols import VeraidPairing

if __name__ == "__main__":
    sys.exit(main(default_protocol=VeraidPairing.name, prog="python -m benchmarks.veraid_pairing"))
