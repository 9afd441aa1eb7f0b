"""The database a measurement runs on, fresh for each: one choice for every bench script."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.postgres import postgres_schema  # noqa: E402


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """`--store`, the value fresh_database takes."""
    parser.add_argument(
        "--store",
        default="sqlite",
        help="sqlite, postgresql (a fresh schema on the local server) or a postgresql:// URL",
    )


@contextlib.contextmanager
def fresh_database(store: str, workdir: Path, name: str) -> Iterator[str]:
    """The URL of a database to measure on: for `postgresql` a fresh schema on the local server
    (THRAD_TEST_POSTGRES_URL), dropped afterwards; for `sqlite` a new file `name`.db in
    `workdir`; otherwise `store` itself, a database URL."""
    if store == "postgresql":
        with postgres_schema() as database_url:
            yield database_url
    elif store == "sqlite":
        yield f"sqlite:///{workdir / f'{name}.db'}"
    else:
        yield store
