"""enrich/consent.py: when a row's consent means the full IP and precise geo are not kept."""

from __future__ import annotations

from typing import Any

import pytest

from thrad_events.enrich.consent import consent_state, opted_out_of_sale, requires_minimisation


@pytest.mark.parametrize(
    "consent",
    [
        {"ad_storage": "denied"},
        {"ad_storage": "DENIED ", "analytics_storage": "granted"},
        {"ad_storage": False},
        {"us_privacy": "1YYN"},
        {"us_privacy": "1-Y-"},
        {"us_privacy": "1nyy"},
        {"gpc": True},
        {"gdpr_applies": True},
        {"gdpr_applies": 1, "tcf_string": "CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA"},
        {"gdpr_applies": "true", "ad_storage": "unknown"},
        {"ad_storage": "granted", "us_privacy": "1YYN"},
    ],
)
def test_denied_ad_storage_or_an_opt_out_of_sale_minimises(consent: dict[str, Any]) -> None:
    assert requires_minimisation(consent) is True


@pytest.mark.parametrize(
    "consent",
    [
        None,
        {},
        {"ad_storage": "granted"},
        {"analytics_storage": "denied"},
        {"us_privacy": "1YNN"},
        {"us_privacy": "1---"},
        {"us_privacy": "YYYY"},
        {"us_privacy": "1YY"},
        {"us_privacy": 1},
        {"gdpr_applies": False},
        {"gdpr_applies": 0},
        {"gdpr_applies": True, "ad_storage": "granted"},
        {"gpc": False},
        {"ad_storage": ["denied"]},
        {"consent_mode": {"ad_storage": "denied"}},  # only top-level keys are read
    ],
)
def test_granted_absent_or_unreadable_consent_keeps_everything(
    consent: dict[str, Any] | None,
) -> None:
    assert requires_minimisation(consent) is False


def test_consent_mode_values() -> None:
    assert consent_state("granted") is True
    assert consent_state("denied") is False
    assert consent_state("maybe") is None
    assert consent_state(None) is None


def test_us_privacy_third_character_is_the_opt_out_of_sale() -> None:
    assert opted_out_of_sale("1YYN") is True
    assert opted_out_of_sale("1YNY") is False
    assert opted_out_of_sale("1YYNN") is False
