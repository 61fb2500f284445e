"""Mail transports: Maildir on disk, SMTP against real aiosmtpd servers on loopback, and the wiring."""

from __future__ import annotations

import asyncio
import email
import email.policy
import email.utils
import mailbox
import ssl
import stat
import time
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

import pytest
from smtp_servers import (
    PASSWORD,
    USERNAME,
    Recorder,
    Server,
    running,
)

from integrations.mail import (
    DryRunTransport,
    MaildirTransport,
    SmtpTransport,
    Transport,
    envelope,
    transport_for,
)
from scheduler.core.config import Config, Mail, Service, Smtp
from scheduler.core.errors import FriendtorError, SendError

SENDER = "friendtor@group.example"
RECIPIENT = "maya.chen@uni-a.example"
ENV = "FRIENDTOR_SMTP_PASSWORD"


def message(to: str = RECIPIENT, body: str = "Agenda for Tuesday: check-in round, Li's K23.") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address("friendtor", addr_spec=SENDER)
    msg["To"] = Address("Maya Chen", addr_spec=to)
    msg["Subject"] = "K Club: agenda for 8 December"
    msg["Message-ID"] = "<agenda.k-club.2026-12.maya@group.example>"
    msg["Date"] = "Sun, 06 Dec 2026 14:00:00 +0000"
    msg.set_content(body)
    msg.add_alternative(f"<p>{body}</p>", subtype="html")
    return msg


def smtp_settings(address: tuple[str, int] | Server, **fields) -> Smtp:
    host, port = (address.host, address.port) if isinstance(address, Server) else address
    return Smtp(host=host, port=port, **{"security": "none", "timeout_seconds": 5, **fields})


def config(tmp_path: Path, **mail) -> Config:
    return Config(folder=tmp_path, service=Service(mail=Mail(**mail)), groups={})


def arrived(server: Server) -> EmailMessage:
    """The one message the server received, checked to have the one-recipient envelope."""
    assert len(server.received) == 1
    got = server.received[0]
    assert got.mail_from == SENDER
    assert got.rcpt_tos == (RECIPIENT,)
    # On the wire lines end in CRLF; compare content, not line endings.
    return email.message_from_bytes(got.content.replace(b"\r\n", b"\n"), policy=email.policy.default)


def assert_same(parsed: EmailMessage, sent: EmailMessage) -> None:
    for name in ("From", "To", "Subject", "Message-ID", "Date"):
        assert parsed[name] == sent[name], name
    assert [p.get_content() for p in parsed.iter_parts()] == [p.get_content() for p in sent.iter_parts()]


# --- Maildir -----------------------------------------------------------------------------

def test_maildir_message_lands_in_new_and_parses_back_identical(tmp_path):
    """A delivered message is a file in new/ whose headers and parts equal what was sent."""
    box = tmp_path / "var" / "outbox"
    sent = message()
    key = MaildirTransport(box).deliver(sent)
    files = list((box / "new").iterdir())
    assert [f.name for f in files] == [key]
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert_same(parsed, sent)
    assert parsed.as_bytes() == sent.as_bytes()
    assert not list((box / "tmp").iterdir())  # written via tmp/, nothing left behind


def test_maildir_is_readable_as_a_maildir(tmp_path):
    """What the transport writes is a Maildir any reader (mutt, mailbox) opens: one message per send."""
    transport = MaildirTransport(tmp_path / "outbox")
    transport.send(message())
    transport.send(message(to="li.wang@uni-c.example"))
    box = mailbox.Maildir(tmp_path / "outbox", factory=None, create=False)
    assert sorted(email.utils.parseaddr(m["To"])[1] for m in box) == ["li.wang@uni-c.example", RECIPIENT]


