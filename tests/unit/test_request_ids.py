"""X-Request-ID: a sane client id is kept; otherwise a new id, unique within the process."""

from __future__ import annotations

import re

import pytest

from thrad_events.logs import request_id_for


def test_minted_ids_are_32_hex_digits_and_never_repeat() -> None:
    minted = [request_id_for(None) for _ in range(10_000)]
    assert len(set(minted)) == len(minted)
    assert all(re.fullmatch(r"[0-9a-f]{32}", rid) for rid in minted)


@pytest.mark.parametrize("given", ["trace-42", "a.b:c_d", "x" * 128])
def test_a_sane_client_id_is_kept(given: str) -> None:
    assert request_id_for(given) == given


@pytest.mark.parametrize("given", ["", "a b", "x<script>", "x" * 129, "line\nbreak", "trace\n"])
def test_anything_else_is_replaced(given: str) -> None:
    replaced = request_id_for(given)
    assert replaced != given
    assert re.fullmatch(r"[0-9a-f]{32}", replaced)
