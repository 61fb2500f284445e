"""The SMTP session underneath `mail.SmtpTransport`: a socket its Exchange can cut, the
envelope a message goes out with, and the small helpers that read smtplib's answers (kept
apart so mail.py stays about delivery)."""

from __future__ import annotations

import email.utils
import math
import smtplib
import socket
import threading
import time
from email.message import EmailMessage

from . import exchange as _exchange
from .exchange import Exchange
from .secrets import scrub


def envelope(message: EmailMessage) -> tuple[str, str]:
    """The SMTP envelope (sender, recipient): the From address and the single To address.

    A message with several recipients, Cc or Bcc is a bug in whoever built it (every
    member gets their own message), so it is a ValueError, not a SendError.
    """
    senders, recipients = _addresses(message, "From"), _addresses(message, "To")
    if len(senders) != 1:
        raise ValueError(f"a message needs exactly one From address, got {len(senders)}")
    if len(recipients) != 1 or message.get_all("Cc") or message.get_all("Bcc"):
        raise ValueError("a message goes to exactly one To address (no Cc or Bcc); "
                         "build one message per recipient")
    return senders[0], recipients[0]


def _addresses(message: EmailMessage, field: str) -> list[str]:
    """The addresses of every `field` header, as they go on the wire. A header of the
    `email.policy.default` family (compose builds every message so) is already parsed: its
    `addresses` are exact and cheap, where parsing its text again cost more than the rest of
    a send's own work. Any other (compat32, compose's literal display names) is parsed."""
    out: list[str] = []
    for value in message.get_all(field, []):
        parsed = getattr(value, "addresses", None)
        if parsed is None:
            out += [addr for _, addr in email.utils.getaddresses([str(value)]) if addr]
        else:
            out += [a.addr_spec for a in parsed if a.username or a.domain]
    return out


class _Watchdog:
    """One thread for the deadlines of every SMTP exchange, started once.

    `Exchange` starts a threading.Timer per exchange; on a kept session that thread start
    (with the GIL contended) costs more than the message itself (docs/performance.md).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._deadlines: dict[Exchange, float] = {}
        self._thread: threading.Thread | None = None
        self._until = math.inf  # when the thread wakes up next

    def add(self, exchange: Exchange) -> None:
        with self._cond:
            self._deadlines[exchange] = exchange.deadline
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="smtp-deadlines", daemon=True)
                self._thread.start()
            elif exchange.deadline < self._until:
                self._cond.notify()

    def remove(self, exchange: Exchange) -> None:
        with self._cond:
            self._deadlines.pop(exchange, None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for exchange, deadline in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[exchange]
                        exchange._expire()
                self._until = min(self._deadlines.values(), default=math.inf)
                self._cond.wait(None if self._until == math.inf else self._until - now)


_WATCHDOG = _Watchdog()


class SmtpExchange(Exchange):
    """An Exchange (same deadline, same SIGTERM abort) watched by the shared thread."""

    def __enter__(self) -> SmtpExchange:
        _exchange._open.add(self)  # abort_all() reaches it like any exchange
        if _exchange.stopping():
            self.abort()
        _WATCHDOG.add(self)
        return self

    def __exit__(self, *exc_info) -> None:
        _WATCHDOG.remove(self)
        _exchange._open.discard(self)
        for dup in self._socks:
            dup.close()
        self._socks = []


class _Session(smtplib.SMTP):
    """An SMTP session whose socket its Exchange can cut at the deadline, and which knows
    whether the server has said anything about the message yet (answered MAIL FROM)."""

    exchange: Exchange
    about_message = False

    def mail(self, sender, options=()):
        reply = super().mail(sender, options)
        self.about_message = True
        return reply

    def _watched_socket(self, host, port, timeout) -> socket.socket:
        # The connect itself waits at most what is left of the deadline.
        sock = smtplib.SMTP._get_socket(self, host, port, max(0.1, min(timeout, self.exchange.remaining())))
        self.exchange.watch(sock)
        return sock


class _Watched(_Session):
    def _get_socket(self, host, port, timeout):
        return self._watched_socket(host, port, timeout)


class _WatchedSSL(_Session, smtplib.SMTP_SSL):
    """TLS from the first byte: the plain socket is watched before the handshake."""

    def _get_socket(self, host, port, timeout):
        return self.context.wrap_socket(self._watched_socket(host, port, timeout), server_hostname=self._host)


class _Stale(Exception):
    """A kept session turned out dead before the server said anything about the message."""


def _code(exc: Exception) -> int | None:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):  # one recipient per message
        return next((code for code, _ in exc.recipients.values()), None)
    return getattr(exc, "smtp_code", None)


def _refusal(exc: Exception) -> bool:
    """A refusal of this message or recipient (not a 421): the answer, not a dead session."""
    code = _code(exc)
    return code is not None and code != 421 and not isinstance(exc, smtplib.SMTPServerDisconnected)


def _hang_up(smtp: smtplib.SMTP, *, polite: bool) -> None:
    """Closes the connection. After a delivery, a failed QUIT must not turn it into a failure
    (that would send the message twice), so errors here are ignored."""
    try:
        if polite:
            smtp.quit()
    except (smtplib.SMTPException, OSError):
        pass
    finally:
        smtp.close()


def _is_transient(code: int) -> bool:
    return 400 <= code < 500


def _decode(text: bytes | str) -> str:
    """A server's words as error text: one line, no control characters, no encoded blob
    (an echoed AUTH line), cut to a sane length."""
    return scrub(text)


def _reply(exc: smtplib.SMTPResponseException) -> str:
    return f"{exc.smtp_code} {_decode(exc.smtp_error)}"
