"""Reading agent commands and Authentication-Results: pure parsing, no guessing."""

from __future__ import annotations

from mailgate.mail import authresults
from mailgate.mail.commands import read


def test_commands_at_the_top_then_the_reply_text() -> None:
    block = read("#priority high\n\n#assign Jane Doe\nHello Carla,\n#not a command here\n")
    assert [(c.name, c.argument) for c in block.commands] == [
        ("priority", "high"),
        ("assign", "jane doe"),
    ]
    assert block.problems == ()
    assert block.text == "Hello Carla,\n#not a command here"


def test_nothing_is_guessed() -> None:
    block = read("#asign me\n#priority urgent\n#resolve now\n#merge abc\n#cc not-an-address\nText")
    assert len(block.problems) == 5
    assert "unknown command" in block.problems[0]
    assert "urgent" in block.problems[1]
    assert "takes no argument" in block.problems[2]
    assert block.text == "Text"


def test_conflicting_and_repeated_commands_are_refused() -> None:
    assert any("exclude" in p for p in read("#note\n#resolve\nx").problems)
    assert any("twice" in p for p in read("#priority low\n#priority high\nx").problems)


def test_plain_replies_have_no_commands() -> None:
    block = read("Hello,\n\n#1 is the best option.")
    assert block.commands == () and block.problems == ()
    assert block.text.startswith("Hello")


def test_merge_accepts_our_tag_form() -> None:
    assert read("#merge [EB#123456]").commands[0].argument == "123456"


def test_only_the_topmost_trusted_authentication_results_count() -> None:
    values = [
        "mx.example.org; dkim=pass header.d=example.org; spf=fail smtp.mailfrom=x@evil.example",
        "mx.example.org; dkim=pass header.d=evil.example",  # lower: added before our server
    ]
    results = authresults.passes(values, ["mx.example.org"])
    assert [(r.method, r.domain) for r in results] == [("dkim", "example.org")]
    assert authresults.vouches_for(results, "alice@example.org") is not None
    assert authresults.vouches_for(results, "alice@sub.example.org") is not None
    assert authresults.vouches_for(results, "alice@evil.example") is None
    assert authresults.passes(values, ["other.example"]) == []


def test_comments_and_dmarc_and_spf_forms() -> None:
    value = (
        "mx.example.org (Postfix 3.7); dkim=pass (2048-bit key; unprotected)"
        " header.d=example.net header.b=xyz; dmarc=pass (p=reject) header.from=example.org;"
        " spf=pass (sender SPF authorized) smtp.mailfrom=bounce@example.com"
    )
    found = {(r.method, r.domain) for r in authresults.passes([value], ["mx.example.org"])}
    assert found == {("dkim", "example.net"), ("dmarc", "example.org"), ("spf", "example.com")}
