"""The `thrad-events` command: one module per command group, thin over the library.

    common.py     what every command shares: --database-url, settings, the store, times, tables
    serve.py      serve, migrate
    keys.py       keys create, list, update, rotate, revoke
    partners.py   partners create, list
    audit.py      audit
    tags.py       tags create, list, update (the browser Tag registry)
    clicks.py     clicks link, create
    export.py     export
    report.py     report (events, conversions, funnel; delivery from delivery.py)
    delivery.py   rejections, and the delivery report
    test_rows.py  test-rows purge
    geoip.py      geoip info, lookup

`send` is the SDK's (client/cli.py). Imports go one way: this module imports the command
modules, they import common.py, and common.py imports none of them.
"""

from __future__ import annotations

import click

from thrad_events.cli.audit import audit
from thrad_events.cli.clicks import clicks
from thrad_events.cli.delivery import rejections
from thrad_events.cli.export import export
from thrad_events.cli.geoip import geoip
from thrad_events.cli.keys import keys
from thrad_events.cli.partners import partners
from thrad_events.cli.report import report
from thrad_events.cli.serve import migrate, serve
from thrad_events.cli.tags import tags
from thrad_events.cli.test_rows import test_rows
from thrad_events.client.cli import send

__all__ = ["main"]


@click.group()
def main() -> None:
    """Thrad's server-to-server Events API."""


for command in (
    serve,
    migrate,
    keys,
    clicks,
    export,
    report,
    send,
    audit,
    partners,
    test_rows,
    tags,
    rejections,
    geoip,
):
    main.add_command(command)
