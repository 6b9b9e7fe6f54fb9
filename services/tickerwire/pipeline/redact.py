"""PII redaction to typed placeholders: emails, phone numbers, US SSNs, Luhn-valid card numbers,
and IBANs. Pure functions; the caller counts the returned kinds in a metric.

Validation comes from well-kept libraries (``phonenumbers`` for phone numbers, ``python-stdnum``
for Luhn and IBAN check digits), so that financial figures are not mistaken for PII.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "ssn": "[SSN]",
    "card": "[CARD]",
    "iban": "[IBAN]",
}

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"
)
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_CARD = re.compile(r"(?<![\d.,])(?:\d[ -]?){12,18}\d(?![\d.,]\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")


@dataclass(frozen=True, slots=True)
class Redaction:
    """Redacted text and how many spans of each kind were replaced."""

    text: str
    counts: dict[str, int]


def redact(text: str, *, region: str = "US") -> Redaction:
    """Replace PII with ``[EMAIL]``, ``[PHONE]``, ``[SSN]``, ``[CARD]`` and ``[IBAN]``."""
    counts: Counter[str] = Counter()

    def sub(kind: str, pattern: re.Pattern[str], text: str, valid: object = None) -> str:
        def repl(m: re.Match[str]) -> str:
            if callable(valid) and not valid(m.group(0)):
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        return pattern.sub(repl, text)

    text = sub("email", _EMAIL, text)
    text = sub("iban", _IBAN, text, lambda s: stdnum_iban.is_valid(s.replace(" ", "")))
    text = sub("ssn", _SSN, text)
    text = sub("card", _CARD, text, _is_card)
    text = _redact_phones(text, region, counts)
    return Redaction(text=text, counts=dict(counts))


def _is_card(candidate: str) -> bool:
    digits = re.sub(r"[ -]", "", candidate)
    return 13 <= len(digits) <= 19 and luhn.is_valid(digits)


#: Phone-shaped spans: an optional +country code, then digit groups split by spaces, dots, dashes
#: or parentheses. Only these are handed to ``phonenumbers`` for validation: running its matcher
#: over whole filings (tables full of figures) cost more than half of preprocessing.
_PHONE_SHAPE = re.compile(
    r"(?<![\w.,-])(?:\+\d{1,3}[\s.-]?|1[\s.-])?(?:\(\d{2,5}\)[\s.-]?|\d{2,5}[\s.-])"
    r"\d{2,8}(?:[\s.-]\d{2,4}){0,3}(?![\w,]|\.\d)"
)


def _redact_phones(text: str, region: str, counts: Counter[str]) -> str:
    def repl(m: re.Match[str]) -> str:
        candidate = m.group(0)
        try:
            number = phonenumbers.parse(candidate, region)
        except phonenumbers.NumberParseException:
            return candidate
        if not phonenumbers.is_valid_number(number):
            return candidate
        counts["phone"] += 1
        return PLACEHOLDERS["phone"]

    return _PHONE_SHAPE.sub(repl, text)
