"""A server process tree as /proc shows it: its workers, their CPU time and memory."""

from __future__ import annotations

import os
from pathlib import Path


def children(pid: int) -> list[str]:
    listed = Path(f"/proc/{pid}/task/{pid}/children")
    return listed.read_text().split() if listed.exists() else []


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) used so far by the server and its workers."""
    ticks = 0
    for process in (str(pid), *children(pid)):
        try:
            stat = Path(f"/proc/{process}/stat").read_text()
        except FileNotFoundError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # from field 3 (state) on
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


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
