"""Amounts of money: the bounds a conversion_value keeps, and the plain text it is stored as.

An amount is a Decimal holding the digits the client sent. It is checked by its exponent and
digit count alone, never by arithmetic: `1e-300000000` or `1e2000000` is refused without a
number of that size ever being built (a sum or quantize of one would take gigabytes).
"""

from __future__ import annotations

from decimal import Decimal

# |amount| < 10^15, with at most 12 digits after the decimal point once written plainly: room
# for any real price in any currency, and a bound on the digits a report sum can grow to.
MAX_INTEGER_DIGITS = 15
MAX_FRACTION_DIGITS = 12
_ONE = Decimal(1)


def amount_problem(value: Decimal) -> str | None:
    """Why `value` cannot be an amount of money, or None when it can."""
    if not value.is_finite():
        return "must be a finite number"
    if _exponent(value) < -MAX_FRACTION_DIGITS:
        return f"at most {MAX_FRACTION_DIGITS} digits after the decimal point"
    # adjusted() is the power of ten of the leading digit; a zero has none to bound.
    if not value.is_zero() and value.adjusted() >= MAX_INTEGER_DIGITS:
        return f"must be below 1e{MAX_INTEGER_DIGITS} in magnitude"
    return None


def exact_amount(value: Decimal) -> Decimal:
    """A checked amount (amount_problem gave None) in the form both stores keep as sent.

    Its digits and trailing zeros stay; a positive exponent is written out (1E+2 is 100,
    1.50E+1 is 15.0) and a negative zero is zero, as PostgreSQL's numeric would store them.
    """
    if _exponent(value) > 0:
        # Exact: the bounds leave at most 15 integer digits (a zero, one).
        value = value.quantize(_ONE)
    if value.is_zero():
        value = value.copy_abs()
    return value


def _exponent(value: Decimal) -> int:
    """The power of ten of the last digit written (-2 for 49.99) of a finite value."""
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def plain_text(amount: Decimal) -> str:
    """Plain digits, never an exponent: 1E+2 is "100", 1E-7 is "0.0000001"."""
    return format(amount, "f")
