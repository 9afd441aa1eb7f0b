"""auth/tags.py: origins are compared exactly once normalised; registrations are checked."""

from __future__ import annotations

import pytest

from thrad_events.auth.tags import BadOrigin, check_origins, normalize_origin, request_origin
from thrad_events.errors import ValidationFailed


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("HTTPS://Shop.Example.COM:443/", "https://shop.example.com"),
        ("http://shop.example.com:80", "http://shop.example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("http://127.0.0.1:3000", "http://127.0.0.1:3000"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_are_normalised(given: str, expected: str) -> None:
    assert normalize_origin(given) == expected


@pytest.mark.parametrize(
    "given",
    [
        "",
        "*",
        "https://*.example.com",
        "ftp://shop.example.com",
        "javascript:alert(1)",
        "https://shop.example.com/path",
        "https://shop.example.com?q",
        "https://shop.example.com#x",
        "https://user@shop.example.com",
        "https://shop example.com",
        "https://shop.example.com:99999",
        "shop.example.com",
        "https://",
    ],
)
def test_what_is_not_one_origin_is_refused(given: str) -> None:
    with pytest.raises(BadOrigin):
        normalize_origin(given)


def test_a_request_without_a_usable_origin_has_none() -> None:
    assert request_origin(None) is None
    assert request_origin("null") is None
    assert request_origin("https://shop.example.com/x") is None
    assert request_origin("https://Shop.example.com") == "https://shop.example.com"


def test_a_registration_names_the_bad_origin_by_its_place() -> None:
    with pytest.raises(ValidationFailed) as refused:
        check_origins(["https://a.example", "https://*.b.example"])
    assert refused.value.details[0].field == "origins[1]"
    assert check_origins(["https://a.example", "HTTPS://A.example/"]) == ("https://a.example",)
