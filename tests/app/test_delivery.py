"""Delivery (scheduler.app.delivery) through a real SMTP server: retries, failures reported once, and setup errors
that hold sending back instead of failing every message.

Each test runs the service's Runner on the example group (twelve members; on NOW the
December meeting's invites are due) against an aiosmtpd server on loopback, and reads the
outcome from what the server received and from the state.
"""

from __future__ import annotations

import email
import email.policy
import shutil
import ssl
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from smtp_servers import (
    PASSWORD,
    USERNAME,
    Recorder,
    Server,
    running,
)

from integrations.mail import SmtpTransport
from scheduler.core.errors import SendError
from scheduler.app.tick import Runner
from scheduler.app.watcher import ConfigWatcher
from scheduler.app.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "example"
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SENDER = "k-club@mentoring.example.org"
COORDINATORS = {"maya.chen@northeast-childrens.example", "li.wang@pacific-u.example"}
DANIEL = "daniel.okafor@lakeshore-u.example"   # a member who is not a coordinator


class RefuseOne(Recorder):
    """Accepts everyone but one address, which it answers with `reply` at RCPT."""

    def __init__(self, address: str, reply: str):
        super().__init__()
        self.address, self.reply = address, reply

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if address == self.address:
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"


class DeferOnceAtData(Recorder):
    """Answers the first DATA for one address with 451, keeping what it was offered in `offered`."""

    def __init__(self, address: str):
        super().__init__()
        self.address, self.offered = address, []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if envelope.rcpt_tos == [self.address] and not self.offered:
            self.offered.append(envelope.original_content)
            return "451 4.3.0 try again later"
        return await super().handle_DATA(server, session, envelope)


def config_folder(tmp_path: Path, server: tuple[str, int], **smtp) -> Path:
    folder = tmp_path / "cfg"
    shutil.copytree(EXAMPLE, folder, ignore=shutil.ignore_patterns("var"))
    smtp = {"security": "none", "timeout_seconds": 2, **smtp}
    extra = "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in smtp.items())
    (folder / "service.toml").write_text(
        f'state = "var/state.json"\n\n[mail]\ntransport = "smtp"\nsender = "{SENDER}"\n\n'
        f'[mail.smtp]\nhost = "{server[0]}"\nport = {server[1]}\n{extra}')
    return folder


@pytest.fixture
def service(tmp_path) -> Iterator:
    """`service(folder, password=None, context=None)`: a Runner on that config, as `run` builds it."""
    stores = []

    def make(folder: Path, password: str | None = None, context: ssl.SSLContext | None = None) -> Runner:
        store = Store(folder / "var" / "state.json")
        stores.append(store)
        return Runner(ConfigWatcher(folder), store,
                      lambda config: SmtpTransport(config.service.mail.smtp, password, ssl_context=context),
                      availability=lambda *args: {})
    yield make
    for store in stores:
        store.close()


def sends(runner: Runner, kind: str = "invite") -> dict[str, dict]:
    return {d.recipient: d for d in runner.store.sends() if d.kind == kind}


def message_ids(server: Server) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in server.received:
        message = email.message_from_bytes(r.content, policy=email.policy.default)
        out.setdefault(r.rcpt_tos[0], []).append(message["Message-ID"])
    return out


def test_a_deferred_message_is_retried_with_backoff_and_keeps_its_message_id(tmp_path, service):
    """A 451 to one member's message puts that invite in `retry` for 5 minutes; the others go
    at once. It is not tried before its time, then delivered once, with the same Message-ID as
    the deferred attempt (so a copy that did get through would be recognised as one)."""
    with running(DeferOnceAtData(DANIEL)) as server:
        runner = service(config_folder(tmp_path, (server.host, server.port)))
        report = runner.tick(NOW)
        assert len(report.sent) == 11 and [d.recipient for d in report.retrying] == [DANIEL]
        doc = sends(runner)[DANIEL]
        assert (doc.status, doc.attempts, doc.next_attempt) == ("retry", 1, datetime(2026, 11, 20, 12, 5, tzinfo=UTC))
        assert "451 4.3.0 try again later" in doc.last_error

        assert not runner.tick(NOW + timedelta(minutes=3)).retrying  # not due yet: not tried
        report = runner.tick(NOW + timedelta(minutes=6))
        assert [d.recipient for d in report.sent] == [DANIEL]
        doc = sends(runner)[DANIEL]
        assert (doc.status, doc.attempts) == ("sent", 2)
        [first] = server.handler.offered
        deferred = email.message_from_bytes(first, policy=email.policy.default)["Message-ID"]
        assert message_ids(server)[DANIEL] == [deferred] == [doc.message_id]
        assert all(len(ids) == 1 for ids in message_ids(server).values()) and len(message_ids(server)) == 12


