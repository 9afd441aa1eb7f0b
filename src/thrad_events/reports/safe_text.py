"""Client-sent text made safe where operators look at it: spreadsheet cells and terminals.

Event names, tag ids, params values and the rest are whatever a client sent. Written verbatim
into a CSV, a cell such as `=HYPERLINK(...)` is a formula the spreadsheet runs; printed verbatim
to a terminal, an ESC sequence recolours, moves the cursor or retitles the window, and a bidi
override makes text read backwards. JSON output needs neither: JSON escapes control characters.
"""

from __future__ import annotations

import re

# OWASP's CSV injection guidance: a cell starting with one of these may be read as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A plain number (-5, +2.50, -1E+2) is read as a number, not a formula: it keeps its digits.
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_SEPARATORS = (0x2028, 0x2029)
_CONTROLS = (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), *_BIDI, *_SEPARATORS)
_VISIBLE = {code: (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}") for code in _CONTROLS}


def csv_cell(value: str) -> str:
    """A cell a spreadsheet shows as text: one that could start a formula gets a leading `'`."""
    if value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def terminal_text(value: str) -> str:
    """`value` with every control character (C0, DEL, C1, bidi, line separators) written as a
    visible escape: ESC shows as \\x1b, U+202E as \\u202e."""
    return value.translate(_VISIBLE)