def test_maildir_folders_are_private(tmp_path):
    """The outbox and its cur/new/tmp are created with mode 0700: messages hold members' personal data."""
    box = tmp_path / "var" / "outbox"
    MaildirTransport(box).send(message())
    for folder in (box, box / "cur", box / "new", box / "tmp"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder


def test_maildir_is_not_created_until_the_first_message(tmp_path):
    """Building the transport touches nothing on disk (validate and dry runs stay side-effect free)."""
    MaildirTransport(tmp_path / "outbox")
    assert not (tmp_path / "outbox").exists()


@pytest.mark.parametrize("occupied", ["outbox", "var"])
def test_maildir_path_that_is_a_file_is_one_clear_line(tmp_path, occupied):
    """A maildir setting that points at (or under) an existing file is a setup SendError in one line:
    no message can go until it is fixed, so the service holds sending back rather than failing each."""
    file = tmp_path / "var" / "outbox" if occupied == "outbox" else tmp_path / "var"
    file.parent.mkdir(exist_ok=True)
    file.write_text("not a folder")
    with pytest.raises(SendError) as caught:
        MaildirTransport(tmp_path / "var" / "outbox").send(message())
    assert caught.value.setup is True
    text = str(caught.value)
    assert "\n" not in text and "is a file, not a folder" in text and "maildir" in text


# --- plain SMTP ----------------------------------------------------------------------------

def test_plain_smtp_delivers_with_the_envelope_from_the_headers(plain_smtp):
    """security = "none": MAIL FROM is the From address, RCPT TO the To address, and the content arrives."""
    sent = message()
    SmtpTransport(smtp_settings(plain_smtp), None).send(sent)
    assert_same(arrived(plain_smtp), sent)


def test_bcc_and_several_recipients_are_refused_before_connecting(closed_port):
    """A message for more than one person is a bug: ValueError, and no connection is attempted."""
    transport = SmtpTransport(smtp_settings(closed_port), None)
    two = message()
    two.replace_header("To", "a@x.example, b@x.example")
    bcc = message()
    bcc["Bcc"] = "c@x.example"
    for bad in (two, bcc):
        with pytest.raises(ValueError, match="exactly one To address"):
            transport.send(bad)


# The envelope from To headers as written, read three ways: parsed header objects (how compose
# builds every message), a message parsed with the default policy, and one parsed with compat32
# (plain strings). Each way must give the same one recipient, or refuse the same message.
TO_HEADERS = {
    "Maya Chen <maya.chen@uni-a.example>": "maya.chen@uni-a.example",
    '"Chen, Maya" <maya.chen@uni-a.example>': "maya.chen@uni-a.example",
    "maya.chen@uni-a.example": "maya.chen@uni-a.example",
    "=?utf-8?q?Zo=C3=AB?= <zoe@uni-a.example>": "zoe@uni-a.example",
    "a@x.example, b@x.example": None,
    "a@x.example,\r\n b@x.example": None,
    "undisclosed-recipients:;": None,
    "Team: a@x.example, b@x.example;": None,
}


@pytest.mark.parametrize("to, expected", TO_HEADERS.items(), ids=range(len(TO_HEADERS)))
def test_the_envelope_is_the_same_however_the_message_holds_its_headers(to, expected):
    """Built header objects, default-policy and compat32 parses give one envelope, or refuse alike."""
    wire = f"From: Group <{SENDER}>\r\nTo: {to}\r\nSubject: x\r\n\r\nbody\r\n".encode()
    built = EmailMessage()
    built["From"], built["To"] = Address("Group", addr_spec=SENDER), to.replace("\r\n", "")
    for msg in (built, email.message_from_bytes(wire, policy=email.policy.default),
                email.message_from_bytes(wire, policy=email.policy.compat32)):
        if expected is None:
            with pytest.raises(ValueError, match="exactly one To address"):
                envelope(msg)
        else:
            assert envelope(msg) == (SENDER, expected)


# --- STARTTLS + AUTH -----------------------------------------------------------------------

def submission(server: Server, password: str = PASSWORD, context: ssl.SSLContext | None = None) -> SmtpTransport:
    settings = smtp_settings(server, security="starttls", username=USERNAME, password_env=ENV)
    return SmtpTransport(settings, password, ssl_context=context)


def test_starttls_and_login_deliver(submission_smtp, client_tls):
    """STARTTLS with a verified certificate, then AUTH, then the message arrives."""
    sent = message()
    submission(submission_smtp, context=client_tls).send(sent)
    assert_same(arrived(submission_smtp), sent)


def test_wrong_password_names_the_variable_and_never_the_password(submission_smtp, client_tls):
    """A rejected login is a setup error (held back and retried, never blamed on the message), points at
    username and the env var, and does not echo the password."""
    wrong = "hunter2-wrong"
    with pytest.raises(SendError) as caught:
        submission(submission_smtp, password=wrong, context=client_tls).send(message())
    error = caught.value
    assert error.setup is True and error.code == 535
    assert ENV in str(error) and "username" in str(error)
    assert wrong not in str(error) and wrong not in repr(error.args)
    assert submission_smtp.received == []


def test_untrusted_certificate_is_permanent_and_never_bypassed(submission_smtp):
    """With the system CAs only, the test server's certificate fails verification: a setup error that
    says how to fix it."""
    with pytest.raises(SendError) as caught:
        submission(submission_smtp).send(message())
    text = str(caught.value)
    assert caught.value.setup is True
    assert "could not be verified" in text and "CA certificate" in text
    assert "disable" not in text and "CERT_NONE" not in text
    assert submission_smtp.received == []


def test_starttls_required_but_not_offered_sends_nothing(plain_smtp, client_tls):
    """security = "starttls" against a server without STARTTLS: a setup error, nothing sent in clear text."""
    settings = smtp_settings(plain_smtp, security="starttls")
    with pytest.raises(SendError, match="does not offer STARTTLS") as caught:
        SmtpTransport(settings, None, ssl_context=client_tls).send(message())
    assert caught.value.setup is True
    assert plain_smtp.received == []


def test_password_is_never_sent_in_clear_text_to_a_remote_host():
    """security = "none" with a login to a non-loopback host is refused when the transport is built."""
    settings = Smtp(host="mail.example.org", security="none", username=USERNAME, password_env=ENV)
    with pytest.raises(FriendtorError, match="clear text"):
        SmtpTransport(settings, PASSWORD)


def test_repr_does_not_show_the_password(submission_smtp, client_tls):
    """The transport's repr (logs, debuggers) shows where it sends, not the password."""
    assert PASSWORD not in repr(submission(submission_smtp, context=client_tls))


# --- implicit TLS ------------------------------------------------------------------------

def test_implicit_tls_delivers(smtps, client_tls):
    """security = "ssl": TLS from the first byte, certificate verified, message arrives."""
    sent = message()
    SmtpTransport(smtp_settings(smtps, security="ssl"), None, ssl_context=client_tls).send(sent)
    assert_same(arrived(smtps), sent)


def test_implicit_tls_against_a_plain_port_is_a_setup_error_with_a_hint(plain_smtp, client_tls):
    """security = "ssl" on a port that speaks plain SMTP fails the handshake: a setup error, says to check security."""
    with pytest.raises(SendError, match='check that security = "ssl"') as caught:
        SmtpTransport(smtp_settings(plain_smtp, security="ssl"), None, ssl_context=client_tls).send(message())
    assert caught.value.setup is True


# --- server replies ----------------------------------------------------------------------

def test_451_is_transient_and_the_retry_is_delivered(deferring_smtp):
    """A 451 reply is a transient SendError with the code; sending again delivers."""
    transport = SmtpTransport(smtp_settings(deferring_smtp), None)
    with pytest.raises(SendError) as caught:
        transport.send(message())
    assert (caught.value.transient, caught.value.setup, caught.value.code) == (True, False, 451)
    assert "451 4.3.0 try again later" in str(caught.value)
    assert deferring_smtp.received == []
    transport.send(message())
    arrived(deferring_smtp)


class RefuseMailFrom(Recorder):
    """Answers MAIL FROM with `reply`."""

    def __init__(self, reply: str):
        super().__init__()
        self.reply = reply

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        return self.reply


@pytest.mark.parametrize("reply, setup", [
    ("552 5.3.4 Message size exceeds fixed limit", False),   # this message (SIZE= on MAIL FROM)
    ("553 5.7.1 Sender address rejected: not owned by user", True),  # the sender: every message
])
def test_a_refusal_at_mail_from_is_the_setups_only_when_it_is_about_the_sender(reply, setup):
    """MAIL FROM is refused for the sender (the setup: hold sending back) or, with SIZE=, for
    this message's size (this message alone fails; the others must still go)."""
    with running(RefuseMailFrom(reply)) as server, pytest.raises(SendError) as caught:
        SmtpTransport(smtp_settings(server), None).send(message())
    assert (caught.value.setup, caught.value.transient) == (setup, setup)
    assert reply[:3] in str(caught.value)


def test_refused_recipient_is_permanent_and_named(refusing_smtp):
    """RCPT answered 550 is a permanent SendError for that recipient, with the server's words."""
    with pytest.raises(SendError) as caught:
        SmtpTransport(smtp_settings(refusing_smtp), None).send(message())
    error = caught.value
    assert (error.transient, error.setup, error.code, error.recipient) == (False, False, 550, RECIPIENT)
    assert "550 5.1.1 no such user" in str(error) and "\n" not in str(error)


# --- broken connections ------------------------------------------------------------------

def test_connection_closed_before_greeting_is_transient(hanging_up_server):
    """A server that hangs up at once is a transient setup SendError (every message would meet it)."""
    with pytest.raises(SendError, match="closed the connection") as caught:
        SmtpTransport(smtp_settings(hanging_up_server), None).send(message())
    assert (caught.value.transient, caught.value.setup) == (True, True)


def test_connection_refused_is_transient(closed_port):
    """Nothing listening on the port is a transient SendError that says to check host and port."""
    with pytest.raises(SendError, match="connection refused") as caught:
        SmtpTransport(smtp_settings(closed_port), None).send(message())
    assert (caught.value.transient, caught.value.setup) == (True, True)


def test_silent_server_times_out_as_transient(silent_server):
    """A server that accepts and never answers gives a transient SendError after timeout_seconds."""
    transport = SmtpTransport(smtp_settings(silent_server, timeout_seconds=1), None)
    with pytest.raises(SendError, match="did not answer within 1 s") as caught:
        transport.send(message())
    assert (caught.value.transient, caught.value.setup) == (True, True)


# --- dry run and wiring ------------------------------------------------------------------

def test_dry_run_records_and_sends_nothing():
    """DryRunTransport keeps the messages in order and is a Transport."""
    transport = DryRunTransport()
    first, second = message(), message(to="li.wang@uni-c.example")
    transport.send(first)
    transport.send(second)
    assert transport.messages == [first, second]
    assert isinstance(transport, Transport)


def test_transport_for_defaults_to_the_maildir_under_the_config_folder(tmp_path):
    """Without a [mail] table the transport is a Maildir at var/outbox in the config folder."""
    transport = transport_for(config(tmp_path), environ={})
    assert isinstance(transport, MaildirTransport)
    assert transport.path == tmp_path / "var" / "outbox"


def test_transport_for_smtp_reads_the_password_from_the_named_variable(tmp_path, submission_smtp):
    """transport = "smtp" builds an SmtpTransport with the password taken from the environment."""
    smtp = smtp_settings(submission_smtp, security="starttls", username=USERNAME, password_env=ENV)
    transport = transport_for(config(tmp_path, transport="smtp", smtp=smtp), environ={ENV: PASSWORD})
    assert isinstance(transport, SmtpTransport)
    assert transport.port == submission_smtp.port


@pytest.mark.parametrize("environ", [{}, {ENV: ""}])
def test_transport_for_smtp_without_the_variable_is_one_line_naming_it(tmp_path, environ):
    """A missing or empty password variable is a one-line FriendtorError naming it and how to set it."""
    smtp = Smtp(host="mail.example.org", username=USERNAME, password_env=ENV)
    with pytest.raises(FriendtorError) as caught:
        transport_for(config(tmp_path, transport="smtp", smtp=smtp), environ=environ)
    text = str(caught.value)
    assert "\n" not in text and ENV in text and "EnvironmentFile" in text


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("ssl", 465), ("none", 25)])
def test_default_port_follows_security(security, port):
    """Without a port, starttls uses 587, ssl 465 and none 25."""
    assert SmtpTransport(Smtp(host="localhost", security=security), None).port == port


