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


class NotAnAmount(ValueError):
    """A number that cannot be an amount of money; the message says why, in plain words."""


def exact_amount(value: Decimal) -> Decimal:
    """`value` as an amount, in the form both stores keep as sent; NotAnAmount out of bounds.

    Its digits and trailing zeros stay; a positive exponent is written out (1E+2 is 100,
    1.50E+1 is 15.0) and a negative zero is zero, as PostgreSQL's numeric would store them.
    """
    sign, digits, exponent = value.as_tuple()
    if not isinstance(exponent, int):
        raise NotAnAmount("must be a finite number")
    if exponent < -MAX_FRACTION_DIGITS:
        raise NotAnAmount(f"at most {MAX_FRACTION_DIGITS} digits after the decimal point")
    # The power of ten of the leading digit (Decimal.adjusted); a zero has none to bound.
    if digits != (0,) and len(digits) + exponent - 1 >= MAX_INTEGER_DIGITS:
        raise NotAnAmount(f"must be below 1e{MAX_INTEGER_DIGITS} in magnitude")
    if exponent > 0:
        # Exact: the bounds leave at most 15 integer digits (a zero, one).
        value = value.quantize(_ONE)
    if sign and digits == (0,):
        value = value.copy_abs()
    return value


def plain_text(amount: Decimal) -> str:
    """Plain digits, never an exponent: 1E+2 is "100", 1E-7 is "0.0000001"."""
    return format(amount, "f")
