"""The SMTP session underneath `mail.SmtpTransport`: a socket its Exchange can cut, and the
small helpers that read smtplib's answers (kept apart so mail.py stays about delivery)."""

from __future__ import annotations

import smtplib
import socket

from .exchange import Exchange
from .secrets import scrub


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