# --- one session per batch ------------------------------------------------------------------

class Sessions(Recorder):
    """Accepts everything and counts the SMTP sessions its messages came in."""

    def __init__(self) -> None:
        super().__init__()
        self.sessions: list[object] = []  # kept alive, so no two sessions share an identity

    async def handle_DATA(self, server, session, envelope) -> str:
        if all(s is not session for s in self.sessions):
            self.sessions.append(session)
        return await super().handle_DATA(server, session, envelope)


class DropsAfter(Sessions):
    """Hangs up right after accepting the `after`-th message, once (a relay's idle time-out)."""

    def __init__(self, after: int) -> None:
        super().__init__()
        self.after, self.dropped = after, False

    async def handle_DATA(self, server, session, envelope) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.received) == self.after and not self.dropped:
            self.dropped = True
            asyncio.get_running_loop().call_later(0.05, server.transport.close)
        return reply


class Busy421(Sessions):
    """Answers the `at`-th MAIL FROM with a 421 (the server is shutting this session down), once."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at, self.mails = at, 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:
        self.mails += 1
        if self.mails == self.at:
            return "421 4.3.2 service shutting down"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"


class RefusesOne(Sessions):
    """Refuses one address with a 550 and takes the others."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address == "nobody@uni-a.example":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"


def numbered(n: int, to: str = RECIPIENT) -> EmailMessage:
    msg = message(to=to, body=f"message {n}")
    msg.replace_header("Message-ID", f"<m{n}@group.example>")
    return msg


