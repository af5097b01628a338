"""``python -m benchmarks.pairing``: the pairing benchmark, the protocol set by ``--protocol``.

The phases, figures and exit status are described in ``benchmarks.pairing``.
"""

import sys

from benchmarks.pairing.command_line import main

if __name__ == "__main__":
    sys.exit(main())