def test_a_refused_member_fails_once_and_each_coordinator_hears_once(tmp_path, service):
    """A 550 is permanent: the invite is `failed` at once, not retried; at the next tick each
    coordinator gets one alert naming the member but not the address; never again after."""
    with running(RefuseOne(DANIEL, "550 5.1.1 no such user")) as server:
        runner = service(config_folder(tmp_path, (server.host, server.port)))
        report = runner.tick(NOW)
        assert [d.recipient for d in report.failed] == [DANIEL] and not report.retrying
        assert sends(runner)[DANIEL].status == "failed"

        report = runner.tick(NOW + timedelta(minutes=5))
        alerts = sends(runner, "alert")
        assert set(alerts) == COORDINATORS and {d.recipient for d in report.sent} == COORDINATORS
        for r in server.received:
            message = email.message_from_bytes(r.content, policy=email.policy.default)
            if r.rcpt_tos[0] in COORDINATORS and message["X-Friendtor-Kind"] == "alert":
                text = message.get_body(("plain",)).get_content()
                html = message.get_body(("html",)).get_content()
                assert "Daniel Okafor" in text and DANIEL not in text + html
        for minutes in (10, 60, 24 * 60):
            assert not runner.tick(NOW + timedelta(minutes=minutes)).sent
        assert len(sends(runner, "alert")) == 2


def test_a_message_deferred_past_retry_days_fails_and_is_reported_once(tmp_path, service):
    """A member whose server keeps answering 451 is retried with growing gaps for retry_days
    (3), then the invite is `failed` and each coordinator hears once."""
    with running(RefuseOne(DANIEL, "451 4.2.1 mailbox busy, try later")) as server:
        runner = service(config_folder(tmp_path, (server.host, server.port)))
        gaps, attempts = [], 0
        now = NOW
        while now < NOW + timedelta(days=4):
            runner.tick(now)
            doc = sends(runner)[DANIEL]
            if doc.status != "retry":
                break
            if doc.attempts > attempts:  # tried at this tick: how long until the next try
                attempts = doc.attempts
                gaps.append(doc.next_attempt - now)
            now += timedelta(minutes=5)
        assert doc.status == "failed" and NOW + timedelta(days=3) <= now < NOW + timedelta(days=3, hours=7)
        assert gaps[:4] == [timedelta(minutes=m) for m in (5, 10, 20, 40)] and max(gaps) == timedelta(hours=6)
        runner.tick(now + timedelta(minutes=5))
        runner.tick(now + timedelta(hours=1))
        assert set(sends(runner, "alert")) == COORDINATORS


def counting_login(logins: list[str]):
    """An authenticator noting the user name of each connection that tries to log in (smtplib
    tries each mechanism the server offers, so one connection may ask more than once)."""
    sessions: set[int] = set()

    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     auth_data: object) -> AuthResult:
        assert isinstance(auth_data, LoginPassword)
        if id(session) not in sessions:
            sessions.add(id(session))
            logins.append(auth_data.login.decode())
        return AuthResult(success=auth_data.login == USERNAME.encode() and auth_data.password == PASSWORD.encode(),
                          handled=False)
    return authenticate


def test_a_rejected_login_holds_sending_back_and_loses_nothing(tmp_path, service, server_tls, test_ca,
                                                               monkeypatch):
    """A wrong username is the setup's fault, not the messages': one login is tried, that invite
    stays pending with the server's answer, the other eleven are not tried (0 attempts), nothing
    is `failed` or reported. While held, ticks make no login at all; the hold backs off. Fixing
    service.toml puts the new setup to work at the next tick, and every invite arrives once."""
    logins: list[str] = []
    with running(Recorder(), tls_context=server_tls, require_starttls=True, auth_required=True,
                 auth_require_tls=True, authenticator=counting_login(logins)) as server:
        folder = config_folder(tmp_path, (server.host, server.port), security="starttls", username="nobody",
                               password_env="FRIENDTOR_SMTP_PASSWORD")
        client = ssl.create_default_context()
        test_ca.configure_trust(client)
        runner = service(folder, password=PASSWORD, context=client)

        report = runner.tick(NOW)
        assert logins == ["nobody"] and not report.sent and not report.failed
        assert not report.retrying and len(report.held) == 12
        docs = sends(runner)
        assert sorted((d.status, d.attempts) for d in docs.values()) == [("pending", 0)] * 11 + [("pending", 1)]
        assert "rejected the login for 'nobody'" in next(d for d in docs.values() if d.attempts).last_error

        assert len(runner.tick(NOW + timedelta(minutes=3)).held) == 12 and logins == ["nobody"]
        runner.tick(NOW + timedelta(minutes=6))   # the hold is over: one more try, then a longer hold
        assert logins == ["nobody"] * 2
        assert len(runner.tick(NOW + timedelta(minutes=12)).held) == 12 and logins == ["nobody"] * 2
        assert not sends(runner, "alert")

        service_toml = folder / "service.toml"
        service_toml.write_text(service_toml.read_text().replace('username = "nobody"', f'username = "{USERNAME}"'))
        report = runner.tick(NOW + timedelta(minutes=13))   # reloads the config: a new setup is tried at once
        assert len(report.sent) == 12 and not report.held
        assert all(d.status == "sent" for d in sends(runner).values())
        assert sorted(message_ids(server)) == sorted(sends(runner)) and all(
            len(ids) == 1 for ids in message_ids(server).values())


