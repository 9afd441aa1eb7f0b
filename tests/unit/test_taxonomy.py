"""Thrad's published taxonomy: the standard names the reports' names=standard counts, and the
README's table of them with what each means."""

from __future__ import annotations

import re
from pathlib import Path

from thrad_events.taxonomy import STANDARD_EVENT_NAMES, is_standard

README = Path(__file__).parents[2] / "README.md"

PUBLISHED = {
    "contents_viewed",
    "items_added",
    "checkout_started",
    "order_created",
    "lead_created",
    "appointment_scheduled",
    "registration_completed",
    "trial_started",
    "subscription_created",
    "custom",
    # Also seen in Thrad's examples.
    "page_view",
    "impression",
    "signup_started",
    "purchase_completed",
}


def test_the_standard_names_are_the_published_ones() -> None:
    assert set(STANDARD_EVENT_NAMES) == PUBLISHED
    assert not is_standard("Page_View")
    assert not is_standard("my_custom_thing")


def test_the_readme_lists_every_standard_name_with_its_meaning() -> None:
    text = README.read_text()
    table = text.split("Thrad's standard event names", 1)[1].split("\n\n", 2)[1]
    rows = re.findall(r"^\| `([a-z_]+)` \| (.+) \|$", table, flags=re.MULTILINE)
    assert [name for name, _ in rows] == list(STANDARD_EVENT_NAMES)
    assert all(meaning.strip() for _, meaning in rows)