def test_a_batch_goes_out_on_one_connection():
    """Every message sent inside one session() travels on one SMTP connection."""
    handler = Sessions()
    with running(handler) as server:
        transport = SmtpTransport(smtp_settings(server), None)
        with transport.session():
            for n in range(6):
                transport.send(numbered(n))
        assert len(server.received) == 6
        assert len(handler.sessions) == 1 and transport.connections == 1


def test_outside_a_session_each_message_has_its_own_connection():
    """Without session(), each send is a session of its own, as before."""
    handler = Sessions()
    with running(handler) as server:
        transport = SmtpTransport(smtp_settings(server), None)
        for n in range(3):
            transport.send(numbered(n))
        assert len(server.received) == 3 and len(handler.sessions) == 3


def test_a_connection_dropped_mid_batch_is_reopened():
    """A server that hangs up between two messages costs a reconnect, not a message."""
    handler = DropsAfter(2)
    with running(handler) as server:
        transport = SmtpTransport(smtp_settings(server), None)
        with transport.session():
            for n in range(5):
                if n == 2:
                    time.sleep(0.3)  # the hang-up has happened
                transport.send(numbered(n))
        assert len(server.received) == 5
        assert len(handler.sessions) == 2 and transport.connections == 2


def test_a_421_mid_batch_reconnects_and_sends_the_message():
    """A 421 at MAIL FROM closes the session; the same message goes out on a new one."""
    handler = Busy421(at=3)
    with running(handler) as server:
        transport = SmtpTransport(smtp_settings(server), None)
        with transport.session():
            for n in range(5):
                transport.send(numbered(n))
        assert len(server.received) == 5
        assert len(handler.sessions) == 2 and transport.connections == 2


def test_a_refused_recipient_fails_alone_on_the_same_session():
    """A 550 for one recipient fails that message only; the rest go out on the same connection."""
    handler = RefusesOne()
    with running(handler) as server:
        transport = SmtpTransport(smtp_settings(server), None)
        with transport.session():
            transport.send(numbered(0))
            with pytest.raises(SendError) as refused:
                transport.send(numbered(1, to="nobody@uni-a.example"))
            transport.send(numbered(2))
            transport.send(numbered(3))
        assert not refused.value.transient and refused.value.recipient == "nobody@uni-a.example"
        assert not refused.value.setup
        assert [r.rcpt_tos for r in server.received] == [(RECIPIENT,)] * 3
        assert len(handler.sessions) == 1 and transport.connections == 1


def test_maildir_and_dry_run_accept_a_session(tmp_path: Path):
    """Every built-in transport can be used inside session()."""
    for transport in (MaildirTransport(tmp_path / "outbox"), DryRunTransport()):
        with transport.session():
            transport.send(numbered(0))
