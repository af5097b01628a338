"""The worker's garbage-collector settings (see ``worker.tune_garbage_collector``)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_start_up_objects_are_frozen_and_full_collections_come_often() -> None:
    # In a process of its own: the collector's settings are global.
    script = (
        "import gc, worker\n"
        "assert gc.get_freeze_count() == 0\n"
        "worker.tune_garbage_collector()\n"
        "print(gc.get_freeze_count(), *gc.get_threshold())\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    frozen, young, middle, full = (int(item) for item in output.split())
    assert frozen > 10_000  # everything imported by the worker
    assert (young, middle, full) == (700, 10, 2)
