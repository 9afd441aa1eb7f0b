"""The CLI's tables (audit, keys, partners, tags) are terminal-safe and have a header row."""

from __future__ import annotations

import pytest

from thrad_events.cli.common import write_table


def test_the_table_has_a_header_row_and_shows_control_characters_as_escapes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_table(
        ("TIME", "ACTOR", "DETAILS"),
        [("2026-01-01T00:00:00.000000Z", "cli", '{"label":"\x1b]0;owned\x07\u202e"}')],
    )
    header, row = capsys.readouterr().out.splitlines()
    assert header.split() == ["TIME", "ACTOR", "DETAILS"]
    assert "\x1b" not in row
    assert "\u202e" not in row
    assert "\\x1b]0;owned\\x07\\u202e" in row
