"""Names and addresses written by coordinators reach the wire as written and nothing more:
an encoded-word-looking name is kept literally (no header injection), and an address the
mail system cannot carry is refused by validate with one line."""

from __future__ import annotations

import base64
import email
import email.policy
import email.utils
from email.header import decode_header, make_header
from datetime import UTC, datetime

import pytest

from integrations.mail import envelope
from scheduler.compose.messages import Mailbox, compose
from scheduler.compose.render import Rendered
from scheduler.core.fields import _email

INJECTION = "=?utf-8?b?" + base64.b64encode(b"Bcc: evil@x.example").decode() + "?="
NAMES = [
    pytest.param(INJECTION, id="encoded-word-bcc"),
    pytest.param("=?utf-8?q?Anna?= Lee", id="encoded-word-and-text"),
    pytest.param("Zoë =?iso-8859-1?q?=E9?= " + "long " * 20, id="encoded-word-long-non-ascii"),
    pytest.param('"=?x?q?y?=" <other@x.example>', id="quoted-with-address"),
]


def message(to_name: str, from_name: str = "Group") -> email.message.EmailMessage:
    return compose(kind="agenda", key="agenda:g:2026-12", group="g",
                   sender=Mailbox(from_name, "group@mentoring.example.org"),
                   recipient=Mailbox(to_name, "member@uni.example"),
                   rendered=Rendered("Agenda", "text", "<p>html</p>"), date=datetime(2026, 12, 1, tzinfo=UTC))


@pytest.mark.parametrize("name", NAMES)
def test_an_encoded_word_looking_name_is_kept_literally(name: str) -> None:
    """The recipient's mail program shows exactly the coordinator's text; no other header or address appears."""
    for field, msg in (("To", message(name)), ("From", message("Member", from_name=name))):
        wire = msg.as_bytes()
        back = email.message_from_bytes(wire, policy=email.policy.compat32)
        assert back.get_all("Bcc") is None and b"evil@x.example" not in wire
        assert len(back.get_all(field)) == 1
        # Decoded as RFC 2047 says (adjacent encoded words join without the space between;
        # the email package's newer parser gets that wrong for long folded names).
        shown, address = email.utils.parseaddr(back[field])
        assert str(make_header(decode_header(shown))) == name
        assert address == ("member@uni.example" if field == "To" else "group@mentoring.example.org")
        assert envelope(msg) == ("group@mentoring.example.org", "member@uni.example")


def test_a_plain_name_is_unchanged() -> None:
    """Names without an encoded word go through the email package's own address header, as before."""
    wire = message("Zoë Müller").as_bytes()
    assert b"To: =?utf-8?q?Zo=C3=AB_M=C3=BCller?= <member@uni.example>" in wire


@pytest.mark.parametrize("value, expected", [
    ("zoe@bücher.example", "zoe@xn--bcher-kva.example"),
    ("Zoe@Bücher.Example", "zoe@xn--bcher-kva.example"),
])
def test_internationalised_domains_are_sent_in_their_ascii_form(value: str, expected: str) -> None:
    """A domain beyond ASCII is kept in its xn-- form, which every relay accepts."""
    assert _email(value) == expected


def test_a_mailbox_name_beyond_ascii_is_refused_with_one_line() -> None:
    """zoë@bücher.example needs SMTPUTF8, which friendtor does not speak: validate says so in one line."""
    from pydantic_core import PydanticCustomError

    with pytest.raises(PydanticCustomError) as caught:
        _email("zoë@bücher.example")
    text = str(caught.value)
    assert "ASCII" in text and "\n" not in text


def test_validate_names_the_member_whose_address_needs_smtputf8(tmp_path, capsys) -> None:
    """`validate` on a group with zoë@… prints one line naming the file and the member's field, exit 2."""
    import shutil
    from pathlib import Path

    from scheduler.cli.main import main

    folder = tmp_path / "cfg"
    shutil.copytree(Path(__file__).resolve().parents[2] / "config" / "example", folder,
                    ignore=shutil.ignore_patterns("var"))
    group = folder / "groups" / "k-club.toml"
    group.write_text(group.read_text().replace("sam.begay@rocky-mountain.example", "samë@bücher.example"))
    capsys.readouterr()
    assert main(["validate", "--config", str(folder)]) == 2
    out, err = capsys.readouterr()
    (line,) = err.splitlines()
    assert line.startswith("groups/k-club.toml: members[") and ".email: " in line and "ASCII" in line
