"""What a client sends cannot act on the operator's tools: the CSV export and `report --csv` hold
no formula a spreadsheet would run, the `report` table prints no escape sequence, control
character or bidi override to the terminal and reads no rich markup, and JSON stays exact.

The hostile strings go in through the real server, as any partner could send them: one server
per module (and store), each test with a partner of its own whose rows it reads.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx

from tests.integration.server import ServerProcess, cli, export, export_csv, real_click

FORMULA = '=HYPERLINK("http://evil.example/","click")'
ESCAPES = "\x1b]0;owned\x07\x1b[31mred\x1b[0m"
MARKUP = "[bold red]x[/]"
BIDI = "invoice\u202egnp.exe"
NAMES = (FORMULA, ESCAPES, MARKUP, BIDI, "@SUM(1+1)", "-2+3")
# In CSV the names that could start a formula get a leading quote; the rest are data as sent.
CSV_NAMES = {"'" + FORMULA, ESCAPES, MARKUP, BIDI, "'@SUM(1+1)", "'-2+3"}


def send_hostile_rows(server: ServerProcess, client: httpx.Client) -> None:
    for name in NAMES:
        answer = client.post("/v1/api/collect", json={"event_name": name, "tag_id": "+cmd"})
        assert answer.status_code == 204, answer.text
    # Written by hand: the amount's digits as sent, -5.00, are what the export gives back.
    body = (
        f'{{"click_id": "{real_click(server)}", "conversion_time": "2026-02-19T18:00:00Z", '
        '"conversion_value": -5.00, "currency": "USD", "order_id": "=1+1"}'
    )
    answer = client.post(
        "/v1/api/conversion", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.json() == {"status": "ok"}, answer.text


def test_csv_exports_hold_no_formula_and_keep_numbers(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    send_hostile_rows(module_server, partner_client)

    _, events = export_csv(module_server.database_url, "events", "--partner", partner)
    assert {row["event_name"] for row in events} == CSV_NAMES
    assert {row["tag_id"] for row in events} == {"'+cmd"}
    (conversion,) = export_csv(module_server.database_url, "conversions", "--partner", partner)[1]
    assert conversion["order_id"] == "'=1+1"
    # A negative amount is data, which a spreadsheet reads as the number it is.
    assert conversion["conversion_value"] == "-5.00"

    exact = export(module_server.database_url, "events", "--partner", partner)
    assert sorted(row["event_name"] for row in exact) == sorted(NAMES)


def test_report_table_prints_client_text_inert_and_csv_and_json_as_the_export_does(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    send_hostile_rows(module_server, partner_client)
    options = ("report", "events", "--group-by", "event_name", "--partner", partner)

    table = cli(module_server.database_url, *options)
    assert "\x1b" not in table
    assert "\x07" not in table
    assert "\u202e" not in table
    assert "\\x1b]0;owned\\x07\\x1b[31mred\\x1b[0m" in table
    assert "invoice\\u202egnp.exe" in table
    assert MARKUP in table

    rows = list(csv.DictReader(io.StringIO(cli(module_server.database_url, *options, "--csv"))))
    assert {row["event_name"] for row in rows} == CSV_NAMES

    answer: dict[str, Any] = json.loads(cli(module_server.database_url, *options, "--json"))
    assert {row["event_name"] for row in answer["rows"]} == set(NAMES)
