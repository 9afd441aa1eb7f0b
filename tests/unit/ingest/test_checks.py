"""ingest/checks.py: the warnings validate_only gives for what storing would silently change."""

from __future__ import annotations

from thrad_events.ingest.checks import collect_warnings, conversion_warnings


def _row(**fields: object) -> dict[str, object]:
    params = {"integration": "partner_s2s", "partner_id": "ptn_1", "api_key_label": "k"}
    return {"tag_id": "t", "timestamp": 1, "params": params, **fields}


def test_a_tidy_collect_has_no_warnings() -> None:
    raw = {"event_name": "x", "tag_id": "t", "timestamp": 1, "channel": "server"}
    assert collect_warnings(raw, _row()) == []


def test_collect_warns_of_each_silent_change() -> None:
    raw = {
        "event_name": "x",
        "tag_id": " ",
        "timestamp": 1771879200.9,
        "channel": "web",
        "extra_field": 1,
        "params": {"integration": "mine", "partner_id": "ptn_1"},
    }
    row = _row(tag_id="site:unknown", timestamp=1771879200)
    assert [field for field, _ in collect_warnings(raw, row)] == [
        "extra_field",
        "tag_id",
        "timestamp",
        "channel",
        "params.integration",
    ]


def test_a_whole_float_timestamp_and_a_derived_host_tag_are_not_warned() -> None:
    raw = {"event_name": "x", "timestamp": 1771879200.0, "page_url": "https://a.example/"}
    row = _row(tag_id="site:a.example", timestamp=1771879200)
    assert collect_warnings(raw, row) == []


def test_conversion_warns_of_extra_fields_and_an_event_id_the_header_overrides() -> None:
    raw = {"click_id": "c", "event_id": "e", "customer_tier": "gold"}
    warned = conversion_warnings(raw, _row(), "idem-1")
    assert [field for field, _ in warned] == ["customer_tier", "event_id"]
    assert conversion_warnings({"click_id": "c", "event_id": "e"}, _row(), None) == []
