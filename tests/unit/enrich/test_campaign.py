"""enrich/campaign.py: utm_* and thrad_click_id read from page_url's query string."""

from __future__ import annotations

import pytest

from thrad_events.enrich.campaign import (
    MAX_VALUE_CHARS,
    NO_CAMPAIGN,
    campaign_columns,
)


def test_the_five_utm_fields_and_thrad_click_id_are_read() -> None:
    url = (
        "https://shop.example.com/p?utm_source=thrad&utm_medium=chat&utm_campaign=spring"
        "&utm_term=running+shoes&utm_content=ad%201&thrad_click_id=11111111-1111-4111-8111"
        "-111111111111&other=1"
    )
    assert campaign_columns(url) == {
        "utm_source": "thrad",
        "utm_medium": "chat",
        "utm_campaign": "spring",
        "utm_term": "running shoes",
        "utm_content": "ad 1",
        "thrad_click_id": "11111111-1111-4111-8111-111111111111",
    }


def test_absent_fields_are_none() -> None:
    assert campaign_columns("https://a.example/?utm_source=x") == {
        **NO_CAMPAIGN,
        "utm_source": "x",
    }


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "https://a.example/checkout",
        "https://a.example/?q=1",
        "https://a.example/#utm_source=fragment",
        "https://a.example/?utm_source=",
        "http://[::1/?utm_source=x",
        "not a url at all ? utm",
    ],
)
def test_urls_without_campaign_fields_give_none(url: str | None) -> None:
    assert campaign_columns(url) == NO_CAMPAIGN


def test_names_match_case_insensitively_and_the_first_value_wins() -> None:
    columns = campaign_columns("https://a.example/?UTM_Source=first&utm_source=second")
    assert columns["utm_source"] == "first"


def test_values_are_cut_and_cleaned() -> None:
    columns = campaign_columns(
        "https://a.example/?utm_campaign=" + "x" * 5000 + "&utm_source=a%00b%0Ac"
    )
    assert columns["utm_campaign"] == "x" * MAX_VALUE_CHARS
    assert columns["utm_source"] == "abc"


def test_bad_percent_escapes_are_replaced_not_an_error() -> None:
    assert campaign_columns("https://a.example/?utm_source=%FF%FE")["utm_source"] == "\ufffd\ufffd"
