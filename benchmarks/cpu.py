"""CPU time per process and for the whole machine, read from /proc (Linux only).

A throughput figure alone cannot say whether the stack or something else on the machine
was the limit; the CPU each component used during a phase can.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# In /proc/<pid>/stat, after the ")" that ends the command name: state is field 0,
# utime field 11 and stime field 12 (fields 3, 14 and 15 of proc(5)).
_UTIME_FIELD = 11
_STIME_FIELD = 12
# In the "cpu" line of /proc/stat: idle and iowait are fields 4 and 5 (1-based, after "cpu").
_IDLE_FIELDS = (3, 4)


@dataclass(frozen=True)
class CpuSnapshot:
    monotonic: float
    process_seconds: dict[str, float]
    machine_busy_seconds: float


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (all its threads); 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[_UTIME_FIELD]) + int(fields[_STIME_FIELD])) / _CLOCK_TICKS


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot."""
    try:
        first_line = Path("/proc/stat").read_text().splitlines()[0]
    except OSError:
        return 0.0
    ticks = [int(value) for value in first_line.split()[1:]]
    idle = sum(ticks[index] for index in _IDLE_FIELDS)
    # guest time is already counted in user time, so only the first 8 fields add up.
    return (sum(ticks[:8]) - idle) / _CLOCK_TICKS


def pids_with_argument(text: str) -> list[int]:
    """Processes whose command line contains ``text`` (e.g. a service's data folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry.name))
    return found


def snapshot(components: Mapping[str, Sequence[int]]) -> CpuSnapshot:
    return CpuSnapshot(
        monotonic=time.monotonic(),
        process_seconds={
            name: sum(process_cpu_seconds(pid) for pid in pids) for name, pids in components.items()
        },
        machine_busy_seconds=machine_busy_seconds(),
    )


def ms_per_item(before: CpuSnapshot, after: CpuSnapshot, items: int) -> dict[str, float]:
    """CPU milliseconds each component spent per item (pair) between two snapshots.

    Unlike a rate, this hardly changes when other work competes for the cores, so it
    compares settings fairly on a busy machine.
    """
    return {
        name: round(1000 * (seconds - before.process_seconds.get(name, 0.0)) / max(items, 1), 2)
        for name, seconds in after.process_seconds.items()
    }


def usage_percent(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
    """CPU used between two snapshots, in % of one core, per component plus ``machine``.

    ``others`` is what the machine spent beyond our components: other people's work.
    """
    elapsed = max(after.monotonic - before.monotonic, 1e-9)
    usage = {
        name: 100 * (after.process_seconds[name] - before.process_seconds.get(name, 0.0)) / elapsed
        for name in after.process_seconds
    }
    machine = 100 * (after.machine_busy_seconds - before.machine_busy_seconds) / elapsed
    usage["others"] = max(machine - sum(usage.values()), 0.0)
    usage["machine"] = machine
    return usage
