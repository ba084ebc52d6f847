"""The outbox's shortcuts past the stdlib give the stdlib's bytes: envelope addresses and
the base64 of the files a notice carries."""

from __future__ import annotations

import base64
import random
import smtplib

import pytest

from mailgate.mail import compose
from mailgate.outbox.streaming import quoteaddr

ADDRESSES = [
    "carla@customer.example",
    "first.last+tag@sub.example.co.uk",
    "o'brien@example.ie",
    "weird!#$%&'*+/=?^_`{|}~-@example.org",
    "UPPER@EXAMPLE.ORG",
    "a@b",
    "jörg@kunde.example",
    "Carla <carla@customer.example>",
    "<carla@customer.example>",
    '"quoted local"@example.org',
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    "a@example..org",
    "a@[127.0.0.1]",
    "no-at-sign",
    "",
    "two@at@example.org",
    "carla@customer.example (comment)",
    "carla@customer.example\r\nRCPT TO:<x@evil.example>",
    " carla@customer.example",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_envelope_addresses_are_quoted_as_smtplib_quotes_them(address: str) -> None:
    assert quoteaddr(address) == smtplib.quoteaddr(address)


def test_base64_lines_are_the_stdlibs_with_crlf() -> None:
    rng = random.Random(3)
    for size in (0, 1, 2, 3, 56, 57, 58, 113, 114, 115, 57 * 100, 57 * 100 + 13, 100_003):
        data = rng.randbytes(size)
        expected = base64.encodebytes(data).replace(b"\n", b"\r\n")
        assert compose._base64_crlf(data) == expected, size
        assert compose._base64_crlf(memoryview(data)) == expected, size
        assert compose._base64_crlf(bytearray(data)) == expected, size
