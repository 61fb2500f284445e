"""Delivering finished messages: into a Maildir (the default), to an SMTP server, or nowhere.

Every transport takes one `EmailMessage` with exactly one recipient (the design's "one
message per member") and either delivers it or raises `SendError`, whose `transient` flag
tells the outbox whether trying again later can help. The envelope is taken from the
headers: MAIL FROM is the From address, RCPT TO is the one To address. Bcc is never used,
so what a member's mail client shows is exactly who the message went to.

`transport_for(config)` is the one place that picks a transport from `service.toml` and
reads the SMTP password from the environment; the scheduler core never imports this module.
"""

from __future__ import annotations

import mailbox
import os
import smtplib
import ssl
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from email.message import EmailMessage
from pathlib import Path

from scheduler.core.config import Config, Smtp
from scheduler.core.errors import SendError, SetupError
from scheduler.core.ports import Transport

from .exchange import Exchange
from .hosts import is_loopback
from .secrets import auth_variants, password_from_env
from .smtpwire import SmtpExchange, envelope, _code, _decode, _hang_up, _is_transient, _refusal, _reply, _Session, _Stale, _Watched, _WatchedSSL

DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


# --- Maildir -----------------------------------------------------------------------------

class MaildirTransport:
    """Writes each message into a Maildir (`var/outbox` by default) that `mutt -f` opens.

    Needs no server, so a new install can run, and `simulate` can write a year of mail,
    without anyone's credentials. The folders are created on the first delivery (not when
    the transport is built, so `validate` and dry runs never touch the disk) with mode 0700:
    the messages hold members' names, addresses and goals. An existing folder keeps the
    permissions its operator gave it.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._box: mailbox.Maildir | None = None

    def session(self) -> AbstractContextManager[None]:
        return nullcontext()  # the mailbox stays open anyway

    def send(self, message: EmailMessage) -> None:
        self.deliver(message)

    def deliver(self, message: EmailMessage) -> str:
        """Delivers into new/ and returns the Maildir key (the file name in new/)."""
        envelope(message)  # the same one-recipient rule as SMTP, so a Maildir run catches the same bugs
        try:
            # mailbox.Maildir writes into tmp/, fsyncs, then links into new/: a reader
            # (or a crash) never sees half a message.
            return self._open().add(message.as_bytes())
        except (FileExistsError, NotADirectoryError) as exc:
            what = (f"the outbox {self.path} is a file" if Path(exc.filename or "") == self.path
                    else f"the outbox {self.path} cannot be created: {exc.filename} is a file")
            raise SendError(f"{what}, not a folder; point maildir in [mail] of service.toml at a folder "
                            "(it is created if missing)", transient=False, setup=True) from exc
        except PermissionError as exc:
            raise SendError(f"cannot write to the outbox {self.path} (permission denied on "
                            f"{exc.filename}); give the user running friendtor write access to it",
                            transient=False, setup=True) from exc
        except OSError as exc:
            # A full disk or a passing I/O error: worth another try later, for every message.
            raise SendError(f"cannot write to the outbox {self.path}: {exc.strerror or exc}",
                            transient=True, setup=True) from exc

    def _open(self) -> mailbox.Maildir:
        if self._box is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for folder in (self.path, self.path / "tmp", self.path / "new", self.path / "cur"):
                try:
                    folder.mkdir(mode=0o700)
                except FileExistsError:
                    if not folder.is_dir():
                        raise
                else:
                    os.chmod(folder, 0o700)  # mkdir's mode is filtered by the umask; be exact
            self._box = mailbox.Maildir(self.path, factory=None, create=False)
        return self._box


# --- SMTP --------------------------------------------------------------------------------

class SmtpTransport:
    """Sends through an SMTP server, one session per delivery batch.

    Inside `with transport.session():` (the delivery loop opens one per batch) the
    connection stays open from one message to the next: the handshake (TCP, EHLO, TLS,
    AUTH) is most of the cost of a small message, and paying it once per batch is what keeps
    delivery near wire speed (docs/performance.md). Each message still succeeds or fails on
    its own: a refused recipient or message is answered with RSET (smtplib does it) and the
    next goes out on the same session; a session that can no longer be trusted (a time-out,
    a 421, a dropped connection, anything that is not a plain refusal) is closed, and the
    next message opens a new one. A session found dead before the server said anything
    about the message (a relay's idle time-out between two messages, a 421 at MAIL FROM) is
    reopened once for the same message. Outside a session, each send is a session of its own.

    `security`: "starttls" upgrades a plain connection and refuses to go on when the server
    does not offer STARTTLS (never a silent fallback to clear text); "ssl" is TLS from the
    first byte (port 465); "none" is plain, for a relay on the same host or network.
    Certificates are always verified; `ssl_context` exists so tests (or an operator's
    wrapper) can add a private CA, not to turn verification off.
    """

    def __init__(self, settings: Smtp, password: str | None, *,
                 ssl_context: ssl.SSLContext | None = None):
        if settings.username and not password:
            raise SetupError("[mail.smtp] username is set but there is no password: set password_env "
                                 "to the name of an environment variable that holds it")
        if settings.username and settings.security == "none" and not is_loopback(settings.host):
            raise SetupError(f"[mail.smtp] security = \"none\" would send the password for "
                                 f"{settings.username!r} in clear text to {settings.host}; "
                                 "use security = \"starttls\" (port 587) or \"ssl\" (port 465)")
        self.settings = settings
        self.port = settings.port or DEFAULT_PORTS[settings.security]
        self._password = password
        self._ssl_context = ssl_context  # built on first use: loading the trust store takes ~30 ms
        self._where = f"SMTP server {settings.host}:{self.port}"
        self._batching = False
        self._held: _Session | None = None  # the open session of the current batch
        self.connections = 0  # sessions opened, for tests and benchmarks

    def _context(self) -> ssl.SSLContext:
        """The system's trust store, verification on; never built for security = "none"."""
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def __repr__(self) -> str:  # never show the password, even in a debugger or log
        return f"SmtpTransport({self.settings.host}:{self.port}, security={self.settings.security})"

    @contextmanager
    def session(self) -> Iterator[None]:
        """Keeps one SMTP session open for the sends inside; QUIT at the end."""
        self._batching = True
        try:
            yield
        finally:
            self._batching = False
            held, self._held = self._held, None
            if held is not None:
                # QUIT within the deadline too: a server silent at QUIT must not hold the tick.
                with SmtpExchange(self.settings.timeout_seconds) as exchange:
                    if held.sock is not None:
                        exchange.watch(held.sock)
                    _hang_up(held, polite=True)

    def send(self, message: EmailMessage) -> None:
        """Delivers within one deadline of `timeout_seconds`: the message's MAIL, RCPT and
        DATA, plus the greeting, EHLO, STARTTLS and AUTH when a session must be opened for it
        (the socket timeout alone bounds each wait, so a server trickling its greeting a
        byte at a time would hold the tick for minutes)."""
        sender, recipient = envelope(message)
        held, self._held = self._held, None
        if held is not None:
            try:
                self._send_on(held, message, sender, recipient)
                return
            except _Stale:
                pass  # dead before anything was said about this message: once more, afresh
        self._send_on(None, message, sender, recipient)

    def _send_on(self, smtp: _Session | None, message: EmailMessage, sender: str, recipient: str) -> None:
        reused = smtp is not None
        with SmtpExchange(self.settings.timeout_seconds) as exchange:
            keep = False
            try:
                if smtp is None:
                    smtp = self._connect(exchange)
                else:
                    smtp.exchange, smtp.about_message = exchange, False
                    if smtp.sock is None:
                        raise _Stale
                    exchange.watch(smtp.sock)
                try:
                    smtp.send_message(message, sender, [recipient])
                except (smtplib.SMTPResponseException, smtplib.SMTPRecipientsRefused) as exc:
                    # A plain refusal leaves the session usable (smtplib sent RSET); a 421 closes it.
                    keep = _refusal(exc) and smtp.sock is not None
                    raise
                if exchange.cut:
                    # A reply cut short at the deadline can still parse ("250 ..." without its
                    # line end): an acceptance cut short is no acceptance. Sent again later with
                    # the same Message-ID, so a server that did take it drops the copy.
                    keep = False
                    raise self._cut(exchange)
                keep = True
            except SendError as error:
                keep = False
                if exchange.cut:
                    raise self._classified(error, smtp) from None
                raise
            except _Stale:
                raise
            except Exception as exc:
                if exchange.cut:
                    keep = False
                elif reused and (not smtp.about_message or _code(exc) == 421) and not _refusal(exc):
                    keep = False
                    raise _Stale from None
                error = self._cut(exchange) if exchange.cut else self._classify(exc, sender, recipient)
                if error is None:
                    raise
                raise self._classified(error, smtp) from None  # the library's text may quote the server: not chained
            finally:
                if smtp is not None:
                    if keep and self._batching and not exchange.cut:
                        self._held = smtp
                    else:
                        _hang_up(smtp, polite=keep and not exchange.cut)

    def _connect(self, exchange: Exchange) -> _Session:
        s = self.settings
        # Built without a host, so the exchange is known before the first byte (the constructor
        # would connect and read the greeting at once); connect() then does what it would.
        smtp: _Session = (_WatchedSSL(context=self._context(), timeout=s.timeout_seconds) if s.security == "ssl"
                              else _Watched(timeout=s.timeout_seconds))
        smtp.exchange = exchange
        smtp._host = s.host  # type: ignore[attr-defined]  # the name TLS verifies (the constructor sets it)
        self.connections += 1
        try:
            code, reply = smtp.connect(s.host, self.port)
            if code != 220:
                raise smtplib.SMTPConnectError(code, reply)
            smtp.ehlo_or_helo_if_needed()  # part of the setup: a server silent after EHLO is not this message's
            if s.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise SendError(f"{self._where} does not offer STARTTLS, so nothing was sent "
                                    "(with security = \"starttls\" friendtor never sends in clear text); "
                                    "use the server's submission port (587), or security = \"ssl\" "
                                    "for port 465", transient=False, setup=True)
                smtp.starttls(context=self._context())
                smtp.ehlo()
            if s.username:
                assert self._password is not None  # checked in __init__
                smtp.login(s.username, self._password)
        except BaseException:
            # No QUIT: after a failed TLS handshake the server expects TLS, not a command,
            # and a polite QUIT would wait out the whole timeout.
            smtp.close()
            raise
        return smtp

    @staticmethod
    def _classified(error: SendError, smtp: _Session | None) -> SendError:
        if smtp is None or not smtp.about_message:
            # Nothing about this message was said yet (the greeting, EHLO, TLS, the login or
            # MAIL FROM got no answer): the server or the setup failed, and every message
            # would wait or fail alike. Later, a time-out or a hang-up may be this message's
            # (a large one): per message.
            error.setup = error.transient = True
        return error

    def _cut(self, exchange: Exchange) -> SendError:
        if exchange.aborted:
            # SIGTERM: the delivery loop, which is stopping, leaves the message pending.
            return self._error(f"the exchange with {self._where} was interrupted: friendtor is stopping",
                               transient=True)
        return self._timeout()

    def _classify(self, exc: Exception, sender: str, recipient: str) -> SendError | None:
        """The SendError for a failed send, or None for something that is not a delivery failure."""
        where, s = self._where, self.settings
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            env = f"the environment variable {s.password_env}" if s.password_env else "password_env"
            return self._error(f"{where} rejected the login for {s.username!r} ({_reply(exc)}); "
                               f"check username in [mail.smtp] of service.toml and the password in {env}",
                               transient=False, code=exc.smtp_code)
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            # One recipient per message, so this is that recipient; the loop keeps the
            # per-recipient contract if that ever changes.
            errors = [self._refused(addr, code, text) for addr, (code, text) in exc.recipients.items()]
            return errors[0] if errors else self._error(f"{where} refused the recipient", transient=False)
        if isinstance(exc, smtplib.SMTPSenderRefused):
            if exc.smtp_code == 552 or "5.3.4" in _decode(exc.smtp_error):
                # MAIL FROM carries SIZE=: this message is too big for the server, not the setup.
                return self._error(f"{where} refused the message to {recipient} as too large ({_reply(exc)})",
                                   transient=False, code=exc.smtp_code)
            transient = _is_transient(exc.smtp_code)  # the same sender on every message: the setup
            hint = "" if transient else "; check sender in [mail] of service.toml"
            return self._error(f"{where} refused the sender {sender} ({_reply(exc)}){hint}",
                               transient=transient, code=exc.smtp_code, setup=True)
        if isinstance(exc, smtplib.SMTPResponseException):
            transient = _is_transient(exc.smtp_code)
            verb = "deferred" if transient else "rejected"
            # `recipient` stays None: it marks a refused address, and this is about the message.
            return self._error(f"{where} {verb} the message to {recipient} ({_reply(exc)})",
                               transient=transient, code=exc.smtp_code)
        if isinstance(exc, smtplib.SMTPServerDisconnected):
            if isinstance(exc.__context__, TimeoutError):
                return self._timeout()
            return self._error(f"{where} closed the connection before the message was accepted "
                               f"({_decode(str(exc))})", transient=True)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            if "AUTH" in str(exc):
                return self._error(f"{where} does not offer a login (AUTH); remove username from "
                                   "[mail.smtp] if it needs none, or check security and port",
                                   transient=False)
            return self._error(f"{where} does not support what this message needs: {_decode(str(exc))}",
                               transient=False)
        if isinstance(exc, smtplib.SMTPException):
            return self._error(f"{where}: {_decode(str(exc))}", transient=False)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._error(f"the certificate of {where} could not be verified "
                               f"({exc.verify_message or exc.reason}); if the server uses a private "
                               "certificate authority, install its CA certificate in the system trust "
                               "store, and make sure host in [mail.smtp] is a name on the certificate",
                               transient=False)
        if isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
            return self._error(f"{where} closed the connection during the TLS handshake", transient=True)
        if isinstance(exc, ssl.SSLError):
            return self._error(f"TLS with {where} failed ({exc.reason or exc}); check that security = "
                               f"\"{s.security}\" is what this port speaks (usually starttls on 587, "
                               "ssl on 465)", transient=False)
        if isinstance(exc, TimeoutError):
            return self._timeout()
        if isinstance(exc, ConnectionRefusedError):
            return self._error(f"could not connect to {where}: connection refused; check host and port "
                               "in [mail.smtp] and that the server is running", transient=True)
        if isinstance(exc, OSError):
            return self._error(f"could not talk to {where}: {_decode(exc.strerror or str(exc))}",
                               transient=True)
        return None

    def _refused(self, address: str, code: int, text: bytes | str) -> SendError:
        transient = _is_transient(code)
        verb = "deferred" if transient else "refused"
        return self._error(f"{self._where} {verb} the recipient {address} ({code} {_decode(text)})",
                           transient=transient, code=code, recipient=address)

    def _timeout(self) -> SendError:
        # timeout_seconds bounds the whole session, not each wait: a trickling server is cut too.
        return self._error(f"{self._where} did not answer within {self.settings.timeout_seconds:g} s "
                           "(timeout_seconds in [mail.smtp], for the whole exchange)", transient=True)

    def _error(self, message: str, **kwargs) -> SendError:
        # Server replies are untrusted text, already scrubbed of blobs by _decode; make sure
        # none of them echoes the login in any form it went out in (AUTH PLAIN, AUTH LOGIN).
        for secret in auth_variants(self.settings.username, self._password):
            message = message.replace(secret, "***")
        if self._password:
            message = message.replace(self._password, "***")
        return SendError(message, **kwargs)


# --- dry run -----------------------------------------------------------------------------

class DryRunTransport:
    """Sends nothing; keeps every message in `messages` (for `run --dry-run` and tests)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []

    def session(self) -> AbstractContextManager[None]:
        return nullcontext()  # nothing to keep open

    def send(self, message: EmailMessage) -> None:
        envelope(message)  # a dry run should fail where a real run would
        self.messages.append(message)


# --- wiring ------------------------------------------------------------------------------

def transport_for(config: Config, environ: Mapping[str, str] = os.environ) -> Transport:
    """The transport `service.toml` asks for; the SMTP password is read from `environ` here."""
    mail = config.service.mail
    if mail.transport == "maildir":
        return MaildirTransport(config.path(mail.maildir))
    settings = mail.smtp
    assert settings is not None  # Mail requires [mail.smtp] for transport = "smtp"
    password = password_from_env("[mail.smtp]", settings.password_env, settings.username, environ, "SMTP")
    return SmtpTransport(settings, password)