class RefusingOneAtSetup:
    """A transport that meets a setup error with one member's message only. No server does
    that (setup errors come before anything about the message); it is the worst case for the
    hold: one message must never keep the others waiting."""

    def __init__(self, inner):
        self.inner = inner

    def send(self, message):
        if DANIEL in str(message["To"]):
            raise SendError("SMTP server refused the login (as a test)", transient=True, setup=True)
        self.inner.send(message)


def test_one_message_meeting_setup_errors_never_keeps_the_others_waiting(tmp_path, service):
    """After a hold, the next try is made with another message first: it goes through, which
    ends the hold, and the rest follow; the unlucky message is tried last, and waits alone."""
    with running(Recorder()) as server:
        runner = service(config_folder(tmp_path, (server.host, server.port)))
        runner.transport = RefusingOneAtSetup(runner.transport)
        first = runner.tick(NOW)
        assert DANIEL in {d.recipient for d in first.held}
        runner.tick(NOW + timedelta(minutes=6))
        docs = sends(runner)
        assert {r for r, d in docs.items() if d.status != "sent"} == {DANIEL}
        assert docs[DANIEL].status == "pending" and len(server.received) == 11


def test_a_silent_server_costs_one_timeout_not_one_per_message(tmp_path, service):
    """A server that accepts connections and never answers: the first message waits out the
    timeout and the rest of the tick's messages are not tried (they would each wait too)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as listener:  # accepts (backlog), never answers
        runner = service(config_folder(tmp_path, listener.getsockname()[:2]))
        report = runner.tick(NOW)
    assert len(report.held) == 12 and not report.retrying and not report.failed
    [tried] = [d for d in sends(runner).values() if d.attempts]
    assert "did not answer within 2 s" in tried.last_error and tried.status == "pending"


@pytest.mark.parametrize("code, transient, setup", [
    (None, True, True), (None, False, True), (401, False, True), (404, False, True), (410, False, True),
    (301, False, True), (403, False, False), (409, False, False), (412, False, False), (429, True, False),
    (503, True, False)])
def test_which_calendar_refusals_hold_publishing_back(code, transient, setup):
    """No answer, the login (401), a missing or moved calendar hold the channel; 403 and 409
    (CalDAV also uses them for one event's conflict), rate limits and server errors stay per meeting."""
    from scheduler.app.delivery import _calendar_setup

    assert _calendar_setup(SendError("x", transient=transient, code=code)) is setup


class CountingRefuseOne(RefuseOne):
    """RefuseOne that also counts the SMTP sessions its messages came in."""

    def __init__(self, address: str, reply: str):
        super().__init__(address, reply)
        self.sessions: list[Session] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        if all(s is not session for s in self.sessions):
            self.sessions.append(session)
        return await super().handle_RCPT(server, session, envelope, address, rcpt_options)


def test_a_tick_sends_each_batch_on_one_connection_and_a_refusal_costs_only_its_message(tmp_path, service):
    """Twelve invites go out in at most three batches (5, then 5 or 10, ...), one SMTP session
    each, not one per message; the 550 for one member fails that invite only."""
    with running(CountingRefuseOne(DANIEL, "550 5.1.1 no such user")) as server:
        runner = service(config_folder(tmp_path, (server.host, server.port)))
        report = runner.tick(NOW)
        assert len(report.sent) == 11 and len(server.received) == 11
        assert sends(runner)[DANIEL].status == "failed"
        assert 1 <= len(server.handler.sessions) <= 3
