"""Two loads compared in alternating short runs on one server: a ratio that survives the machine.

Two 15 s scenarios measured one after the other differ by 20-40% on this kind of machine even at
the same code, because its speed drifts within a minute. Here one server takes both loads in
turn, `pairs` times, in the order A B, B A, A B, ... (so a drift favours neither), and each pair
gives one ratio B / A from runs seconds apart; the median of those ratios is the figure.

    python bench/paired.py [--pairs 10] [--seconds 3] [--store sqlite] [A B]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stores import add_store_option, fresh_database  # noqa: E402
from tests.integration.server import ServerProcess, create_key  # noqa: E402
from wrk import run_wrk  # noqa: E402


@dataclass(frozen=True)
class Paired:
    first: str
    second: str
    first_rps: list[float]  # one per pair
    second_rps: list[float]

    @property
    def ratios(self) -> list[float]:
        """second / first, one per pair."""
        return [b / a for a, b in zip(self.first_rps, self.second_rps, strict=True)]

    def line(self) -> str:
        low, _, high = statistics.quantiles(self.ratios, n=4)
        return (
            f"{self.second} / {self.first}, {len(self.ratios)} alternating pairs on one server: "
            f"median {statistics.median(self.ratios):.1%} (quartiles {low:.1%} to {high:.1%}; "
            f"median req/s {statistics.median(self.first_rps):,.0f} and "
            f"{statistics.median(self.second_rps):,.0f})"
        )


def paired(
    database_url: str,
    log: Path,
    first: str,
    second: str,
    *,
    pairs: int,
    seconds: int,
    connections: int = 64,
    workers: int = 2,
) -> Paired:
    server = ServerProcess(database_url, log, workers=workers)
    rates: dict[str, list[float]] = {first: [], second: []}
    try:
        key = create_key(database_url, "bench", "paired", "--rate-limit", "100000000")["api_key"]
        run_wrk(server.base_url, first, key, "", 2, connections, 0)  # warm-up
        for n in range(pairs):
            for kind in (first, second) if n % 2 == 0 else (second, first):
                result = run_wrk(server.base_url, kind, key, "", seconds, connections, 0)
                rates[kind].append(result["rps"])
    finally:
        server.stop()
    return Paired(first, second, rates[first], rates[second])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    add_store_option(parser)
    parser.add_argument("kinds", nargs="*", default=["collect", "collect_refused10"])
    args = parser.parse_args()
    first, second = args.kinds
    workdir = Path(tempfile.mkdtemp(prefix="thrad-paired-"))
    with fresh_database(args.store, workdir, "paired") as database_url:
        result = paired(
            database_url, workdir / "server.log", first, second,
            pairs=args.pairs, seconds=args.seconds, workers=args.workers,
        )  # fmt: skip
    for n, ratio in enumerate(result.ratios):
        print(f"pair {n:2}: {result.first_rps[n]:8,.0f} {result.second_rps[n]:8,.0f}  {ratio:.3f}")
    print(result.line())
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
