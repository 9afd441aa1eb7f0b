"""Instructions a request executes, counted by valgrind (callgrind), and its simulated misses.

CPU time on this kind of machine moves by 20-40% from run to run; instruction counts do not.
Each kind runs `bench/hotpath.py` under callgrind twice, with two request counts, so that
start-up cancels out: (count at the larger - count at the smaller) / (difference in
requests) is what one request costs. With every kind of `--kinds` measured, the mixed load
is compared with the sum of its parts (nine collects and one refusal in ten requests).

    python bench/instructions.py [--requests 1000 3000] [--kinds collect collect_refused10
                                  collect_refused] [--branch-sim] [--jobs 2]

Needs valgrind (Debian's package). Under valgrind a request takes about 100 times as long: the
default counts take 10-15 minutes on two cores.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_COUNT = re.compile(r"==\d+== (.+?):\s+([\d,]+)")


def counts(kind: str, requests: int, branch_sim: bool, workdir: Path) -> dict[str, int]:
    """callgrind's totals for the whole hotpath run."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--cache-sim=yes",
        f"--branch-sim={'yes' if branch_sim else 'no'}",
        f"--callgrind-out-file={workdir / f'callgrind.{kind}.{requests}'}",
        sys.executable,
        str(ROOT / "bench" / "hotpath.py"),
        "--kind",
        kind,
        "--requests",
        str(requests),
        "--repeat",
        "1",
        # A request runs about 100 times as long: its commit must not time out.
        "--write-timeout",
        "600",
    ]
    # The same hash seed in every run: dictionaries lay out alike.
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        # hotpath's own complaint is on stdout, a traceback among valgrind's lines on stderr.
        ours = [line for line in done.stderr.splitlines() if not line.startswith(("==", "--"))]
        raise RuntimeError(
            f"{kind} x {requests} failed:\n{done.stdout[-2000:]}" + "\n".join(ours[-30:])
        )
    totals = {}
    for line in done.stderr.splitlines():
        found = _COUNT.match(line)
        if found is not None:
            totals[" ".join(found.group(1).split())] = int(found.group(2).replace(",", ""))
    return totals


# The totals shown, by callgrind's names for them.
SHOWN = {
    "instructions": "I refs",
    "I1 misses": "I1 misses",
    "D1 misses": "D1 misses",
    "branches": "Branches",
    "mispredicted": "Mispredicts",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, nargs=2, default=[1000, 3000])
    parser.add_argument(
        "--kinds", nargs="+", default=["collect", "collect_refused10", "collect_refused"]
    )
    parser.add_argument("--branch-sim", action="store_true", help="also simulate branches")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    small, large = args.requests
    workdir = Path(tempfile.mkdtemp(prefix="thrad-instructions-"))
    runs = [(kind, n) for kind in args.kinds for n in (small, large)]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = {
            run: pool.submit(counts, run[0], run[1], args.branch_sim, workdir) for run in runs
        }
        totals = {run: future.result() for run, future in futures.items()}
    per_request: dict[str, dict[str, float]] = {}
    for kind in args.kinds:
        per_request[kind] = {
            shown: (totals[(kind, large)][name] - totals[(kind, small)][name]) / (large - small)
            for shown, name in SHOWN.items()
            if name in totals[(kind, large)]
        }
    names = list(per_request[args.kinds[0]])
    print(f"per request ({large} - {small} requests, callgrind):")
    print(f"{'kind':<22}" + "".join(f"{name:>16}" for name in names))
    for kind, values in per_request.items():
        print(f"{kind:<22}" + "".join(f"{values[name]:>16,.0f}" for name in names))
    parts = ("collect", "collect_refused", "collect_refused10")
    if all(kind in per_request for kind in parts):
        whole = {
            name: 0.9 * per_request["collect"][name] + 0.1 * per_request["collect_refused"][name]
            for name in names
        }
        print(f"{'sum of parts':<22}" + "".join(f"{whole[name]:>16,.0f}" for name in names))
        print(
            f"{'mix / sum of parts':<22}"
            + "".join(
                f"{per_request['collect_refused10'][name] / whole[name]:>16.1%}" for name in names
            )
        )
    print(f"callgrind's files, for callgrind_annotate: {workdir}")


if __name__ == "__main__":
    main()
