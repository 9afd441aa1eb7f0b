"""Thrad's standard event names, and what each means; any other name is a custom event.

Names are never refused: a name outside this list is stored as sent and counts as custom in
the reports' `names=standard|custom` filter.
"""

from __future__ import annotations

STANDARD_EVENT_NAMES: dict[str, str] = {
    "contents_viewed": "a product or content page was viewed",
    "items_added": "items were added to a cart",
    "checkout_started": "checkout began",
    "order_created": "an order was placed",
    "lead_created": "a lead form was submitted",
    "appointment_scheduled": "an appointment was booked",
    "registration_completed": "an account registration finished",
    "trial_started": "a free trial began",
    "subscription_created": "a paid subscription began",
    "custom": "an advertiser-defined action, named as such",
    # Also used in Thrad's own examples.
    "page_view": "a page was loaded",
    "impression": "an ad or placement was seen",
    "signup_started": "a signup form was opened",
    "purchase_completed": "a purchase was paid (a conversion's default event_type)",
}


def is_standard(name: str) -> bool:
    return name in STANDARD_EVENT_NAMES
