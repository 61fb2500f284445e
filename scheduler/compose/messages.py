"""RFC 5322 messages, one per recipient, built only from EmailMessage and Address objects.

An invite or cancellation follows iMIP (RFC 6047): multipart/mixed holding a
multipart/alternative of text/plain, text/html and `text/calendar; method=...`, plus the
same calendar as an `invite.ics` attachment (Gmail, Outlook, Apple Calendar and Thunderbird
each pick the part they read). The Message-ID is derived from the send's key and the
recipient, keyed with the installation's secret (HMAC): a resend after a crash carries the
same Message-ID and mail systems drop the duplicate, and nobody without the secret can name a
message friendtor sent (a reply is taken only when it names one sent to its author).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import default as _default_policy
from email.utils import format_datetime

from scheduler.compose.render import Rendered

HEADER_KIND = "X-Friendtor-Kind"
HEADER_GROUP = "X-Friendtor-Group"
HEADER_KEY = "X-Friendtor-Key"


class _HeaderClasses(HeaderRegistry):
    """The standard header registry, with each header's class made once.

    `HeaderRegistry.__getitem__` builds a new class with `type()` every time a header is set
    or a MIME boundary is written: about 50 classes per invite, the largest cost of building
    one after the templates (docs/performance.md). The classes it builds for a name are all
    alike (the registry is never changed here: no `map_to_type`), so one per name does.
    """

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


# Bodies in 7-bit transfer encodings only (quoted-printable or base64 for non-ASCII text).
# With the default policy a short non-ASCII text part ("10:00–11:00") goes out as raw
# 8bit, but smtplib's send_message never declares BODY=8BITMIME (RFC 6152), so such a
# message is not valid SMTP data and a relay without 8BITMIME may mangle or bounce it.
_POLICY = _default_policy.clone(cte_type="7bit", header_factory=_HeaderClasses())


@dataclass(frozen=True)
class Mailbox:
    name: str
    email: str

    def address(self) -> Address:
        local, _, domain = self.email.rpartition("@")
        return Address(display_name=self.name, username=local, domain=domain)

    def header(self, field: str) -> Address | _LiteralName:
        """The value for a From or To header that shows `name` exactly as written."""
        return _LiteralName(field, self) if "=?" in self.name else self.address()


class _LiteralName(str):
    """An address header whose display name looks like an RFC 2047 encoded word.

    Python's email package decodes "=?charset?b?...?=" wherever it appears when a header
    is set, even inside quotes, and writes the decoded text to the wire: a member named
    "=?utf-8?b?QmNjOiBldmlsQHguZXhhbXBsZQ==?=" would reach the wire as `To: Bcc: evil@x.example
    <member@...>`. This header is written as friendtor folds it instead: the whole name as an
    encoded word of its own literal text, which mail programs decode back to what the
    coordinator wrote, and nothing else.
    """

    name: str

    def __new__(cls, field: str, box: Mailbox) -> _LiteralName:
        self = super().__new__(cls, f"{Header(box.name, 'utf-8').encode()} <{box.email}>")
        self.name = field
        return self

    def fold(self, *, policy) -> str:
        # Header.encode folds a long name onto continuation lines with "\n ".
        return f"{self.name}: {self.replace(chr(10), policy.linesep)}{policy.linesep}"


def content_id(name: str, key: str, recipient: str, sender: str) -> str:
    """An inline image's Content-ID (no angle brackets), stable per send like the Message-ID."""
    digest = hashlib.sha256(f"{name}\x00{key}\x00{recipient.lower()}".encode()).hexdigest()[:24]
    return f"{name}.{digest}@{sender.rpartition('@')[2]}"


def message_id(key: str, recipient: str, sender: str, secret: bytes = b"") -> str:
    """Same send, same recipient, same secret: same Message-ID, forever. Unguessable with the
    installation's secret (previews, which are never sent, have none)."""
    digest = hmac.new(secret, f"{key}\x00{recipient.lower()}".encode(), hashlib.sha256).hexdigest()[:40]
    return f"<{digest}@{sender.rpartition('@')[2]}>"


def compose(
    *,
    kind: str,
    key: str,
    group: str,
    sender: Mailbox,
    recipient: Mailbox,
    rendered: Rendered,
    date: datetime,
    calendar: bytes | None = None,
    method: str | None = None,
    images: Sequence[tuple[str, bytes]] = (),
    secret: bytes = b"",
) -> EmailMessage:
    """One message to one recipient. `calendar` and `method` go together (invites only).

    `images` are (Content-ID, PNG) pairs shown inside the HTML (`<img src="cid:...">`, the
    Content-ID without its angle brackets): the HTML part becomes multipart/related with
    the images beside it, the way mail clients expect inline pictures. The text part is
    left as it is.
    """
    if (calendar is None) != (method is None):
        raise ValueError("calendar and method go together")
    if date.tzinfo is None:
        raise ValueError("aware datetimes only")
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = rendered.subject
    msg["From"] = sender.header("From")
    msg["To"] = recipient.header("To")
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = message_id(key, recipient.email, sender.email, secret)
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: vacation responders stay quiet
    msg[HEADER_KIND] = kind
    msg[HEADER_GROUP] = group
    msg[HEADER_KEY] = key
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    if images:
        html = msg.get_payload()[1]
        for cid, png in images:
            html.add_related(png, maintype="image", subtype="png", cid=f"<{cid}>", disposition="inline",
                             filename=f"{cid.partition('@')[0]}.png")
    if calendar is not None:
        # Bytes, base64: the CRLF line endings RFC 5545 requires survive every relay.
        msg.add_alternative(calendar, maintype="text", subtype="calendar",
                            params={"method": method, "charset": "UTF-8"})
        msg.make_mixed()
        msg.add_attachment(calendar, maintype="application", subtype="ics", filename="invite.ics")
    return msg
