"""Loads compared in alternating short runs on one server: ratios that survive the machine.

Two 15 s scenarios measured one after the other differ by 20-40% on this kind of machine even at
the same code, because its speed drifts within a minute. Here one server takes the loads in
turn, `rounds` times, in the order A B C, C B A, A B C, ... (so a drift favours none), and each
round gives one ratio per load against the first from runs seconds apart; the median of those
ratios is the figure. The ratios are taken on each run's rate per unstolen CPU (bench/wrk.py),
and the raw rates' medians are printed beside them.

    python bench/paired.py [--rounds 10] [--seconds 3] [--store sqlite] [A B ...]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stores import add_store_option, fresh_database  # noqa: E402
from tests.integration.server import ServerProcess, create_key  # noqa: E402
from wrk import run_wrk  # noqa: E402

# The loads compared by default, and in `make bench` after its scenarios: plain collect, one
# request in ten refused and kept, and the control, one request in ten answered without a write
# but neither refused nor kept (validate_only).
LOADS = ("collect", "collect_refused10", "collect_checked10")


@dataclass(frozen=True)
class Paired:
    kinds: tuple[str, ...]
    # Per load, its runs' summaries (bench/wrk.py's), one per round.
    runs: dict[str, list[dict[str, Any]]]

    def median(self, kind: str, field: str) -> float:
        return statistics.median(run[field] for run in self.runs[kind])

    def ratios(self, kind: str, against: str | None = None) -> list[float]:
        """`kind` / `against` (the first load), one per round, per unstolen CPU."""
        base = self.runs[against or self.kinds[0]]
        return [
            b["rps_unstolen"] / a["rps_unstolen"]
            for a, b in zip(base, self.runs[kind], strict=True)
        ]

    def line(self, kind: str, against: str | None = None) -> str:
        against = against or self.kinds[0]
        ratios = self.ratios(kind, against)
        low, _, high = statistics.quantiles(ratios, n=4)
        return (
            f"{kind} / {against}, {len(ratios)} alternating rounds on one server: median "
            f"{statistics.median(ratios):.1%} (quartiles {low:.1%} to {high:.1%}) per unstolen "
            f"CPU; median req/s {self.median(against, 'rps'):,.0f} and "
            f"{self.median(kind, 'rps'):,.0f}, CPU stolen "
            f"{self.median(against, 'steal'):.0%} and {self.median(kind, 'steal'):.0%}"
        )


def paired(
    database_url: str,
    log: Path,
    kinds: tuple[str, ...],
    *,
    rounds: int,
    seconds: int,
    connections: int = 64,
    workers: int = 2,
) -> Paired:
    server = ServerProcess(database_url, log, workers=workers)
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    try:
        key = create_key(database_url, "bench", "paired", "--rate-limit", "100000000")["api_key"]
        run_wrk(server.base_url, kinds[0], key, "", 2, connections, 0)  # warm-up
        for n in range(rounds):
            for kind in kinds if n % 2 == 0 else kinds[::-1]:
                runs[kind].append(run_wrk(server.base_url, kind, key, "", seconds, connections, 0))
    finally:
        server.stop()
    return Paired(kinds, runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", "--pairs", dest="rounds", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    add_store_option(parser)
    parser.add_argument("kinds", nargs="*", default=list(LOADS))
    args = parser.parse_args()
    if len(args.kinds) < 2:
        parser.error("two loads or more")
    kinds = tuple(args.kinds)
    workdir = Path(tempfile.mkdtemp(prefix="thrad-paired-"))
    with fresh_database(args.store, workdir, "paired") as database_url:
        result = paired(
            database_url, workdir / "server.log", kinds,
            rounds=args.rounds, seconds=args.seconds, workers=args.workers,
        )  # fmt: skip
    ratios = [result.ratios(kind) for kind in kinds[1:]]
    for n in range(args.rounds):
        runs = "  ".join(
            f"{run['rps']:7,.0f} req/s ({run['steal']:3.0%} stolen)"
            for run in (result.runs[kind][n] for kind in kinds)
        )
        print(f"round {n:2}: {runs}  " + " ".join(f"{each[n]:.3f}" for each in ratios))
    for kind in kinds[1:]:
        print(result.line(kind))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
