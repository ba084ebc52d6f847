"""Ticket tags and reply prefixes in subjects, as real clients in many languages write them."""

from __future__ import annotations

import pytest

from mailgate.mail.subject import clean_subject, find_tag, foreign_tags


@pytest.mark.parametrize(
    "subject",
    [
        "Re: [EB#482913] Online banking down",
        "RE: RE: [EB#482913] Online banking down",
        "AW: WG: [EB#482913] Online banking down",
        "SV: VS: [EB#482913] Online banking down",
        "Antw: Doorst: [EB#482913] Online banking down",
        "RIF: R: [EB#482913] Online banking down",
        "Odp: TR: [EB#482913] Online banking down",
        "回复：转发: [EB#482913] Online banking down",
        "答复: [EB#482913] Online banking down",
        "Re[2]: [EB#482913] Online banking down",
        "Fwd: Online banking down [EB#482913]",
        "Online banking down (was: something else) [eb # 482913]",
    ],
)
def test_our_tag_is_found_behind_any_mix_of_prefixes(subject: str) -> None:
    assert find_tag(subject, "EB") == 482913
    assert clean_subject(subject, "EB").startswith("Online banking down")


def test_another_systems_prefix_is_not_our_tag() -> None:
    assert find_tag("Re: [XY#482913] Online banking down", "EB") is None
    assert find_tag("Re: [EBX#482913] Online banking down", "EB") is None


def test_prefixes_are_removed_for_the_ticket_subject() -> None:
    assert clean_subject("AW: Fwd: RE[2]: Printer on fire", "EB") == "Printer on fire"
    assert clean_subject("Re: [EB#1] Re: Printer", "EB") == "Printer"
    assert clean_subject("", "EB") == "(no subject)"


def test_a_word_that_merely_starts_like_a_prefix_is_kept() -> None:
    assert clean_subject("Reactivation of my account", "EB") == "Reactivation of my account"
    assert clean_subject("Trouble: printer", "EB") == "Trouble: printer"


def test_vendor_tags_are_kept_aside_for_our_outbound_subjects() -> None:
    subject = "Re: [Ticket#2026112210000012] Re: [example.com #123] Server down"
    assert foreign_tags(subject, "EB") == ["[Ticket#2026112210000012]", "[example.com #123]"]
    assert clean_subject(subject, "EB") == "Server down"
    assert foreign_tags("[EB#123456] x", "EB") == []
