"""A server process tree as /proc shows it: its workers, their CPU time and memory; and the
machine's CPU time that its hypervisor took for other guests (steal)."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[str]:
    listed = Path(f"/proc/{pid}/task/{pid}/children")
    return listed.read_text().split() if listed.exists() else []


def cpu_s(stat: Path) -> float:
    """CPU seconds (user + system) in a /proc .../stat file: a process's or a thread's; 0 when
    it is gone."""
    try:
        text = stat.read_text()
    except FileNotFoundError:
        return 0.0
    fields = text.rsplit(")", 1)[1].split()  # from field 3 (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by the server and its workers."""
    return sum(cpu_s(Path(f"/proc/{process}/stat")) for process in (str(pid), *children(pid)))


def worker_rss_mb(pid: int) -> list[float]:
    out = []
    for child in children(pid):
        try:
            for line in Path(f"/proc/{child}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out.append(int(line.split()[1]) / 1024)
        except FileNotFoundError:
            continue
    return out


def machine_cpu_ticks() -> list[int]:
    """The machine's CPU time so far, in ticks, by kind: the first line of /proc/stat (user,
    nice, system, idle, iowait, irq, softirq, steal, ...)."""
    return [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]


def stolen_share(before: list[int], after: list[int]) -> float:
    """The share of the machine's CPU time between two readings that the hypervisor gave to
    other guests: time this machine's processes could not run, whatever they needed."""
    spent = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(spent[:8])  # guest time (fields 9, 10) is already counted in user and nice
    return spent[7] / total if total > 0 else 0.0
