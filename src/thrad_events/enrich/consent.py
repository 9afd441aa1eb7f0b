"""What a row's consent object allows us to keep: the full IP and precise location, or less.

Keys understood (top level of `consent`; docs/enrichment.md is the reference):

- `ad_storage` (Google Consent Mode): "granted" or "denied" (or true/false).
- `analytics_storage` (Google Consent Mode): read and stored; the server keeps no cookie or
  identifier of its own, so it changes no column.
- `us_privacy` (IAB CCPA string, e.g. "1YYN"): the third character "Y" = opted out of sale.
- `gpc` (Global Privacy Control): true = opted out of sale.
- `gdpr_applies`: true means consent must be given, so without `ad_storage: "granted"` the
  row is treated as if ad storage were denied.

Anything else, or a malformed value, is ignored: it neither grants nor denies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_US_PRIVACY = re.compile(r"1[YN-][YN-][YN-]", re.IGNORECASE)
_TRUE_TEXT = frozenset({"true", "1", "yes"})
_FALSE_TEXT = frozenset({"false", "0", "no"})


def requires_minimisation(consent: Mapping[str, Any] | None) -> bool:
    """True when the stored IP must be truncated and geo kept only to the region."""
    if not consent or not isinstance(consent, Mapping):
        return False
    ad_storage = consent_state(consent.get("ad_storage"))
    if ad_storage is False:
        return True
    if opted_out_of_sale(consent.get("us_privacy")):
        return True
    if _flag(consent.get("gpc")) is True:
        return True
    return _flag(consent.get("gdpr_applies")) is True and ad_storage is not True


def consent_state(value: Any) -> bool | None:
    """Consent Mode's "granted" -> True, "denied" -> False, anything else -> None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "granted":
            return True
        if text == "denied":
            return False
    return None


def opted_out_of_sale(us_privacy: Any) -> bool:
    """An IAB us_privacy string ("1YYN") whose third character says opted out ("Y")."""
    return (
        isinstance(us_privacy, str)
        and _US_PRIVACY.fullmatch(us_privacy.strip()) is not None
        and us_privacy.strip()[2] in "Yy"
    )


def _flag(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return {1: True, 0: False}.get(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _TRUE_TEXT:
            return True
        if text in _FALSE_TEXT:
            return False
    return None
